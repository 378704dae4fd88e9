// Incremental HTTP/1.1 response parser (RFC 9112): strict head, framing and chunked decoding; body slices are not copied.
import { TCHAR } from './h1-head.js';

export type ResponseHeaders = Record<string, string | string[]>;

/** Limits on what an upstream may send (the same as the proxy's request head limits). */
export const MAX_HEAD_BYTES = 60 * 1024;
export const MAX_HEADERS = 100;
/** A chunk-size line with its extensions. */
export const MAX_CHUNK_LINE = 4096;
/** Interim (1xx) responses before the final one. */
export const MAX_INTERIM = 32;

/** What the parser reports, in order: any interim heads, one head, body slices, then the end. */
export interface ResponseEvents {
  onInterim(status: number, headers: ResponseHeaders): void;
  onHead(status: number, reason: string, headers: ResponseHeaders): void;
  /** A slice of the buffer given to execute() (not copied; valid as long as that buffer is). */
  onBody(chunk: Buffer): void;
  /** The message ended; trailers of a chunked body when it had any. */
  onComplete(trailers: ResponseHeaders | undefined): void;
}

/** The response broke HTTP/1.1 framing or syntax: the connection cannot be trusted any more. */
export class ResponseError extends Error {}

const enum S {
  Head,
  BodyLength,
  BodyClose,
  ChunkSize,
  ChunkExt,
  ChunkSizeLf,
  ChunkData,
  ChunkDataCr,
  ChunkDataLf,
  TrailerStart,
  TrailerStartLf,
  Trailers,
  Done,
}

const CRLF2 = Buffer.from('\r\n\r\n', 'latin1');
const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[0x41 + i] = 10 + i;
  HEX[0x61 + i] = 10 + i;
}
/** chunk-ext after the size: *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] ) (RFC 9112 7.1.1). */
const CHUNK_EXT = /^(?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"))?)*$/;
/** 13 hex digits keep a chunk size below 2^52 (exact in a double). */
const MAX_HEX_DIGITS = 13;

/** Where the parsed head says the body ends. */
export interface Framing {
  kind: 'none' | 'length' | 'chunked' | 'close';
  length: number;
  /** The connection may carry another request after this response. */
  keepAlive: boolean;
}

/**
 * Framing of a final response (RFC 9112 6.3): none for HEAD, 1xx, 204, 304; chunked; content-length;
 * else read until close. Both content-length and transfer-encoding, or transfer-encoding other than
 * a single "chunked", or differing content-lengths are errors (a smuggling vector through a proxy).
 */
export function responseFraming(method: string, status: number, http10: boolean, h: ResponseHeaders): Framing {
  const conn = h.connection;
  let close = false;
  let keep = false;
  if (conn !== undefined) {
    for (const v of typeof conn === 'string' ? [conn] : conn) {
      for (const part of v.split(',')) {
        const t = part.trim().toLowerCase();
        if (t === 'close') close = true;
        else if (t === 'keep-alive') keep = true;
      }
    }
  }
  const keepAlive = !close && (!http10 || keep);
  const te = h['transfer-encoding'];
  const cl = h['content-length'];
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) {
    return { kind: 'none', length: 0, keepAlive };
  }
  if (te !== undefined) {
    if (cl !== undefined) throw new ResponseError('response has both transfer-encoding and content-length');
    if (http10) throw new ResponseError('HTTP/1.0 response has transfer-encoding');
    if (typeof te !== 'string' || te.trim().toLowerCase() !== 'chunked') {
      throw new ResponseError(`unsupported response transfer-encoding ${JSON.stringify(typeof te === 'string' ? te : te.join(', '))} (only a single "chunked")`);
    }
    return { kind: 'chunked', length: 0, keepAlive };
  }
  if (cl !== undefined) {
    let n: number | undefined;
    for (const v of typeof cl === 'string' ? [cl] : cl) {
      for (const part of v.split(',')) {
        const p = part.trim();
        if (!/^\d{1,15}$/.test(p)) throw new ResponseError(`response content-length ${JSON.stringify(v)} is not a number`);
        const x = Number(p);
        if (n !== undefined && n !== x) throw new ResponseError(`response has conflicting content-length values ${n} and ${x}`);
        n = x;
      }
    }
    return { kind: 'length', length: n!, keepAlive };
  }
  return { kind: 'close', length: 0, keepAlive: false };
}

/** Parses header field lines in buf[start, end) (each ending CRLF) into `out`; throws ResponseError naming `what`. */
export function parseFields(buf: Buffer, start: number, end: number, out: ResponseHeaders, what: string): number {
  let count = 0;
  let pos = start;
  while (pos < end) {
    const lf = buf.indexOf(10, pos);
    if (lf < 0 || lf > end) throw new ResponseError(`${what}: line without CRLF`);
    if (lf === pos || buf[lf - 1] !== 13) throw new ResponseError(`${what}: bare LF in a header line`);
    const lineEnd = lf - 1;
    const first = buf[pos];
    if (first === 0x20 || first === 0x09) throw new ResponseError(`${what}: obsolete line folding`);
    let i = pos;
    while (i < lineEnd && TCHAR[buf[i]] === 1) i++;
    if (i === pos || i >= lineEnd || buf[i] !== 58 /* : */) {
      throw new ResponseError(`${what}: invalid header name ${JSON.stringify(buf.toString('latin1', pos, Math.min(lineEnd, pos + 60)))}`);
    }
    const name = buf.toString('latin1', pos, i).toLowerCase();
    let vs = i + 1;
    while (vs < lineEnd && (buf[vs] === 0x20 || buf[vs] === 0x09)) vs++;
    let ve = lineEnd;
    while (ve > vs && (buf[ve - 1] === 0x20 || buf[ve - 1] === 0x09)) ve--;
    for (let j = vs; j < ve; j++) {
      const c = buf[j];
      if ((c < 0x20 && c !== 0x09) || c === 0x7f) throw new ResponseError(`${what}: header ${JSON.stringify(name)} has an invalid byte 0x${c.toString(16).padStart(2, '0')} in its value`);
    }
    const value = buf.toString('latin1', vs, ve);
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (typeof prev === 'string') out[name] = [prev, value];
    else prev.push(value);
    if (++count > MAX_HEADERS) throw new ResponseError(`${what}: more than ${MAX_HEADERS} header fields`);
    pos = lf + 1;
  }
  return count;
}

export class ResponseParser {
  private state = S.Done;
  private method = 'GET';
  /** Accumulated head (or trailer section) bytes when it spans reads; grows by doubling up to the limit. */
  private acc: Buffer | undefined;
  private accLen = 0;
  private interim = 0;
  private remaining = 0;
  private hexDigits = 0;
  private lineBytes = 0;
  private ext = '';
  private trailers: ResponseHeaders | undefined;
  /** Set by stop(): execute() returns at once after the current callback. */
  private stopped = false;
  framing: Framing = { kind: 'none', length: 0, keepAlive: false };
  /** Any byte of a response (even an interim one) arrived. */
  started = false;
  /** The final head was parsed. */
  headDone = false;
  /** The final response was 101 Switching Protocols (only when reset() allowed it): the bytes after it are another protocol. */
  upgraded = false;
  private upgradeOk = false;

  constructor(private readonly ev: ResponseEvents) {}

  /** Starts a new response (to a request with `method`; `upgrade`: the request asked to switch protocols, so 101 ends it). */
  reset(method: string, upgrade = false): void {
    this.state = S.Head;
    this.method = method;
    this.upgradeOk = upgrade;
    this.upgraded = false;
    this.accLen = 0;
    this.interim = 0;
    this.trailers = undefined;
    this.stopped = false;
    this.started = false;
    this.headDone = false;
  }

  /**
   * Starts directly in a body framed by `kind` (a request body, whose head was parsed elsewhere): execute()
   * then reports its slices and its end exactly as for a response body.
   */
  beginBody(kind: 'length' | 'chunked', length: number): void {
    this.reset('POST');
    this.headDone = true;
    if (kind === 'chunked') this.startChunk();
    else {
      this.remaining = length;
      this.state = length === 0 ? S.Done : S.BodyLength;
    }
  }

  /** Ends parsing from inside a callback (the exchange was aborted). */
  stop(): void {
    this.stopped = true;
  }

  get done(): boolean {
    return this.state === S.Done;
  }

  /** Whether the body runs until the connection closes (EOF then completes it). */
  get untilClose(): boolean {
    return this.state === S.BodyClose;
  }

  /**
   * Feeds bytes; returns how many were consumed. Fewer than buf.length means the message ended there
   * and bytes follow it (the connection must not be reused). Throws ResponseError on malformed input.
   */
  execute(buf: Buffer): number {
    let p = 0;
    const n = buf.length;
    if (n > 0) this.started = true;
    while (p < n && !this.stopped) {
      switch (this.state) {
        case S.Head: {
          p = this.head(buf, p);
          break;
        }
        case S.BodyLength: {
          const take = Math.min(this.remaining, n - p);
          this.remaining -= take;
          const slice = buf.subarray(p, p + take);
          p += take;
          if (this.remaining === 0) this.state = S.Done;
          this.ev.onBody(slice);
          if (this.state === S.Done && !this.stopped) this.ev.onComplete(undefined);
          break;
        }
        case S.BodyClose: {
          const slice = p === 0 ? buf : buf.subarray(p);
          p = n;
          this.ev.onBody(slice);
          break;
        }
        case S.ChunkSize: {
          const c = buf[p];
          const d = HEX[c];
          if (d >= 0) {
            if (++this.hexDigits > MAX_HEX_DIGITS) throw new ResponseError(`chunk size has more than ${MAX_HEX_DIGITS} hex digits`);
            this.remaining = this.remaining * 16 + d;
            this.lineBytes++;
            p++;
          } else if (this.hexDigits === 0) {
            throw new ResponseError(`chunk size expected, got byte 0x${c.toString(16).padStart(2, '0')}`);
          } else if (c === 13) {
            this.state = S.ChunkSizeLf;
            p++;
          } else if (c === 0x3b /* ; */ || c === 0x20 || c === 0x09) {
            this.state = S.ChunkExt;
            this.ext = '';
          } else throw new ResponseError(`invalid byte 0x${c.toString(16).padStart(2, '0')} after the chunk size`);
          break;
        }
        case S.ChunkExt: {
          let i = p;
          while (i < n && buf[i] !== 13 && buf[i] !== 10) i++;
          this.lineBytes += i - p;
          if (this.lineBytes > MAX_CHUNK_LINE) throw new ResponseError(`chunk-size line longer than ${MAX_CHUNK_LINE} bytes`);
          this.ext += buf.toString('latin1', p, i);
          p = i;
          if (i < n) {
            if (buf[i] === 10) throw new ResponseError('bare LF after chunk extensions');
            if (!CHUNK_EXT.test(this.ext)) throw new ResponseError(`invalid chunk extension ${JSON.stringify(this.ext.slice(0, 60))}`);
            this.state = S.ChunkSizeLf;
            p++;
          }
          break;
        }
        case S.ChunkSizeLf: {
          if (buf[p] !== 10) throw new ResponseError('chunk-size line not ended by CRLF');
          p++;
          this.state = this.remaining === 0 ? S.TrailerStart : S.ChunkData;
          break;
        }
        case S.ChunkData: {
          const take = Math.min(this.remaining, n - p);
          this.remaining -= take;
          const slice = buf.subarray(p, p + take);
          p += take;
          if (this.remaining === 0) this.state = S.ChunkDataCr;
          this.ev.onBody(slice);
          break;
        }
        case S.ChunkDataCr:
          if (buf[p] !== 13) throw new ResponseError('chunk data not followed by CRLF (chunk longer than its size)');
          p++;
          this.state = S.ChunkDataLf;
          break;
        case S.ChunkDataLf:
          if (buf[p] !== 10) throw new ResponseError('chunk data not followed by CRLF');
          p++;
          this.startChunk();
          break;
        case S.TrailerStart:
          if (buf[p] === 13) {
            p++;
            this.state = S.TrailerStartLf;
          } else {
            this.state = S.Trailers;
            this.accLen = 0;
          }
          break;
        case S.TrailerStartLf:
          if (buf[p] !== 10) throw new ResponseError('last chunk not ended by CRLF');
          p++;
          this.state = S.Done;
          this.ev.onComplete(undefined);
          break;
        case S.Trailers:
          p = this.trailerSection(buf, p);
          break;
        case S.Done:
          return p;
      }
    }
    return p;
  }

  /** At EOF: completes a close-delimited body; anything else unfinished is an error (the caller's reset). */
  finish(): boolean {
    if (this.state === S.BodyClose) {
      this.state = S.Done;
      this.ev.onComplete(undefined);
      return true;
    }
    return this.state === S.Done;
  }

  private startChunk(): void {
    this.state = S.ChunkSize;
    this.remaining = 0;
    this.hexDigits = 0;
    this.lineBytes = 0;
  }

  /** Appends buf[p, q) to the accumulator; returns the offset (in acc) from which to search for CRLFCRLF. */
  private accumulate(buf: Buffer, p: number, q: number, what: string): number {
    const add = q - p;
    if (this.accLen + add > MAX_HEAD_BYTES + 4) throw new ResponseError(`${what} larger than ${MAX_HEAD_BYTES} bytes`);
    if (this.acc === undefined || this.acc.length < this.accLen + add) {
      const grown = Buffer.allocUnsafe(Math.min(MAX_HEAD_BYTES + 4, Math.max(1024, (this.accLen + add) * 2)));
      if (this.acc !== undefined) this.acc.copy(grown, 0, 0, this.accLen);
      this.acc = grown;
    }
    buf.copy(this.acc, this.accLen, p, q);
    const from = Math.max(0, this.accLen - 3);
    this.accLen += add;
    return from;
  }

  /** Head state: finds the end of the head (in buf directly when it arrives whole) and parses it. */
  private head(buf: Buffer, p: number): number {
    let src: Buffer;
    let start: number;
    let end: number;
    let consumedTo: number;
    if (this.accLen === 0) {
      const e = buf.indexOf(CRLF2, p);
      if (e >= 0 && e - p <= MAX_HEAD_BYTES) {
        src = buf;
        start = p;
        end = e + 2;
        consumedTo = e + 4;
      } else {
        if (e >= 0) throw new ResponseError(`response head larger than ${MAX_HEAD_BYTES} bytes`);
        this.accumulate(buf, p, buf.length, 'response head');
        return buf.length;
      }
    } else {
      const prevLen = this.accLen;
      const from = this.accumulate(buf, p, buf.length, 'response head');
      const e = this.acc!.subarray(0, this.accLen).indexOf(CRLF2, from);
      if (e < 0) return buf.length;
      if (e > MAX_HEAD_BYTES) throw new ResponseError(`response head larger than ${MAX_HEAD_BYTES} bytes`);
      src = this.acc!;
      start = 0;
      end = e + 2;
      consumedTo = p + (e + 4 - prevLen);
      this.accLen = 0;
    }
    this.parseHead(src, start, end);
    return consumedTo;
  }

  private parseHead(buf: Buffer, start: number, end: number): void {
    // Status line: HTTP/1.x SP 3DIGIT [SP reason] CRLF
    const lf = buf.indexOf(10, start);
    if (lf < 0 || lf > end || buf[lf - 1] !== 13 || lf - 1 < start) throw new ResponseError('status line not ended by CRLF');
    const lineEnd = lf - 1;
    if (
      lineEnd - start < 12 ||
      buf.toString('latin1', start, start + 7) !== 'HTTP/1.' ||
      (buf[start + 7] !== 0x31 && buf[start + 7] !== 0x30) ||
      buf[start + 8] !== 0x20
    ) {
      throw new ResponseError(`invalid status line ${JSON.stringify(buf.toString('latin1', start, Math.min(lineEnd, start + 60)))}`);
    }
    const http10 = buf[start + 7] === 0x30;
    let status = 0;
    for (let i = start + 9; i < start + 12; i++) {
      const c = buf[i] - 0x30;
      if (c < 0 || c > 9) throw new ResponseError(`invalid status code in ${JSON.stringify(buf.toString('latin1', start, Math.min(lineEnd, start + 60)))}`);
      status = status * 10 + c;
    }
    if (status < 100 || status > 599) throw new ResponseError(`status code ${status} out of range`);
    let reason = '';
    if (lineEnd > start + 12) {
      if (buf[start + 12] !== 0x20) throw new ResponseError('status code not followed by a space');
      for (let i = start + 13; i < lineEnd; i++) {
        const c = buf[i];
        if ((c < 0x20 && c !== 0x09) || c === 0x7f) throw new ResponseError(`invalid byte 0x${c.toString(16).padStart(2, '0')} in the reason phrase`);
      }
      reason = buf.toString('latin1', start + 13, lineEnd);
    }
    const headers: ResponseHeaders = Object.create(null) as ResponseHeaders;
    parseFields(buf, lf + 1, end, headers, 'response head');
    if (status === 101 && this.upgradeOk) {
      this.framing = { kind: 'none', length: 0, keepAlive: false };
      this.headDone = true;
      this.upgraded = true;
      this.state = S.Done;
      this.ev.onHead(status, reason, headers);
      if (!this.stopped) this.ev.onComplete(undefined);
      return;
    }
    if (status < 200) {
      if (status === 101) throw new ResponseError('101 Switching Protocols to a request that did not ask to upgrade');
      if (++this.interim > MAX_INTERIM) throw new ResponseError(`more than ${MAX_INTERIM} interim (1xx) responses`);
      // Interim response: another head follows on the same connection.
      this.ev.onInterim(status, headers);
      return;
    }
    this.framing = responseFraming(this.method, status, http10, headers);
    this.headDone = true;
    switch (this.framing.kind) {
      case 'none':
        this.state = S.Done;
        break;
      case 'length':
        this.remaining = this.framing.length;
        this.state = this.remaining === 0 ? S.Done : S.BodyLength;
        break;
      case 'chunked':
        this.startChunk();
        break;
      case 'close':
        this.state = S.BodyClose;
        break;
    }
    stripConnectionFields(headers);
    this.ev.onHead(status, reason, headers);
    if (this.state === S.Done && !this.stopped) this.ev.onComplete(undefined);
  }

  private trailerSection(buf: Buffer, p: number): number {
    const prevLen = this.accLen;
    const from = this.accumulate(buf, p, buf.length, 'response trailers');
    const acc = this.acc!;
    // The section began with a field line; it ends at the first empty line (CRLFCRLF).
    const e = acc.subarray(0, this.accLen).indexOf(CRLF2, from);
    if (e < 0) return buf.length;
    const t: ResponseHeaders = Object.create(null) as ResponseHeaders;
    parseFields(acc, 0, e + 2, t, 'response trailers');
    this.accLen = 0;
    this.state = S.Done;
    this.ev.onComplete(t);
    return p + (e + 4 - prevLen);
  }
}

/** Response fields that describe only this connection (RFC 9110 7.6.1), and those Connection names; content-length stays. */
const RESPONSE_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer'];

export function stripConnectionFields(h: ResponseHeaders): void {
  const conn = h.connection;
  if (conn !== undefined) {
    for (const v of typeof conn === 'string' ? [conn] : conn) {
      for (const part of v.split(',')) {
        const t = part.trim().toLowerCase();
        if (t && t !== 'content-length') delete h[t];
      }
    }
  }
  for (const k of RESPONSE_HOP) if (h[k] !== undefined) delete h[k];
}
