// Pre-framed gRPC messages: a response written to 1,000 streams is framed once instead of copied once per stream.
import { createRequire } from 'node:module';

/**
 * grpc-js frames every message it sends into a fresh buffer (5-byte prefix + a copy of the bytes). The ADS server
 * writes one shared response to every stream that needs it: a 56 KB route configuration to 1,000 sidecars was
 * 56 MB of copies per change (tens of ms, and as much transient memory until the next GC). Buffers made here
 * already carry the prefix; with the hook installed grpc-js sends them as they are.
 */
const framed = new WeakSet<Buffer>();

/** `parts` concatenated behind a gRPC message prefix (uncompressed, length), marked as framed. */
export function framedMessage(parts: readonly Uint8Array[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = Buffer.allocUnsafeSlow(len + 5);
  out[0] = 0;
  out.writeUInt32BE(len, 1);
  let pos = 5;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  framed.add(out);
  return out;
}

/** The message inside a framed buffer (a view, no copy); any other buffer as it is. */
export function messageOf(b: Buffer): Buffer {
  return framed.has(b) ? b.subarray(5) : b;
}

let installed: boolean | undefined;

/**
 * Lets grpc-js send framed buffers without framing them again (once per process; other values are serialised as
 * before). True when the hook is in place; false when this grpc-js does not have the method it replaces: then
 * the response serialiser hands grpc-js the message (`messageOf`) and it frames a copy as usual.
 */
export function installFramedSends(): boolean {
  if (installed !== undefined) return installed;
  try {
    const require = createRequire(import.meta.url);
    const mod = require('@grpc/grpc-js/build/src/server-interceptors.js') as { BaseServerInterceptingCall?: { prototype: Record<string, unknown> } };
    const proto = mod.BaseServerInterceptingCall?.prototype;
    const original = proto?.serializeMessage;
    if (!proto || typeof original !== 'function') return (installed = false);
    proto.serializeMessage = function (this: unknown, value: unknown) {
      return Buffer.isBuffer(value) && framed.has(value) ? value : (original as (v: unknown) => Buffer).call(this, value);
    };
    return (installed = true);
  } catch {
    return (installed = false);
  }
}
