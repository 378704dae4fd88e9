// Small value converters shared by the compiler modules: durations, percentages, Struct, quantities, labels.

export interface Duration {
  seconds: number;
  nanos?: number;
}

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };

/** Parses an Istio / Gateway API duration ("1.5s", "250ms", "1h30m") into milliseconds; undefined if unparseable. */
export function parseDurationMs(text: string | undefined): number | undefined {
  if (text === undefined || text === null) return undefined;
  const s = String(text).trim();
  if (s === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const re = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * UNIT_MS[m[2]];
    matched = re.lastIndex;
  }
  return matched === s.length ? total : undefined;
}

/** A google.protobuf.Duration from milliseconds. */
export function msToDuration(ms: number): Duration {
  const whole = Math.floor(ms / 1000);
  const nanos = Math.round((ms - whole * 1000) * 1_000_000);
  return nanos ? { seconds: whole, nanos } : { seconds: whole };
}

/** A google.protobuf.Duration from a duration string, or undefined when absent. */
export function duration(text: string | undefined): Duration | undefined {
  const ms = parseDurationMs(text);
  return ms === undefined ? undefined : msToDuration(ms);
}

/** envoy.type.v3.FractionalPercent for a percentage (0..100); MILLION keeps fractions such as 0.1%. */
export function fractionalPercent(pct: number): { numerator: number; denominator: string } {
  const clamped = Number.isFinite(pct) ? Math.min(100, Math.max(0, pct)) : 100;
  if (Number.isInteger(clamped)) return { numerator: clamped, denominator: 'HUNDRED' };
  return { numerator: Math.round(clamped * 10_000), denominator: 'MILLION' };
}

/** Parses a Kubernetes quantity ("900m", "1", "1.5", "2k") as a number; NaN if unparseable. */
export function parseQuantity(q: number | string | undefined): number {
  if (q === undefined || q === null) return NaN;
  if (typeof q === 'number') return q;
  const m = /^([+-]?\d+(?:\.\d+)?)(m|k|M|G|Ki|Mi|Gi)?$/.exec(q.trim());
  if (!m) return NaN;
  const mult: Record<string, number> = { m: 0.001, k: 1e3, M: 1e6, G: 1e9, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };
  return Number(m[1]) * (m[2] ? mult[m[2]] : 1);
}

/** Turns relative weights (possibly fractional) into non-negative integers with the same proportions. */
export function integerWeights(weights: number[]): number[] {
  const clean = weights.map((w) => (Number.isFinite(w) && w > 0 ? w : 0));
  if (clean.every((w) => Number.isInteger(w))) return clean;
  return clean.map((w) => Math.round(w * 1000));
}

// protobufjs ships its own google/protobuf/struct.proto with camelCase field names, so Struct values use them.
type StructValue =
  | { nullValue: 'NULL_VALUE' }
  | { numberValue: number }
  | { stringValue: string }
  | { boolValue: boolean }
  | { structValue: StructObj }
  | { listValue: { values: StructValue[] } };
export interface StructObj {
  fields: Record<string, StructValue>;
}

function toValue(v: unknown): StructValue {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  return { structValue: toStruct(v as Record<string, unknown>) };
}

/** A google.protobuf.Struct in proto object form; undefined fields are left out. */
export function toStruct(obj: Record<string, unknown>): StructObj {
  const fields: Record<string, StructValue> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) fields[k] = toValue(v);
  return { fields };
}

/** Reads a Struct (as built by toStruct or decoded by protobufjs, camelCase or snake_case) back into a plain object. */
export function fromStruct(s: { fields?: Record<string, unknown> } | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = fromValue(v as Record<string, unknown>);
  return out;
}

function fromValue(v: Record<string, unknown>): unknown {
  const get = (camel: string, snake: string) => (camel in v ? v[camel] : v[snake]);
  if ('numberValue' in v || 'number_value' in v) return get('numberValue', 'number_value');
  if ('stringValue' in v || 'string_value' in v) return get('stringValue', 'string_value');
  if ('boolValue' in v || 'bool_value' in v) return get('boolValue', 'bool_value');
  if ('structValue' in v || 'struct_value' in v) return fromStruct(get('structValue', 'struct_value') as { fields?: Record<string, unknown> });
  if ('listValue' in v || 'list_value' in v)
    return (((get('listValue', 'list_value') as { values?: unknown[] }).values) ?? []).map((x) => fromValue(x as Record<string, unknown>));
  return null;
}

/** Envoy metadata with a `trellis` filter_metadata entry. */
export function trellisMetadata(obj: Record<string, unknown>): { filter_metadata: { trellis: StructObj } } {
  return { filter_metadata: { trellis: toStruct(obj) } };
}

/** True when every selector label is present with the same value (an empty selector matches everything). */
export function labelsMatch(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

/** Escapes a literal for use inside an RE2 pattern. */
export function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
