// Converts google.protobuf.Struct (as grpc-js/proto-loader decodes it) to plain JSON values and back.

type ProtoValue = {
  kind?: string;
  nullValue?: unknown;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: ProtoStruct;
  listValue?: { values?: ProtoValue[] };
};
export type ProtoStruct = { fields?: Record<string, ProtoValue> };

export function valueToJson(v: ProtoValue | undefined): unknown {
  if (!v) return null;
  const kind = v.kind ?? Object.keys(v).find((k) => k.endsWith('Value') && (v as Record<string, unknown>)[k] !== undefined);
  switch (kind) {
    case 'numberValue':
      return v.numberValue;
    case 'stringValue':
      return v.stringValue;
    case 'boolValue':
      return v.boolValue;
    case 'structValue':
      return structToJson(v.structValue);
    case 'listValue':
      return (v.listValue?.values ?? []).map(valueToJson);
    default:
      return null;
  }
}

export function structToJson(s: ProtoStruct | undefined | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = valueToJson(v);
  return out;
}

export function jsonToValue(v: unknown): ProtoValue {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(jsonToValue) } };
  return { structValue: jsonToStruct(v as Record<string, unknown>) };
}

export function jsonToStruct(o: Record<string, unknown>): ProtoStruct {
  const fields: Record<string, ProtoValue> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) fields[k] = jsonToValue(v);
  return { fields };
}
