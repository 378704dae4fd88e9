// Raw-socket clients for hostile-traffic tests: an HTTP/1 exchange and a minimal h2c frame writer/reader (no HPACK table).
import * as net from 'node:net';

export interface RawResult {
  out: string;
  /** The proxy closed the connection (end or close) before the deadline. */
  closed: boolean;
}

/** Writes bytes, collects the reply until the peer closes or waitMs passes. */
export function rawExchange(port: number, data: string | Buffer, waitMs = 2000): Promise<RawResult> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(data));
    let out = '';
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve({ out, closed });
    };
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
    const t = setTimeout(() => finish(false), waitMs);
  });
}

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 1, END_HEADERS: 4, ACK: 1 } as const;

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

function hpackInt(n: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (n < max) return [first | n];
  const out = [first | max];
  n -= max;
  while (n >= 128) {
    out.push((n % 128) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** HPACK block of "literal without indexing, new name" fields: byte-exact, so any name or value bytes can be sent. */
export function hpack(fields: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [n, v] of fields) {
    const nb = Buffer.from(n, 'latin1');
    const vb = Buffer.from(v, 'latin1');
    parts.push(Buffer.from([0x00]), Buffer.from(hpackInt(nb.length, 7, 0)), nb, Buffer.from(hpackInt(vb.length, 7, 0)), vb);
  }
  return Buffer.concat(parts);
}

export function requestFields(authority: string, path = '/', extra: [string, string][] = []): [string, string][] {
  return [[':method', 'GET'], [':scheme', 'http'], [':path', path], [':authority', authority], ...extra];
}

export interface H2Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/** Parses complete frames from the server's byte stream (skipping nothing: the server sends no preface of its own besides SETTINGS). */
export function parseFrames(buf: Buffer): H2Frame[] {
  const out: H2Frame[] = [];
  let i = 0;
  while (i + 9 <= buf.length) {
    const len = buf.readUIntBE(i, 3);
    if (i + 9 + len > buf.length) break;
    out.push({ type: buf[i + 3], flags: buf[i + 4], stream: buf.readUInt32BE(i + 5) & 0x7fffffff, payload: buf.subarray(i + 9, i + 9 + len) });
    i += 9 + len;
  }
  return out;
}

/** Opens an h2c prior-knowledge connection, writes the given frames, collects the server's frames until close or waitMs. */
export function h2Raw(port: number, frames: Buffer[], waitMs = 1500): Promise<{ frames: H2Frame[]; closed: boolean; bytes: number }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0), ...frames]));
    });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      const buf = Buffer.concat(chunks);
      resolve({ frames: parseFrames(buf), closed, bytes: buf.length });
    };
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
    const t = setTimeout(() => finish(false), waitMs);
  });
}
