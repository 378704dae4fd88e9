// Header hygiene shared by every HTTP path: hop-by-hop removal and stripping of client-supplied mesh headers.
import type { Headers } from './exchange.js';

/** Connection-specific headers (RFC 9110 7.6.1) plus those HTTP/2 forbids. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'host',
  'http2-settings',
]);

/** Copies request headers for upstream: drops hop-by-hop, pseudo headers and client-supplied x-trellis-* / XFCC. */
export function sanitizeRequestHeaders(src: Headers, keepUpgrade: boolean): Headers {
  const out: Headers = {};
  const conn = src.connection;
  const named = typeof conn === 'string' && conn.length > 0 ? conn.toLowerCase().split(',') : undefined;
  for (const k in src) {
    const v = src[k];
    if (v === undefined) continue;
    if (k.charCodeAt(0) === 58 /* : */) continue;
    if (HOP_BY_HOP.has(k)) {
      if (k === 'te' && typeof v === 'string' && v.toLowerCase().includes('trailers')) out.te = 'trailers';
      else if (keepUpgrade && k === 'upgrade') out.upgrade = v;
      continue;
    }
    if (k.startsWith('x-trellis-') || k === 'x-forwarded-client-cert') continue;
    if (named && named.some((n) => n.trim() === k)) continue;
    out[k] = v;
  }
  return out;
}

/** Copies response headers for downstream: drops hop-by-hop and pseudo headers. */
export function sanitizeResponseHeaders(src: Headers): Headers {
  const out: Headers = {};
  for (const k in src) {
    const v = src[k];
    if (v === undefined || k.charCodeAt(0) === 58 || (HOP_BY_HOP.has(k) && k !== 'host')) continue;
    out[k] = v;
  }
  return out;
}

/** grpc-timeout ("100m", "5S", ...) -> milliseconds; undefined when absent or malformed. */
export function parseGrpcTimeout(v: string | string[] | undefined): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  switch (m[2]) {
    case 'H':
      return n * 3_600_000;
    case 'M':
      return n * 60_000;
    case 'S':
      return n * 1000;
    case 'm':
      return n;
    case 'u':
      return Math.max(1, Math.ceil(n / 1000));
    default:
      return Math.max(1, Math.ceil(n / 1e6));
  }
}
