// Decoders for the protobuf well-known shapes found in decoded xDS objects (durations, wrappers, percents, Structs, RE2).

/** A decoded protobuf message: snake_case keys, longs as strings, enums as strings (or numbers). */
export type Msg = Record<string, unknown>;

export function asMsg(v: unknown): Msg | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Msg) : undefined;
}

export function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function asString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function num(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  if (v !== null && typeof v === 'object' && typeof (v as { toNumber?: unknown }).toNumber === 'function') {
    return (v as { toNumber(): number }).toNumber(); // a Long, if someone decoded without longs: String
  }
  return undefined;
}

/** google.protobuf.Duration -> milliseconds; undefined when absent or malformed. */
export function durationMs(v: unknown): number | undefined {
  if (typeof v === 'string') {
    // JSON form "1.5s", in case a caller hands over proto3-JSON
    const m = /^(-?\d+(?:\.\d+)?)s$/.exec(v);
    return m ? Math.round(Number(m[1]) * 1000) : undefined;
  }
  const d = asMsg(v);
  if (!d) return undefined;
  const s = num(d.seconds) ?? 0;
  const n = num(d.nanos) ?? 0;
  return s * 1000 + n / 1e6;
}

/** A wrapper message ({value}) or a bare scalar -> number. */
export function wrappedNumber(v: unknown): number | undefined {
  const m = asMsg(v);
  return m ? num(m.value) ?? (Object.keys(m).length === 0 ? 0 : undefined) : num(v);
}

/** A BoolValue ({value}) or a bare boolean; an empty wrapper is false (proto3 default). */
export function wrappedBool(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  const m = asMsg(v);
  if (!m) return undefined;
  return m.value === true;
}

const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };
const DENOMINATORS_BY_NUMBER = [100, 10_000, 1_000_000];

/** envoy.type.v3.FractionalPercent -> probability in [0, 1]. Absent numerator is 0, absent denominator HUNDRED. */
export function fractionalPercent(v: unknown): number {
  const m = asMsg(v);
  if (!m) return 0;
  const n = num(m.numerator) ?? 0;
  const d = m.denominator;
  const den = typeof d === 'number' ? DENOMINATORS_BY_NUMBER[d] ?? 100 : typeof d === 'string' ? DENOMINATORS[d] ?? 100 : 100;
  const p = n / den;
  return p < 0 ? 0 : p > 1 ? 1 : p;
}

/** envoy.type.v3.Percent ({value: 0..100}) -> probability. */
export function percent(v: unknown): number {
  const p = (wrappedNumber(v) ?? 0) / 100;
  return p < 0 ? 0 : p > 1 ? 1 : p;
}

/**
 * google.protobuf.Struct -> plain object. protobufjs decodes Struct/Value with its own camelCase field
 * names (stringValue, structValue...), a hand-built object may use snake_case, and some producers hand
 * over an already-plain object: all three are accepted.
 */
export function structToPlain(v: unknown): Record<string, unknown> {
  const m = asMsg(v);
  if (!m) return {};
  const fields = asMsg(m.fields);
  if (fields && Object.keys(m).length === 1 && Object.values(fields).every(isValueMsg)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(fields)) out[k] = valueToPlain(fields[k]);
    return out;
  }
  return m;
}

const VALUE_KEYS = new Set([
  'nullValue', 'numberValue', 'stringValue', 'boolValue', 'structValue', 'listValue', 'kind',
  'null_value', 'number_value', 'string_value', 'bool_value', 'struct_value', 'list_value',
]);

function isValueMsg(v: unknown): boolean {
  const m = asMsg(v);
  if (!m) return false;
  for (const k of Object.keys(m)) if (!VALUE_KEYS.has(k)) return false;
  return true;
}

function valueToPlain(v: unknown): unknown {
  const m = asMsg(v);
  if (!m) return v;
  if ('stringValue' in m) return m.stringValue;
  if ('string_value' in m) return m.string_value;
  if ('numberValue' in m) return num(m.numberValue);
  if ('number_value' in m) return num(m.number_value);
  if ('boolValue' in m) return m.boolValue;
  if ('bool_value' in m) return m.bool_value;
  if ('structValue' in m) return structToPlain(m.structValue);
  if ('struct_value' in m) return structToPlain(m.struct_value);
  const list = asMsg(m.listValue ?? m.list_value);
  if (list) return asArray(list.values).map(valueToPlain);
  return null;
}

/**
 * Compiles an RE2 pattern (as carried by envoy.type.matcher.v3.RegexMatcher) into a JS RegExp.
 * Translated: `(?P<name>` to `(?<name>`, a leading flag group such as `(?i)` to RegExp flags, and
 * `\A` / `\z` to `^` / `$`; the syntaxes otherwise agree on what control planes emit.
 * `full` anchors the pattern so it must match the whole input, as Envoy's safe_regex matchers do.
 */
export function compileRe2(pattern: string, full: boolean, flags = ''): RegExp | string {
  let src = pattern;
  const lead = /^\(\?([a-zA-Z]+)\)/.exec(src);
  if (lead) {
    for (const f of lead[1]) {
      if (f !== 'i' && f !== 's' && f !== 'm') return `unsupported regex flag (?${f}) in ${JSON.stringify(pattern)}`;
      if (!flags.includes(f)) flags += f;
    }
    src = src.slice(lead[0].length);
  }
  let out = '';
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\' && i + 1 < src.length) {
      const n = src[i + 1];
      out += n === 'A' ? '^' : n === 'z' ? '$' : c + n;
      i++;
    } else if (c === '(' && src.startsWith('(?P<', i)) {
      out += '(?<';
      i += 3;
    } else out += c;
  }
  try {
    return new RegExp(full ? `^(?:${out})$` : out, flags);
  } catch (e) {
    return `invalid regex ${JSON.stringify(pattern)}: ${(e as Error).message}`;
  }
}

/** RE2 substitution (`\1`) -> JS replacement string (`$1`), with literal `$` escaped. */
export function re2Substitution(sub: string): string {
  let out = '';
  for (let i = 0; i < sub.length; i++) {
    const c = sub[i];
    if (c === '$') out += '$$';
    else if (c === '\\' && i + 1 < sub.length && sub[i + 1] >= '0' && sub[i + 1] <= '9') {
      out += '$' + sub[i + 1];
      i++;
    } else if (c === '\\' && sub[i + 1] === '\\') {
      out += '\\';
      i++;
    } else out += c;
  }
  return out;
}

const META = new Set(['\\', '^', '$', '.', '|', '?', '*', '+', '(', ')', '[', ']', '{', '}']);

/**
 * The literal text every full match of `pattern` must start with ('' when unknown), used to skip
 * running a regex that cannot match. Conservative: any alternation gives ''.
 */
export function literalPrefix(pattern: string): string {
  if (pattern.includes('|')) return '';
  let i = 0;
  while (i < pattern.length && !META.has(pattern[i])) i++;
  // a quantifier right after the run applies to its last character
  const next = pattern[i];
  if (next === '?' || next === '*' || next === '{') i--;
  return i > 0 ? pattern.slice(0, i) : '';
}
