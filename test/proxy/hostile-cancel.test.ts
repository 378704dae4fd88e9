// A client's RST_STREAM cancels the upstream request its stream started (outbound and inbound), so resets cannot pile up work on the app.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { startMesh, type Mesh } from './helpers/mesh.js';
import { h2Client, mtlsDialer, plainDialer, until, type Dialer } from './hostile-inbound-raw.js';

let mesh: Mesh;
/** Requests the app holds open (it never answers /hold): up on arrival, down when the proxy closes them. */
let open = 0;
let arrived = 0;
before(async () => {
  mesh = await startMesh({ mtls: 'PERMISSIVE', inboundL7: 'always' });
  // This file's app: /hold is never answered, so only a cancellation from the proxy can end it.
  mesh.httpApp.removeAllListeners('request');
  mesh.httpApp.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (!req.url?.startsWith('/hold')) return void res.end('ok');
    open++;
    arrived++;
    res.once('close', () => open--);
  });
});
after(async () => {
  await mesh?.close();
});

const N = 20;

/** Opens N held streams, waits until the app holds all of them, resets them, and reports what the app still holds. */
async function holdThenReset(c: http2.ClientHttp2Session, authority: string): Promise<{ held: boolean; left: number }> {
  const arrived0 = arrived;
  const streams: http2.ClientHttp2Stream[] = [];
  for (let i = 0; i < N; i++) {
    const s = c.request({ ':path': `/hold/${i}`, ':authority': authority });
    s.on('error', () => {});
    s.end();
    streams.push(s);
  }
  const held = await until(() => arrived - arrived0 === N && open >= N);
  for (const s of streams) s.close(http2.constants.NGHTTP2_CANCEL);
  await until(() => open === 0);
  return { held, left: open };
}

test('outbound: RST_STREAM from an h2c client closes the HTTP/1.1 upstream requests (direct to the app)', async () => {
  const c = http2.connect(`http://127.0.0.1:${mesh.outPort}`);
  c.on('error', () => {});
  try {
    const r = await holdThenReset(c, 'plain.default.svc.cluster.local');
    assert.ok(r.held, `the app held ${open} of ${N} requests`);
    assert.equal(r.left, 0, 'requests the app still holds after the client reset its streams');
  } finally {
    c.close();
  }
});

test('outbound -> inbound -> app: a reset at the first proxy reaches the app through both', async () => {
  const c = http2.connect(`http://127.0.0.1:${mesh.outPort}`);
  c.on('error', () => {});
  try {
    const r = await holdThenReset(c, 'b.default.svc.cluster.local');
    assert.ok(r.held, `the app held ${open} of ${N} requests`);
    assert.equal(r.left, 0);
  } finally {
    c.close();
  }
});

for (const mk of [() => Promise.resolve(plainDialer(mesh.inPort)), () => mtlsDialer(mesh, mesh.inPort, mesh.ports.http)]) {
  test(`inbound: RST_STREAM closes the upstream requests to the app`, async (t) => {
    const d: Dialer = await mk();
    t.diagnostic(d.name);
    const c = h2Client(d, mesh.inPort);
    try {
      const r = await holdThenReset(c, 'b.default.svc.cluster.local');
      assert.ok(r.held, `${d.name}: the app held ${open} of ${N} requests`);
      assert.equal(r.left, 0, `${d.name}: requests the app still holds after the client reset its streams`);
    } finally {
      c.close();
    }
  });
}
