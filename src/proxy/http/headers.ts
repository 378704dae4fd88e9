// Header hygiene shared by every HTTP path: hop-by-hop removal and stripping of client-supplied mesh headers.
import type { Headers } from './exchange.js';

/** Request head limits (Security: hostile HTTP): beyond either, the request is refused with 431. */
export const MAX_REQUEST_HEADER_BYTES = 60 * 1024;
export const MAX_REQUEST_HEADERS = 100;

export interface HeadRefusal {
  code: 'bad_request' | 'headers_too_large';
  message: string;
}

// RFC 9110 token characters, lowercase only (HTTP/2 forbids uppercase names; HTTP/1 names arrive as sent but compare lowercased).
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
// What an HTTP/1.1 field value may not hold (RFC 9110 5.5: VCHAR, obs-text, SP, HTAB): NUL, CR, LF and the other controls.
// HTTP/2 heads are checked too: whatever nghttp2 lets through must still be safe to write to an HTTP/1.1 upstream.
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * Reasons to refuse a request head before anything is forwarded (request smuggling and header injection),
 * or undefined. rawHeaders is the name/value list as received; h2 lists include pseudo headers.
 */
export function refuseRequestHead(rawHeaders: readonly string[], url: string, h2: boolean): HeadRefusal | undefined {
  let count = 0;
  let bytes = 0;
  let te: string | undefined;
  let teLines = 0;
  let hasLength = false;
  let scheme: string | undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    const value = rawHeaders[i + 1];
    bytes += name.length + value.length + 4;
    if (BAD_VALUE.test(value)) return { code: 'bad_request', message: `header ${JSON.stringify(name)} has a control character (NUL, CR, LF, ...) in its value` };
    if (name.charCodeAt(0) === 58 /* : */) {
      if (h2 && name === ':scheme') scheme = value.toLowerCase();
      continue;
    }
    count++;
    const lower = name.toLowerCase();
    if (!TOKEN.test(h2 ? name : lower)) return { code: 'bad_request', message: `header name ${JSON.stringify(name)} is not a valid${h2 ? ' lowercase' : ''} token` };
    if (lower === 'transfer-encoding') {
      teLines++;
      te = value;
    } else if (lower === 'content-length') hasLength = true;
  }
  if (count > MAX_REQUEST_HEADERS) return { code: 'headers_too_large', message: `request has more than ${MAX_REQUEST_HEADERS} headers` };
  if (bytes > MAX_REQUEST_HEADER_BYTES) return { code: 'headers_too_large', message: `request headers exceed ${MAX_REQUEST_HEADER_BYTES} bytes` };
  if (te !== undefined) {
    // Only a single, plain "chunked" framing is unambiguous for every hop behind us.
    if (h2) return { code: 'bad_request', message: 'transfer-encoding is not allowed in HTTP/2' };
    if (teLines > 1 || te.trim().toLowerCase() !== 'chunked') return { code: 'bad_request', message: `unsupported transfer-encoding ${JSON.stringify(te)} (only a single "chunked" is accepted)` };
    if (hasLength) return { code: 'bad_request', message: 'request has both content-length and transfer-encoding' };
  }
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') return { code: 'bad_request', message: `unsupported :scheme ${JSON.stringify(scheme)}` };
  if (url.charCodeAt(0) !== 47 /* / */ && url !== '*') {
    const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
    if (m && !/^https?$/i.test(m[1])) return { code: 'bad_request', message: `unsupported scheme ${JSON.stringify(m[1])} in the request target` };
  }
  return undefined;
}

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
