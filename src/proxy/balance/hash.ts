// 32-bit hashing for consistent-hash load balancing: FNV-1a with a murmur3 finalizer, and request hash keys.
import { queryParam } from '../route/matchers.js';
import type { HashPolicy, IncomingHeaders } from '../route/types.js';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over the string's UTF-16 code units, as an unsigned 32-bit integer. */
export function fnv1a32(s: string, seed = FNV_OFFSET): number {
  let h = seed | 0; // int32 from the start keeps the loop in integer registers
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h = Math.imul(h ^ (c & 0xff), FNV_PRIME);
    if (c > 0xff) h = Math.imul(h ^ (c >>> 8), FNV_PRIME);
  }
  return h >>> 0;
}

/** murmur3's fmix32: FNV-1a alone avalanches poorly on short, similar keys (ring points, IPs). */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function hash32(s: string): number {
  return mix32(fnv1a32(s));
}

function cookieValue(cookieHeader: string, name: string): string | undefined {
  let i = 0;
  while (i < cookieHeader.length) {
    let end = cookieHeader.indexOf(';', i);
    if (end < 0) end = cookieHeader.length;
    while (cookieHeader.charCodeAt(i) === 32) i++;
    const eq = cookieHeader.indexOf('=', i);
    if (eq > 0 && eq < end && eq - i === name.length && cookieHeader.startsWith(name, i)) {
      let v = cookieHeader.slice(eq + 1, end).trim();
      if (v.length >= 2 && v[0] === '"' && v[v.length - 1] === '"') v = v.slice(1, -1);
      return v;
    }
    i = end + 1;
  }
  return undefined;
}

export interface HashRequest {
  headers: IncomingHeaders;
  sourceIp: string;
  /** The Cookie header, when the caller already has it (else headers.cookie). */
  cookies?: string;
  /** Raw query string without '?', for query_parameter policies. */
  query?: string;
}

/**
 * The request's consistent-hash key from the route's hash policies (Envoy semantics: policies that
 * yield a value are combined in order; a terminal one that yields stops the walk). Undefined when none
 * yields, in which case a hashing balancer picks at random.
 */
export function hashKey(policies: readonly HashPolicy[], req: HashRequest): number | undefined {
  let hash: number | undefined;
  for (let i = 0; i < policies.length; i++) {
    const p = policies[i];
    let v: string | undefined;
    switch (p.kind) {
      case 'header': {
        // HTTP/1 requests carry the authority as Host
        const raw = req.headers[p.name] ?? (p.name === ':authority' ? req.headers.host : undefined);
        v = raw === undefined ? undefined : typeof raw === 'string' ? raw : raw.join(',');
        if (v !== undefined && p.rewrite) {
          p.rewrite.re.lastIndex = 0;
          v = v.replace(p.rewrite.re, p.rewrite.substitution);
        }
        break;
      }
      case 'cookie': {
        const c = req.cookies ?? req.headers.cookie;
        const s = c === undefined ? undefined : typeof c === 'string' ? c : c.join('; ');
        v = s === undefined ? undefined : cookieValue(s, p.name);
        break;
      }
      case 'source_ip':
        v = req.sourceIp === '' ? undefined : req.sourceIp;
        break;
      case 'query_parameter':
        v = req.query === undefined ? undefined : queryParam(req.query, p.name);
        break;
    }
    if (v === undefined) continue;
    const h = fnv1a32(v);
    hash = hash === undefined ? h : (((hash << 1) | (hash >>> 31)) ^ h) >>> 0;
    if (p.terminal) break;
  }
  return hash === undefined ? undefined : mix32(hash);
}
