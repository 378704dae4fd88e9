// Builds the HTTP/1.1 request head a proxy sends upstream: hop-by-hop removal, framing recomputed, no smuggling-prone bytes.

/** Header values as Node hands them over (IncomingMessage.headers) plus numbers callers set. */
export type OutHeaders = Record<string, string | string[] | number | undefined>;

/** How the request body is framed on the upstream connection. */
export type BodyFraming = 'none' | 'length' | 'chunked';

export interface RequestHead {
  /** The request line and header section, ending in the empty line (latin1: every char is one byte). */
  head: string;
  framing: BodyFraming;
  /** Body bytes announced by content-length (framing 'length'). */
  length: number;
  /** The head asks the upstream to close after this exchange (connection: close). */
  close: boolean;
}

export interface HeadOptions {
  /** What body follows: none, a buffer of known size, or a stream (length from content-length, else chunked). */
  body: 'none' | 'stream' | number;
  /** Forward Upgrade (and send connection: upgrade): only for a request that asks to switch protocols. */
  upgrade?: boolean;
  /** Send connection: close (the connection is not reused after this exchange). */
  close?: boolean;
}

/** A request the client refuses to write (bad method, target, header name or value, framing). */
export class HeadError extends Error {}

// RFC 9110 5.6.2 tchar, as a byte table (names are compared lowercased; uppercase is still a valid token).
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;
export { TCHAR };

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || TCHAR[c] === 0) return false;
  }
  return true;
}

/** RFC 9110 5.5 field-value bytes: HTAB, SP, VCHAR, obs-text. Anything else (NUL, CR, LF, controls, > 0xff) is refused. */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** origin-form / absolute-form / asterisk targets: visible ASCII only (no space, no controls, no raw non-ASCII). */
const TARGET = /^[\x21-\x7e]+$/;

/** Connection-specific fields (RFC 9110 7.6.1) and what HTTP/2 forbids; never forwarded as-is. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'http2-settings']);
/** Fields a Connection header may not remove: the head's own framing and target stay ours to decide. */
const NOT_NOMINABLE = new Set(['host', 'content-length']);

function commaTokens(v: string): string[] {
  const out: string[] = [];
  for (const part of v.split(',')) {
    const t = part.trim().toLowerCase();
    if (t) out.push(t);
  }
  return out;
}

function values(v: string | string[] | number): string[] {
  return Array.isArray(v) ? v : [typeof v === 'number' ? String(v) : v];
}

/**
 * The upstream request head for `method target` with `headers` (names as Node gives them, any case), or a
 * HeadError naming what is wrong. Pure: no I/O.
 */
export function buildRequestHead(method: string, target: string, headers: OutHeaders, opts: HeadOptions): RequestHead {
  if (!isToken(method)) throw new HeadError(`request method ${JSON.stringify(method)} is not a token`);
  if (method.toUpperCase() === 'CONNECT') throw new HeadError('CONNECT is not forwarded by the HTTP/1.1 upstream client');
  if (!TARGET.test(target) || (target.charCodeAt(0) !== 47 /* / */ && target !== '*' && !/^https?:\/\//i.test(target))) {
    throw new HeadError(`request target ${JSON.stringify(target.slice(0, 200))} is not an origin-form path (visible ASCII starting with "/")`);
  }
  // First pass: what Connection nominates, TE, Upgrade, Content-Length, Host.
  let nominated: Set<string> | undefined;
  let host: string | undefined;
  let length: number | undefined;
  let teTrailers = false;
  let upgrade: string[] | undefined;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    const lower = name.toLowerCase();
    if (lower === 'connection') {
      for (const x of values(v)) for (const t of commaTokens(x)) if (!NOT_NOMINABLE.has(t)) (nominated ??= new Set()).add(t);
    } else if (lower === 'te') {
      for (const x of values(v)) for (const t of commaTokens(x)) if (t === 'trailers' || t.startsWith('trailers;')) teTrailers = true;
    } else if (lower === 'upgrade') {
      upgrade = values(v);
    } else if (lower === 'host') {
      const hv = values(v);
      if (hv.length !== 1 || host !== undefined) throw new HeadError('request has more than one host header');
      host = hv[0];
    } else if (lower === 'content-length') {
      for (const x of values(v)) {
        for (const part of x.split(',')) {
          const p = part.trim();
          if (!/^\d{1,15}$/.test(p)) throw new HeadError(`content-length ${JSON.stringify(x)} is not a number`);
          const n = Number(p);
          if (length !== undefined && length !== n) throw new HeadError(`conflicting content-length values ${length} and ${n}`);
          length = n;
        }
      }
    }
  }
  if (host === undefined || host === '') throw new HeadError('request has no host header');
  let framing: BodyFraming;
  if (typeof opts.body === 'number') {
    if (length !== undefined && length !== opts.body) throw new HeadError(`content-length ${length} but the body has ${opts.body} bytes`);
    length = opts.body;
    framing = 'length';
  } else if (opts.body === 'stream') {
    framing = length === undefined ? 'chunked' : 'length';
  } else {
    if (length !== undefined && length !== 0) throw new HeadError(`content-length ${length} but the request has no body`);
    framing = length === undefined ? 'none' : 'length';
  }
  if (BAD_VALUE.test(host)) throw new HeadError('host header has a control character (NUL, CR, LF, ...)');
  let head = `${method} ${target} HTTP/1.1\r\nhost: ${host}\r\n`;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    if (name.charCodeAt(0) === 58 /* : */) continue; // HTTP/2 pseudo headers
    if (!isToken(name)) throw new HeadError(`header name ${JSON.stringify(name.slice(0, 100))} is not a valid token`);
    const lower = name.toLowerCase();
    if (lower === 'host' || lower === 'content-length' || HOP_BY_HOP.has(lower)) continue;
    if (nominated !== undefined && nominated.has(lower)) continue;
    if (Array.isArray(v)) {
      for (const x of v) {
        if (BAD_VALUE.test(x)) throw new HeadError(`header ${JSON.stringify(name)} has a control character (NUL, CR, LF, ...) or a non-latin1 character in its value`);
        head += `${name}: ${x}\r\n`;
      }
    } else {
      const x = typeof v === 'number' ? String(v) : v;
      if (BAD_VALUE.test(x)) throw new HeadError(`header ${JSON.stringify(name)} has a control character (NUL, CR, LF, ...) or a non-latin1 character in its value`);
      head += `${name}: ${x}\r\n`;
    }
  }
  if (teTrailers) head += 'te: trailers\r\n';
  if (framing === 'length') head += `content-length: ${length}\r\n`;
  else if (framing === 'chunked') head += 'transfer-encoding: chunked\r\n';
  const close = opts.close === true;
  if (opts.upgrade && upgrade !== undefined) {
    for (const u of upgrade) {
      if (BAD_VALUE.test(u)) throw new HeadError('upgrade header has a control character (NUL, CR, LF, ...)');
      head += `upgrade: ${u}\r\n`;
    }
    head += close ? 'connection: upgrade, close\r\n' : 'connection: upgrade\r\n';
  } else if (close) head += 'connection: close\r\n';
  return { head: head + '\r\n', framing, length: length ?? 0, close };
}
