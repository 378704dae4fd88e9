// Hostile HTTP/2 against the INBOUND listener (L7), over mTLS (ALPN h2) and PERMISSIVE plaintext h2c: invalid fields, limits, rapid reset, CONTINUATION floods.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { startMesh, type Mesh } from './helpers/mesh.js';
import { FLAG, FRAME, frame, hpack, requestFields, type H2Frame } from './hostile-raw.js';
import { h2Client, h2Request, h2Via, mtlsDialer, plainDialer, until, type Dialer } from './hostile-inbound-raw.js';

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

const AUTH = 'b.default.svc.cluster.local';
const PROTOCOL_ERROR = 1;

/** What the server sent for stream 1: RST_STREAM with its code, or the response's first header byte (0x8c is :status 400). */
function answer(frames: H2Frame[]): string {
  for (const f of frames) {
    if (f.type === FRAME.RST_STREAM && f.stream === 1) return `RST_STREAM ${f.payload.readUInt32BE(0)}`;
    if (f.type === FRAME.HEADERS && f.stream === 1) return f.payload[0] === 0x8c ? 'status 400' : f.payload[0] === 0x88 ? 'status 200' : `HEADERS ${f.payload.toString('hex').slice(0, 8)}`;
    if (f.type === FRAME.GOAWAY) return `GOAWAY ${f.payload.readUInt32BE(4)}`;
  }
  return 'nothing';
}

// [what, field, what the server answers]: nghttp2 resets the stream for some fields (PROTOCOL_ERROR); fields with a
// control character in the value or a non-token name it drops before node sees them, so the request goes on without them.
const badFields: [string, [string, string], string][] = [
  ['CR in a header value', ['x-a', 'a\rb'], 'dropped'],
  ['LF in a header value', ['x-a', 'a\nx-injected: 1'], 'dropped'],
  ['NUL in a header value', ['x-a', 'a\0b'], 'dropped'],
  ['DEL in a header value', ['x-a', 'a\x7fb'], 'dropped'],
  ['a space in a header name', ['x a', 'v'], 'dropped'],
  ['an uppercase header name', ['X-Upper', 'v'], `RST_STREAM ${PROTOCOL_ERROR}`],
  ['transfer-encoding', ['transfer-encoding', 'chunked'], `RST_STREAM ${PROTOCOL_ERROR}`],
  ['a connection header', ['connection', 'close'], `RST_STREAM ${PROTOCOL_ERROR}`],
];

for (const [what, field, expected] of badFields) {
  test(`hostile h2 to inbound: ${what} -> ${expected === 'dropped' ? 'the field never reaches the HTTP/1.1 app' : `${expected}, nothing reaches the app`}`, async () => {
    for (const d of dialers) {
      const seen = mesh.seen.length;
      const r = await h2Via(d, [frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, hpack(requestFields(AUTH, '/', [field])))], 800);
      const got = mesh.seen.slice(seen);
      if (expected === 'dropped') {
        assert.equal(answer(r.frames), 'status 200', d.name);
        assert.equal(got.length, 1, d.name);
        for (const k of ['x-a', 'x-injected', 'x a', 'x-upper']) assert.equal(got[0][k], undefined, `${d.name}: ${k}`);
      } else {
        assert.equal(answer(r.frames), expected, d.name);
        assert.equal(got.length, 0, `${d.name}: the app saw nothing`);
      }
    }
  });
}

test('hostile h2 to inbound: a non-HTTP :scheme -> 400 bad_request, nothing reaches the app', async () => {
  for (const d of dialers) {
    const seen = mesh.seen.length;
    const block = hpack([[':method', 'GET'], [':scheme', 'ftp'], [':path', '/'], [':authority', AUTH]]);
    const r = await h2Via(d, [frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, block)], 800);
    assert.equal(answer(r.frames), 'status 400', d.name);
    assert.equal(mesh.seen.length, seen, `${d.name}: the app saw nothing`);
  }
});

const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`x-h${i}`, 'v']));

// [what, extra headers, status, x-trellis-error]
const limits: [string, Record<string, string>, number, string | undefined][] = [
  ['100 headers', many(100), 200, undefined],
  ['101 headers', many(101), 431, 'headers_too_large'],
  ['a 59 KiB header', { 'x-big': 'a'.repeat(59 * 1024) }, 200, undefined],
  ['a 60.5 KiB header', { 'x-big': 'a'.repeat(60 * 1024 + 512) }, 431, 'headers_too_large'],
];

for (const [what, extra, status, code] of limits) {
  test(`h2 to inbound: ${what} -> ${status}${code ? ` ${code}, nothing reaches the app` : ''}`, async () => {
    for (const d of dialers) {
      const seen = mesh.seen.length;
      const c = h2Client(d, mesh.inPort);
      try {
        const r = await h2Request(c, { ':path': '/limits', ':authority': AUTH, ...extra });
        assert.equal(r.status, status, `${d.name}: ${r.body}`);
        assert.equal(r.headers['x-trellis-error'], code, d.name);
        assert.equal(mesh.seen.length, seen + (code ? 0 : 1), d.name);
      } finally {
        c.close();
      }
    }
  });
}

test('h2 to inbound: a header list over what the server advertised resets the stream before node parses it, nothing reaches the app', async () => {
  for (const d of dialers) {
    const seen = mesh.seen.length;
    const r = await h2Via(d, [frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, hpack(requestFields(AUTH, '/', [['x-big', 'a'.repeat(100 * 1024)]])))], 800);
    assert.match(answer(r.frames), /^RST_STREAM|^GOAWAY/, d.name);
    assert.equal(mesh.seen.length, seen, `${d.name}: the app saw nothing`);
  }
});

/** A well-behaved second client: n sequential requests through the inbound listener to the app, all answered 200. */
async function bystander(d: Dialer, n: number): Promise<number> {
  const c = h2Client(d, mesh.inPort);
  let worst = 0;
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const r = await h2Request(c, { ':path': '/bystander', ':authority': AUTH });
      assert.equal(r.status, 200);
      worst = Math.max(worst, performance.now() - t0);
    }
  } finally {
    c.close();
  }
  return worst;
}

test('hostile h2 to inbound: rapid reset (1,000 HEADERS+RST_STREAM) closes the connection; a second client is still served', async (t) => {
  const block = hpack(requestFields(AUTH, '/rapid', [['x-attack', 'rapid']]));
  const frames: Buffer[] = [];
  for (let i = 0; i < 1000; i++) {
    const id = 1 + 2 * i;
    frames.push(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, block), frame(FRAME.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8])));
  }
  for (const d of dialers) {
    const seen = mesh.seen.length;
    const [attack, worst] = await Promise.all([h2Via(d, frames, 3000), bystander(d, 10)]);
    assert.equal(attack.closed, true, `${d.name}: the attacker's connection was closed`);
    const goaway = attack.frames.find((f) => f.type === FRAME.GOAWAY);
    const forwarded = mesh.seen.slice(seen).filter((h) => h['x-attack'] === 'rapid').length;
    // Streams parsed in the same read as the resets may start before the guard closes the session; they are cancelled.
    assert.ok(forwarded < 1000, `${d.name}: forwarded ${forwarded}`);
    t.diagnostic(`${d.name}: goaway=${goaway ? goaway.payload.readUInt32BE(4) : '-'} forwarded=${forwarded} bystander worst=${worst.toFixed(0)}ms`);
  }
});

test('hostile h2 to inbound: CONTINUATION flood closes the connection, nothing reaches the app; a second client is still served', async (t) => {
  const frames: Buffer[] = [frame(FRAME.HEADERS, FLAG.END_STREAM, 1, hpack(requestFields(AUTH, '/cont', [['x-attack', 'continuation']])))];
  const piece = hpack([['x-flood', 'a'.repeat(200)]]);
  for (let i = 0; i < 5000; i++) frames.push(frame(FRAME.CONTINUATION, 0, 1, piece));
  for (const d of dialers) {
    const seen = mesh.seen.length;
    const [attack, worst] = await Promise.all([h2Via(d, frames, 3000), bystander(d, 10)]);
    assert.equal(attack.closed, true, `${d.name}: connection closed`);
    assert.ok(!attack.frames.some((f) => f.type === FRAME.HEADERS && f.stream === 1), `${d.name}: no response to the flooded stream`);
    assert.equal(mesh.seen.slice(seen).filter((h) => h['x-attack'] === 'continuation' || h['x-flood']).length, 0, `${d.name}: the flooded request never reached the app`);
    const goaway = attack.frames.find((f) => f.type === FRAME.GOAWAY);
    t.diagnostic(`${d.name}: goaway=${goaway ? goaway.payload.readUInt32BE(4) : '-'} bystander worst=${worst.toFixed(0)}ms`);
  }
});

test('h2 refusals are counted in trellis_requests_total at the destination', async () => {
  const count = () =>
    mesh.b.metrics
      .render()
      .split('\n')
      .filter((l) => l.startsWith('trellis_requests_total{') && l.includes('response_code="431"') && l.includes('error_code="headers_too_large"'))
      .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  const before = count();
  const c = h2Client(dialers[1], mesh.inPort);
  try {
    assert.equal((await h2Request(c, { ':path': '/', ':authority': AUTH, ...many(101) })).status, 431);
  } finally {
    c.close();
  }
  assert.ok(await until(() => count() === before + 1), `counted ${count() - before}`);
});
