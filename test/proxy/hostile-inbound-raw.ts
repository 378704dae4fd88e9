// Raw clients for hostile-traffic tests against the inbound listener: plaintext or mTLS (mesh SVID, SNI picks the port), HTTP/1 bytes or h2 frames.
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as http2 from 'node:http2';
import { PREFACE, FRAME, frame, parseFrames, type H2Frame, type RawResult } from './hostile-raw.js';
import type { Mesh } from './helpers/mesh.js';

/** Opens a connection; `ready` is the event after which bytes may be written. */
export interface Dialer {
  name: string;
  open(alpn: 'http/1.1' | 'h2'): { socket: net.Socket; ready: 'connect' | 'secureConnect' };
}

export function plainDialer(port: number): Dialer {
  return { name: 'plaintext', open: () => ({ socket: net.connect(port, '127.0.0.1'), ready: 'connect' }) };
}

/** A mesh client certificate (default/a) and the SNI the outbound proxies send for the app's port. */
export async function mtlsDialer(mesh: Mesh, port: number, appPort: number): Promise<Dialer> {
  const id = await mesh.ca.issue('default', 'a');
  const cert = (id.certChainPem as string[]).join('\n');
  return {
    name: 'mTLS',
    open: (alpn) => ({
      socket: tls.connect({
        host: '127.0.0.1',
        port,
        servername: `outbound_.${appPort}_._.b.default.svc.cluster.local`,
        cert,
        key: id.keyPem,
        ca: mesh.ca.bundlePem,
        ALPNProtocols: [alpn],
        // The server's SVID names a SPIFFE ID, not a DNS name; the CA check is what matters here.
        checkServerIdentity: () => undefined,
      }),
      ready: 'secureConnect',
    }),
  };
}

/** Writes bytes, collects the reply until the peer closes or waitMs passes. */
export function rawVia(d: Dialer, alpn: 'http/1.1' | 'h2', data: Buffer | string, waitMs = 2000): Promise<RawResult & { buf: Buffer }> {
  return new Promise((resolve) => {
    const { socket: s, ready } = d.open(alpn);
    s.once(ready, () => s.write(data));
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      const buf = Buffer.concat(chunks);
      resolve({ out: buf.toString('latin1'), closed, buf });
    };
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
    const t = setTimeout(() => finish(false), waitMs);
  });
}

/** h2 with prior knowledge (plaintext) or ALPN h2 (mTLS): preface, SETTINGS, the given frames; the server's frames back. */
export async function h2Via(d: Dialer, frames: Buffer[], waitMs = 1500): Promise<{ frames: H2Frame[]; closed: boolean }> {
  const r = await rawVia(d, 'h2', Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0), ...frames]), waitMs);
  return { frames: parseFrames(r.buf), closed: r.closed };
}

/** A well-behaved node:http2 client over the same transport. */
export function h2Client(d: Dialer, port: number): http2.ClientHttp2Session {
  const url = d.name === 'mTLS' ? `https://127.0.0.1:${port}` : `http://127.0.0.1:${port}`;
  const c = http2.connect(url, d.name === 'mTLS' ? { createConnection: () => d.open('h2').socket } : {});
  c.on('error', () => {});
  return c;
}

/** One request on an h2 session: status, headers and body. */
export function h2Request(c: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, timeoutMs = 3000): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const s = c.request(headers);
    s.setTimeout(timeoutMs, () => {
      s.close(http2.constants.NGHTTP2_CANCEL);
      reject(new Error(`request ${headers[':path']} timed out`));
    });
    let h: http2.IncomingHttpHeaders = {};
    let body = '';
    s.on('response', (r) => (h = r));
    s.on('data', (c: Buffer) => (body += c.toString()));
    s.on('error', reject);
    s.on('end', () => resolve({ status: Number(h[':status']), headers: h, body }));
    s.end();
  });
}

/** Polls `cond` every 20 ms until it holds or `ms` pass; returns whether it held (for bounded waits on another process's state). */
export async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}
