// Strict HTTP/1.1 request-head parsing (RFC 9112) for a pipe that forwards requests byte for byte: framing and nothing more.
import { TCHAR } from './h1-head.js';
import { MAX_HEAD_BYTES, parseFields, ResponseError, type ResponseHeaders } from './h1-parser.js';

export interface RequestHeadInfo {
  method: string;
  target: string;
  http10: boolean;
  headers: ResponseHeaders;
  /** How the body that follows is delimited. */
  framing: 'none' | 'length' | 'chunked';
  length: number;
  /** Upgrade requested (an Upgrade field named by Connection): a 101 answer turns the connection into a tunnel. */
  upgrade: boolean;
  /** The client will not send another request on this connection. */
  close: boolean;
}

/** Why a request head is refused, with the status to answer (the connection is closed after it). */
export class RequestHeadError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 431 | 501,
  ) {
    super(message);
  }
}

export const MAX_REQUEST_HEAD_BYTES = MAX_HEAD_BYTES;

function tokens(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  const out: string[] = [];
  for (const s of typeof v === 'string' ? [v] : v) for (const p of s.split(',')) {
    const t = p.trim().toLowerCase();
    if (t) out.push(t);
  }
  return out;
}

/**
 * Parses the head in buf[start, end), `end` just past the CRLF of its last field line (the empty line not
 * included). Anything a proxy and an app could frame differently is refused: both content-length and
 * transfer-encoding, a transfer-encoding other than one "chunked", repeated or non-numeric content-length,
 * a missing or repeated Host, obsolete line folding, bare LF, invalid bytes. Pure: no I/O.
 */
export function parseRequestHead(buf: Buffer, start: number, end: number): RequestHeadInfo {
  const lf = buf.indexOf(10, start);
  if (lf < 0 || lf >= end || lf === start || buf[lf - 1] !== 13) throw new RequestHeadError('request line not ended by CRLF', 400);
  const lineEnd = lf - 1;
  let i = start;
  while (i < lineEnd && TCHAR[buf[i]] === 1) i++;
  if (i === start || buf[i] !== 0x20) throw new RequestHeadError(`invalid request line ${JSON.stringify(buf.toString('latin1', start, Math.min(lineEnd, start + 60)))}`, 400);
  const method = buf.toString('latin1', start, i);
  const ts = i + 1;
  let te = ts;
  while (te < lineEnd && buf[te] > 0x20 && buf[te] < 0x7f) te++;
  if (te === ts || buf[te] !== 0x20 || lineEnd - te !== 9) {
    throw new RequestHeadError(`invalid request line ${JSON.stringify(buf.toString('latin1', start, Math.min(lineEnd, start + 60)))}`, 400);
  }
  const version = buf.toString('latin1', te + 1, lineEnd);
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') throw new RequestHeadError(`unsupported protocol version ${JSON.stringify(version)}`, 400);
  const target = buf.toString('latin1', ts, te);
  if (method === 'CONNECT') throw new RequestHeadError('CONNECT tunnels are not supported', 400);
  if (target.charCodeAt(0) !== 47 /* / */ && !(target === '*' && method === 'OPTIONS') && !/^https?:\/\//i.test(target)) {
    throw new RequestHeadError(`request target ${JSON.stringify(target.slice(0, 100))} is not origin-form`, 400);
  }
  const headers = Object.create(null) as ResponseHeaders;
  try {
    parseFields(buf, lf + 1, end, headers, 'request head');
  } catch (e) {
    throw new RequestHeadError((e as ResponseError).message, /more than \d+ header fields/.test((e as Error).message) ? 431 : 400);
  }
  const http10 = version === 'HTTP/1.0';
  const host = headers.host;
  if (Array.isArray(host)) throw new RequestHeadError('request has more than one Host header', 400);
  if (host === undefined && !http10) throw new RequestHeadError('HTTP/1.1 request has no Host header', 400);
  const conn = tokens(headers.connection);
  const close = conn.includes('close') || (http10 && !conn.includes('keep-alive'));
  const upgrade = headers.upgrade !== undefined && conn.includes('upgrade');
  const tEnc = headers['transfer-encoding'];
  const cl = headers['content-length'];
  if (tEnc !== undefined) {
    if (cl !== undefined) throw new RequestHeadError('request has both transfer-encoding and content-length', 400);
    if (http10) throw new RequestHeadError('HTTP/1.0 request has transfer-encoding', 400);
    if (typeof tEnc !== 'string' || tEnc.trim().toLowerCase() !== 'chunked') {
      throw new RequestHeadError(`unsupported request transfer-encoding ${JSON.stringify(typeof tEnc === 'string' ? tEnc : tEnc.join(', '))} (only a single "chunked")`, 501);
    }
    return { method, target, http10, headers, framing: 'chunked', length: 0, upgrade, close };
  }
  if (cl !== undefined) {
    if (typeof cl !== 'string') throw new RequestHeadError('request has more than one content-length', 400);
    if (!/^\d{1,15}$/.test(cl)) throw new RequestHeadError(`request content-length ${JSON.stringify(cl.slice(0, 40))} is not a number`, 400);
    const length = Number(cl);
    return { method, target, http10, headers, framing: length > 0 ? 'length' : 'none', length, upgrade, close };
  }
  return { method, target, http10, headers, framing: 'none', length: 0, upgrade, close };
}
