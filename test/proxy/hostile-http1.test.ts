// Hostile HTTP/1.1 on a raw socket to the outbound listener: exact status, x-trellis-error, connection closed, nothing forwarded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startMesh, type Mesh } from './helpers/mesh.js';
import { rawExchange } from './hostile-raw.js';

let mesh: Mesh;
before(async () => {
  mesh = await startMesh();
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
  ['Transfer-Encoding folded onto a continuation line ( chunked)', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: x\r\n chunked\r\n\r\n0\r\n\r\n`, 400, 'bad_request'],
  ['Transfer-Encoding: chunked, chunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`, 400, 'bad_request'],
  ['two Content-Length headers', `POST / HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab`, 400, 'bad_request'],
  ['whitespace before a header colon', `GET / HTTP/1.1\r\n${H}x-a : 1\r\n\r\n`, 400, 'bad_request'],
  ['LF-only line ends', `GET / HTTP/1.1\n${H.replace('\r\n', '\n')}x-a: 1\n\n`, 400, 'bad_request'],
  ['NUL inside a header value', `GET / HTTP/1.1\r\n${H}x-a: a\0b\r\n\r\n`, 400, 'bad_request'],
  ['bare CR inside a header value', `GET / HTTP/1.1\r\n${H}x-a: a\rb\r\n\r\n`, 400, 'bad_request'],
  ['bare LF inside a header value', `GET / HTTP/1.1\r\n${H}x-a: a\nx-b: c\r\n\r\n`, 400, 'bad_request'],
  ['absolute URI with a non-HTTP scheme', `GET ftp://b.default.svc.cluster.local/x HTTP/1.1\r\n${H}\r\n`, 400, 'bad_request'],
  ['absolute URI with a file scheme', `GET file:///etc/passwd HTTP/1.1\r\n${H}\r\n`, 400, 'bad_request'],
  ['headers over 60 KiB', `GET / HTTP/1.1\r\n${H}x-big: ${'a'.repeat(62 * 1024)}\r\n\r\n`, 431, 'headers_too_large'],
  ['101 headers', `GET / HTTP/1.1\r\n${H}${headerLines(100)}\r\n`, 431, 'headers_too_large'],
  ['1000 headers', `GET / HTTP/1.1\r\n${H}${headerLines(999)}\r\n`, 431, 'headers_too_large'],
];

for (const [what, data, status, code] of cases) {
  test(`hostile HTTP/1.1: ${what} -> ${status} ${code}, closed, nothing forwarded`, async () => {
    const before = mesh.seen.length;
    const r = await rawExchange(mesh.outPort, data);
    assert.match(r.out, new RegExp(`^HTTP/1\\.1 ${status} `), JSON.stringify(r.out.slice(0, 300)));
    assert.match(r.out, new RegExp(`\r\nx-trellis-error: ${code}\r\n`, 'i'));
    assert.equal(r.closed, true, 'connection closed');
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(mesh.seen.length, before, 'the app saw nothing');
  });
}

test('limits are exact: 100 headers and ~59 KiB of headers are accepted', async () => {
  const hundred = await rawExchange(mesh.outPort, `GET / HTTP/1.1\r\nHost: static\r\nConnection: close\r\n${headerLines(98)}\r\n`);
  assert.match(hundred.out, /^HTTP\/1\.1 200 /, hundred.out.slice(0, 200));
  const big = await rawExchange(mesh.outPort, `GET / HTTP/1.1\r\nHost: static\r\nConnection: close\r\nx-big: ${'a'.repeat(59 * 1024)}\r\n\r\n`);
  assert.match(big.out, /^HTTP\/1\.1 200 /, big.out.slice(0, 200));
});

test('a plain chunked request (with optional whitespace) still goes through', async () => {
  const before = mesh.seen.length;
  const r = await rawExchange(mesh.outPort, `POST / HTTP/1.1\r\n${H}Connection: close\r\nTransfer-Encoding:  Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`);
  assert.match(r.out, /^HTTP\/1\.1 200 /, r.out.slice(0, 300));
  assert.match(r.out, /"body":"abc"/);
  assert.equal(mesh.seen.length, before + 1);
});

test('client-supplied x-trellis-* and x-forwarded-client-cert never reach the app', async () => {
  const r = await rawExchange(
    mesh.outPort,
    `GET / HTTP/1.1\r\n${H}Connection: close\r\nx-trellis-foo: evil\r\nX-Trellis-Peer: spiffe://cluster.local/ns/x/sa/admin\r\nx-forwarded-client-cert: By=spiffe://x;URI=spiffe://evil\r\n\r\n`,
  );
  assert.match(r.out, /^HTTP\/1\.1 200 /);
  const seen = mesh.seen.at(-1)!;
  assert.equal(seen['x-trellis-foo'], undefined);
  assert.equal(seen['x-trellis-peer'], undefined);
  // B's inbound adds its own XFCC for the verified caller; the forged URI must not survive.
  assert.doesNotMatch(String(seen['x-forwarded-client-cert'] ?? ''), /evil/);
});

test('the admin port listens on 127.0.0.1 only', () => {
  const port = mesh.a.adminPort()!;
  assert.ok(port > 0);
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const rows = ['/proc/net/tcp', '/proc/net/tcp6']
    .flatMap((f) => {
      try {
        return readFileSync(f, 'utf8').split('\n').slice(1);
      } catch {
        return [];
      }
    })
    .map((l) => l.trim().split(/\s+/))
    .filter((c) => c[1]?.endsWith(`:${hex}`) && c[3] === '0A' /* LISTEN */);
  assert.equal(rows.length, 1, `one listening socket on ${port}`);
  assert.equal(rows[0][1], `0100007F:${hex}`, 'bound to 127.0.0.1');
});
