// Converts google.protobuf.Struct/Value (as decoded by protobufjs) to and from plain JSON values.

type Value = Record<string, unknown>;

/** Decoded Struct `{fields:{k: Value}}` -> plain object. Tolerates already-plain objects. */
export function structToObject(s: unknown): Record<string, unknown> {
  if (!s || typeof s !== 'object') return {};
  const fields = (s as { fields?: Record<string, unknown> }).fields;
  if (!fields || typeof fields !== 'object') return {};
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(fields)) out[k] = valueToJson(fields[k]);
  return out;
}

export function valueToJson(v: unknown): unknown {
  if (!v || typeof v !== 'object') return v;
  // protobufjs' built-in google.protobuf types use camelCase even when the rest is loaded with keepCase.
  const o = v as Value;
  if ('stringValue' in o) return o.stringValue;
  if ('string_value' in o) return o.string_value;
  if ('numberValue' in o) return o.numberValue;
  if ('number_value' in o) return o.number_value;
  if ('boolValue' in o) return o.boolValue;
  if ('bool_value' in o) return o.bool_value;
  if ('structValue' in o) return structToObject(o.structValue);
  if ('struct_value' in o) return structToObject(o.struct_value);
  const list = (o.listValue ?? o.list_value) as { values?: unknown[] } | undefined;
  if (list) return (list.values ?? []).map(valueToJson);
  if ('nullValue' in o || 'null_value' in o) return null;
  return undefined;
}

/** Plain object -> Struct shape accepted by protobufjs fromObject. */
export function objectToStruct(obj: Record<string, unknown>): { fields: Record<string, Value> } {
  const fields: Record<string, Value> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) fields[k] = jsonToValue(v);
  return { fields };
}

export function jsonToValue(v: unknown): Value {
  if (v === null) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(jsonToValue) } };
  if (typeof v === 'object') return { structValue: objectToStruct(v as Record<string, unknown>) };
  return { nullValue: 'NULL_VALUE' };
}

/** metadata.filter_metadata.trellis of any resource, as a plain object. */
export function trellisMetadata(resource: unknown): Record<string, unknown> {
  const fm = (resource as { metadata?: { filter_metadata?: Record<string, unknown> } } | undefined)?.metadata?.filter_metadata;
  return fm && fm.trellis ? structToObject(fm.trellis) : {};
}

/** google.protobuf.Duration (decoded, longs as strings) -> milliseconds; undefined when absent. */
export function durationMs(d: unknown): number | undefined {
  if (!d || typeof d !== 'object') return undefined;
  const o = d as { seconds?: string | number; nanos?: number };
  return Number(o.seconds ?? 0) * 1000 + Math.round((o.nanos ?? 0) / 1e6);
}
