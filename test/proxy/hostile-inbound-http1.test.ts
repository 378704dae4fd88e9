// Hostile HTTP/1.1 on a raw socket to the INBOUND listener (L7), over mTLS and PERMISSIVE plaintext: exact status, closed, nothing reaches the app, counted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMesh, type Mesh } from './helpers/mesh.js';
import { mtlsDialer, plainDialer, rawVia, until, type Dialer } from './hostile-inbound-raw.js';

let mesh: Mesh;
let dialers: Dialer[] = [];
before(async () => {
  mesh = await startMesh({ mtls: 'PERMISSIVE', inboundL7: 'always' });
  dialers = [plainDialer(mesh.inPort), await mtlsDialer(mesh, mesh.inPort, mesh.ports.http)];
  // The app takes heads up to the proxy's limit (node's default is 16 KiB), so "accepted" means the proxy let it through.
  (mesh.httpApp as { maxHeaderSize?: number }).maxHeaderSize = 128 * 1024;
});
after(async () => {
  await mesh?.close();
});

const H = 'Host: b.default.svc.cluster.local\r\n';
const headerLines = (n: number) => Array.from({ length: n }, (_, i) => `x-h${i}: v\r\n`).join('');

// [what, raw request, status, x-trellis-error]
const cases: [string, string, number, string][] = [
  ['Content-Length and Transfer-Encoding together', `POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400, 'bad_request'],
  ['Transfer-Encoding: chunked twice', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400, 'bad_request'],
  ['Transfer-Encoding: gzip, chunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, 400, 'bad_request'],
  ['Transfer-Encoding: xchunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400, 'bad_request'],
  ['Transfer-Encoding: chunked, chunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`, 400, 'bad_request'],
  ['Transfer-Encoding folded onto a continuation line', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: x\r\n chunked\r\n\r\n0\r\n\r\n`, 400, 'bad_request'],
  ['two Content-Length headers', `POST / HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab`, 400, 'bad_request'],
  ['whitespace before a header colon', `GET / HTTP/1.1\r\n${H}x-a : 1\r\n\r\n`, 400, 'bad_request'],
  ['LF-only line ends', `GET / HTTP/1.1\n${H.replace('\r\n', '\n')}x-a: 1\n\n`, 400, 'bad_request'],
  ['NUL inside a header value', `GET / HTTP/1.1\r\n${H}x-a: a\0b\r\n\r\n`, 400, 'bad_request'],
  ['bare CR inside a header value', `GET / HTTP/1.1\r\n${H}x-a: a\rb\r\n\r\n`, 400, 'bad_request'],
  ['bare LF inside a header value', `GET / HTTP/1.1\r\n${H}x-a: a\nx-b: c\r\n\r\n`, 400, 'bad_request'],
  ['absolute URI with a non-HTTP scheme', `GET ftp://b.default.svc.cluster.local/x HTTP/1.1\r\n${H}\r\n`, 400, 'bad_request'],
  ['a CONNECT tunnel', `CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n`, 400, 'bad_request'],
  ['headers over 60 KiB', `GET / HTTP/1.1\r\n${H}x-big: ${'a'.repeat(62 * 1024)}\r\n\r\n`, 431, 'headers_too_large'],
  ['101 headers', `GET / HTTP/1.1\r\n${H}${headerLines(100)}\r\n`, 431, 'headers_too_large'],
  ['1000 headers', `GET / HTTP/1.1\r\n${H}${headerLines(999)}\r\n`, 431, 'headers_too_large'],
  ['101 headers on a WebSocket upgrade', `GET /ws HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\n${headerLines(98)}\r\n`, 431, 'headers_too_large'],
];

/** trellis_requests_total at the destination proxy for one response code and error code, summed over the other labels. */
function refusedCount(status: number, code: string): number {
  let n = 0;
  for (const line of mesh.b.metrics.render().split('\n')) {
    if (!line.startsWith('trellis_requests_total{') || !line.includes('reporter="destination"')) continue;
    if (line.includes(`response_code="${status}"`) && line.includes(`error_code="${code}"`)) n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
}

for (const [what, data, status, code] of cases) {
  test(`hostile HTTP/1.1 to inbound: ${what} -> ${status} ${code}, closed, nothing forwarded, counted`, async () => {
    for (const d of dialers) {
      const seen = mesh.seen.length;
      const counted = refusedCount(status, code);
      const r = await rawVia(d, 'http/1.1', data);
      assert.match(r.out, new RegExp(`^HTTP/1\\.1 ${status} `), `${d.name}: ${JSON.stringify(r.out.slice(0, 300))}`);
      assert.match(r.out, new RegExp(`\r\nx-trellis-error: ${code}\r\n`, 'i'), d.name);
      assert.equal(r.closed, true, `${d.name}: connection closed`);
      // The parser may fail again on the bytes after a refused head (the body of "xchunked"): still one answer.
      assert.equal(r.out.split('HTTP/1.1 ').length - 1, 1, `${d.name}: exactly one response: ${JSON.stringify(r.out)}`);
      // The exchange is recorded when the server sees the connection close, which may come after the client saw it.
      await until(() => refusedCount(status, code) > counted);
      assert.equal(refusedCount(status, code), counted + 1, `${d.name}: counted in trellis_requests_total{response_code="${status}",error_code="${code}"}`);
      assert.equal(mesh.seen.length, seen, `${d.name}: the app saw nothing`);
    }
  });
}

test('inbound limits are exact: 100 headers and ~59 KiB of headers reach the app', async () => {
  for (const d of dialers) {
    const hundred = await rawVia(d, 'http/1.1', `GET / HTTP/1.1\r\n${H}Connection: close\r\n${headerLines(98)}\r\n`);
    assert.match(hundred.out, /^HTTP\/1\.1 200 /, `${d.name}: ${hundred.out.slice(0, 200)}`);
    const big = await rawVia(d, 'http/1.1', `GET / HTTP/1.1\r\n${H}Connection: close\r\nx-big: ${'a'.repeat(59 * 1024)}\r\n\r\n`);
    assert.match(big.out, /^HTTP\/1\.1 200 /, `${d.name}: ${big.out.slice(0, 200)}`);
    assert.equal(mesh.seen.at(-1)!['x-big']?.length, 59 * 1024);
  }
});

test('inbound: a plain chunked request still goes through, and the refusal is labelled with the verified caller', async () => {
  for (const d of dialers) {
    const r = await rawVia(d, 'http/1.1', `POST / HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding:  Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`);
    assert.match(r.out, /^HTTP\/1\.1 200 /, r.out.slice(0, 300));
    assert.match(r.out, /"body":"abc"/);
  }
  const lines = mesh.b.metrics.render().split('\n').filter((l) => l.startsWith('trellis_requests_total{') && l.includes('error_code="bad_request"'));
  assert.ok(lines.some((l) => l.includes('source_principal="spiffe://cluster.local/ns/default/sa/a"') && l.includes('connection_security_policy="mutual_tls"')), lines.join('\n'));
  assert.ok(lines.some((l) => l.includes('source_principal="unknown"') && l.includes('connection_security_policy="none"')), lines.join('\n'));
});

test('outbound: a refused head whose body also trips the parser gets one answer and is counted once', async () => {
  const count = () =>
    mesh.a.metrics
      .render()
      .split('\n')
      .filter((l) => l.startsWith('trellis_requests_total{') && l.includes('reporter="source"') && l.includes('error_code="bad_request"'))
      .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  const before = count();
  const r = await rawVia(plainDialer(mesh.outPort), 'http/1.1', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`);
  assert.match(r.out, /^HTTP\/1\.1 400 /);
  assert.equal(r.out.split('HTTP/1.1 ').length - 1, 1, JSON.stringify(r.out));
  assert.ok(await until(() => count() > before));
  assert.equal(count(), before + 1);
});
