// Encodes xDS resources once and shares the bytes: a DiscoveryResponse is assembled from pre-encoded Any fields.
import { createHash } from 'node:crypto';
import { messageType } from '../xds/protos.js';
import { framedMessage } from './grpc-framing.js';

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** Length-delimited field `field` holding `payload`. */
function lenField(field: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([...varint((field << 3) | 2), ...varint(payload.length)]), payload]);
}

function strField(field: number, s: string): Buffer {
  return s ? lenField(field, Buffer.from(s, 'utf8')) : Buffer.alloc(0);
}

/** `resources` entry (field 2) holding Any{type_url, value}, written into one buffer of its own (no pool slab). */
function anyField(typeUrl: string, value: Uint8Array): Buffer {
  const url = Buffer.from(typeUrl, 'utf8');
  const inner = [...varint((1 << 3) | 2), ...varint(url.length)];
  const valueHead = [...varint((2 << 3) | 2), ...varint(value.length)];
  const anyLen = inner.length + url.length + valueHead.length + value.length;
  const head = [...varint((2 << 3) | 2), ...varint(anyLen)];
  const out = Buffer.allocUnsafeSlow(head.length + anyLen);
  let pos = 0;
  for (const b of head) out[pos++] = b;
  for (const b of inner) out[pos++] = b;
  pos += url.copy(out, pos);
  for (const b of valueHead) out[pos++] = b;
  out.set(value, pos);
  return out;
}

/** One encoded resource: its bytes as a `resources` entry of a DiscoveryResponse, and a small id for diffing. */
export interface EncodedResource {
  id: number;
  field: Buffer;
  gen: number;
}

/**
 * Interns encoded resources. Identical objects (same reference) hit a WeakMap; equal content built separately
 * for different proxies hits the fingerprint map, so 1,000 proxies holding the same cluster share one buffer.
 */
export class ResourceEncoder {
  private byRef = new WeakMap<object, EncodedResource>();
  private byContent = new Map<string, EncodedResource>();
  private nextId = 1;
  private gen = 0;

  encode(typeUrl: string, obj: object): EncodedResource {
    const hit = this.byRef.get(obj);
    if (hit) {
      // Objects are treated as immutable once compiled, so a reference hit is always valid.
      hit.gen = this.gen;
      return hit;
    }
    // The fingerprint is the encoding itself (hashed): a new object is encoded anyway unless equal content was
    // seen, and JSON of a compiled listener (packed Anys hold bytes) cost more than encoding it.
    const t = messageType(typeUrl);
    const value = t.encode(t.fromObject(obj)).finish();
    const fp = typeUrl + '\n' + (value.length > 64 ? createHash('sha1').update(value).digest('base64') : Buffer.from(value).toString('base64'));
    let e = this.byContent.get(fp);
    if (!e) {
      e = { id: this.nextId++, field: anyField(typeUrl, value), gen: this.gen };
      this.byContent.set(fp, e);
    }
    e.gen = this.gen;
    this.byRef.set(obj, e);
    return e;
  }

  /** Starts a new generation and drops entries unused for two generations (bounded memory across config changes). */
  sweep(): void {
    this.gen++;
    for (const [k, e] of this.byContent) if (e.gen < this.gen - 2) this.byContent.delete(k);
  }

  get size(): number {
    return this.byContent.size;
  }
}

/**
 * Serialises a DiscoveryResponse from pre-encoded resource fields (field numbers from discovery.proto), already
 * framed as a gRPC message (see grpc-framing.ts: written to many streams, it is never copied per stream).
 */
export function encodeDiscoveryResponse(r: { versionInfo: string; resources: EncodedResource[]; typeUrl: string; nonce: string }): Buffer {
  return framedMessage([strField(1, r.versionInfo), ...r.resources.map((e) => e.field), strField(4, r.typeUrl), strField(5, r.nonce)]);
}
