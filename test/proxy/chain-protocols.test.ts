// gRPC (trailers, status codes, grpc-timeout), WebSocket (tunnel only on 101) and TCP through the two-proxy chain.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import WebSocket from 'ws';
import { startMesh, EchoClient, type Mesh } from './helpers/mesh.js';

let mesh: Mesh;
let client: grpc.Client;
before(async () => {
  mesh = await startMesh();
  client = new EchoClient(`127.0.0.1:${mesh.outPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'b-grpc:9090' });
});
after(async () => {
  client?.close();
  await mesh?.close();
});

function call(msg: string, deadlineMs = 5000, c: grpc.Client = client): Promise<{ err: grpc.ServiceError | null; res?: Buffer; trailers?: grpc.Metadata }> {
  return new Promise((resolve) => {
    let trailers: grpc.Metadata | undefined;
    const ca = (c as unknown as { Echo: Function }).Echo(Buffer.from(msg), new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res?: Buffer) =>
      setImmediate(() => resolve({ err, res, trailers })),
    );
    ca.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
  });
}

test('gRPC unary through the chain', async () => {
  const r = await call('hi');
  assert.equal(r.err, null);
  assert.equal(r.res!.toString(), 'echo:hi');
});

test('gRPC error status and trailers from the app arrive intact', async () => {
  const r = await call('fail');
  assert.equal(r.err?.code, grpc.status.NOT_FOUND);
  assert.equal(r.err?.details, 'no such thing');
  assert.deepEqual(r.err?.metadata.get('x-detail'), ['not-here']);
});

test('grpc-timeout is honoured as a deadline: the proxy answers DEADLINE_EXCEEDED with x-trellis-error', async () => {
  const t0 = Date.now();
  const r = await call('slow', 300);
  assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED);
  assert.ok(Date.now() - t0 < 1400, 'did not wait for the app');
});

test('the proxy itself enforces grpc-timeout (no client-side deadline)', async () => {
  const s = http2.connect(`http://127.0.0.1:${mesh.outPort}`);
  const st = s.request({
    ':method': 'POST',
    ':path': '/test.Echo/Echo',
    ':authority': 'b-grpc:9090',
    'content-type': 'application/grpc',
    te: 'trailers',
    'grpc-timeout': '200m',
  });
  const frame = Buffer.alloc(5 + 4);
  frame.writeUInt32BE(4, 1);
  frame.write('slow', 5);
  st.end(frame);
  const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => st.once('response', resolve));
  st.resume();
  await new Promise((r) => st.once('close', r));
  s.close();
  assert.equal(headers['grpc-status'], '4');
  assert.equal(headers['x-trellis-error'], 'upstream_timeout');
  assert.match(decodeURIComponent(String(headers['grpc-message'])), /grpc-timeout 200ms exceeded/);
});

test('gRPC to an unknown host gets a trailers-only UNIMPLEMENTED with x-trellis-error no_route', async () => {
  const c = new EchoClient(`127.0.0.1:${mesh.outPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'nowhere' });
  const r = await call('x', 3000, c);
  c.close();
  assert.equal(r.err?.code, grpc.status.UNIMPLEMENTED);
  assert.deepEqual(r.err?.metadata.get('x-trellis-error'), ['no_route']);
  assert.match(r.err!.details, /no_route: no virtual host for nowhere \(route configuration outbound\|default\/a\)/, JSON.stringify(r.err!.details));
});

test('WebSocket: upgrade through the chain, messages both ways', async () => {
  const ws = new WebSocket(`ws://b/ws`, { createConnection: () => net.connect(mesh.outPort, '127.0.0.1') } as WebSocket.ClientOptions);
  const got = await new Promise<string>((resolve, reject) => {
    ws.once('open', () => ws.send('ping'));
    ws.once('message', (m) => resolve(String(m)));
    ws.once('error', reject);
    setTimeout(() => reject(new Error('timeout')), 4000);
  });
  assert.equal(got, 'echo:ping');
  ws.close();
});

test('WebSocket: a non-101 answer passes through and no tunnel is made', async () => {
  const ws = new WebSocket(`ws://b/not-ws`, { createConnection: () => net.connect(mesh.outPort, '127.0.0.1') } as WebSocket.ClientOptions);
  let trellisError: unknown;
  const status = await new Promise<number>((resolve) => {
    ws.once('unexpected-response', (_req, res) => {
      trellisError = res.headers['x-trellis-error'];
      resolve(res.statusCode ?? 0);
    });
    ws.once('error', () => resolve(-1));
    setTimeout(() => resolve(-2), 4000);
  });
  // the app's WebSocket server refuses the path with 400; that answer reaches the client unchanged
  assert.equal(status, 400);
  assert.equal(trellisError, undefined);
});

test('TCP upstream listener pipes bytes over mTLS (ALPN trellis-tcp)', async () => {
  const s = net.connect(mesh.tcpOutPort, '127.0.0.1');
  const echoed = await new Promise<string>((resolve, reject) => {
    let buf = '';
    s.on('data', (d) => {
      buf += d;
      if (buf.length >= 10) resolve(buf);
    });
    s.on('error', reject);
    s.write('hello-tcp!');
    setTimeout(() => reject(new Error(`timeout, got "${buf}"`)), 4000);
  });
  assert.equal(echoed, 'hello-tcp!');
  s.destroy();
});
