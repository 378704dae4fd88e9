// Packs nested Anys for compiled resources; a strict mode (for tests) rejects fields the proto does not have.
import type protobuf from 'protobufjs';
import { messageType, packAny, type AnyMessage } from '../../xds/protos.js';

let strict = false;

/** Tests turn this on so a misspelt field fails loudly instead of being dropped by protobufjs. */
export function setStrictPacking(on: boolean): void {
  strict = on;
}

/** Throws naming the path of the first key or enum value `type` does not define. */
export function checkShape(type: protobuf.Type, obj: unknown, path = type.name): void {
  if (type.fullName === '.google.protobuf.Any') return;
  if (!obj || typeof obj !== 'object') throw new Error(`${path}: expected an object for ${type.fullName}`);
  for (const [key, value] of Object.entries(obj as Record<string, unknown>)) {
    if (value === undefined) continue;
    const field = type.fields[key];
    if (!field) throw new Error(`${path}.${key}: no such field in ${type.fullName}`);
    field.resolve();
    const check = (v: unknown, p: string) => {
      if (field.resolvedType && 'fields' in field.resolvedType) checkShape(field.resolvedType as protobuf.Type, v, p);
      else if (field.resolvedType && 'values' in field.resolvedType && typeof v === 'string') {
        if ((field.resolvedType as protobuf.Enum).values[v] === undefined) throw new Error(`${p}: no enum value ${v}`);
      }
    };
    if (field.map) for (const [k, v] of Object.entries(value as object)) check(v, `${path}.${key}[${k}]`);
    else if (field.repeated) (value as unknown[]).forEach((v, i) => check(v, `${path}.${key}[${i}]`));
    else check(value, `${path}.${key}`);
  }
}

/**
 * packAny, checking the object's shape first when strict packing is on. The bytes are copied out of Node's shared
 * 8 KiB buffer pool: compiled listeners live for long, and a small slice would keep a whole pool slab alive
 * (a thousand workloads' listeners pinned 8 MB that way).
 */
export function pack(typeUrl: string, obj: object): AnyMessage {
  if (strict) checkShape(messageType(typeUrl), obj);
  const any = packAny(typeUrl, obj);
  const value = any.value as Buffer;
  if (value.buffer.byteLength === value.length) return any;
  const own = Buffer.allocUnsafeSlow(value.length);
  value.copy(own);
  return { ...any, value: own };
}
