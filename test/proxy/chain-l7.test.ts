// The inbound in L7 mode: the app learns the verified caller (x-forwarded-client-cert), destination metrics, all protocols still pass.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import WebSocket from 'ws';
import { startMesh, EchoClient, type Mesh } from './helpers/mesh.js';
import { curl } from './helpers/curl.js';

let mesh: Mesh;
before(async () => {
  mesh = await startMesh({ inboundL7: 'always', mtls: 'PERMISSIVE' });
});
after(async () => {
  await mesh?.close();
});

test('the app sees the verified caller in x-forwarded-client-cert, never a forged one', async () => {
  const r = await curl(['-H', 'Host: b', '-H', 'x-forwarded-client-cert: URI=spiffe://cluster.local/ns/default/sa/admin', `http://127.0.0.1:${mesh.outPort}/who`]);
  assert.equal(r.status, 200, r.body);
  assert.equal(JSON.parse(r.body).headers['x-forwarded-client-cert'], 'By=spiffe://cluster.local/ns/default/sa/b;URI=spiffe://cluster.local/ns/default/sa/a');
});

test('plaintext (PERMISSIVE) straight to the inbound: no caller identity, forged XFCC removed', async () => {
  const r = await curl(['-H', 'Host: b', '-H', 'x-forwarded-client-cert: URI=spiffe://evil', `http://127.0.0.1:${mesh.inPort}/plain`]);
  assert.equal(r.status, 200, r.body);
  assert.equal(JSON.parse(r.body).headers['x-forwarded-client-cert'], undefined);
});

test('HTTP/2 from the client, gRPC with status and trailers, WebSocket: all through the L7 inbound', async () => {
  const h2 = await curl(['--http2-prior-knowledge', '-H', 'Host: b', `http://127.0.0.1:${mesh.outPort}/h2`]);
  assert.equal(h2.status, 200, h2.stderr);
  const c = new EchoClient(`127.0.0.1:${mesh.outPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'b-grpc:9090' });
  const call = (msg: string) =>
    new Promise<{ err: grpc.ServiceError | null; res?: Buffer }>((resolve) =>
      (c as unknown as { Echo: Function }).Echo(Buffer.from(msg), (err: grpc.ServiceError | null, res?: Buffer) => resolve({ err, res })),
    );
  assert.equal((await call('hi')).res?.toString(), 'echo:hi');
  const f = await call('fail');
  assert.equal(f.err?.code, grpc.status.NOT_FOUND);
  assert.deepEqual(f.err?.metadata.get('x-detail'), ['not-here']);
  c.close();
  const ws = new WebSocket('ws://b/ws', { createConnection: () => net.connect(mesh.outPort, '127.0.0.1') } as WebSocket.ClientOptions);
  const got = await new Promise<string>((resolve, reject) => {
    ws.once('open', () => ws.send('l7'));
    ws.once('message', (m) => resolve(String(m)));
    ws.once('error', reject);
    setTimeout(() => reject(new Error('timeout')), 4000);
  });
  assert.equal(got, 'echo:l7');
  ws.close();
});

test('destination-side request metrics name the caller', async () => {
  const text = await (await fetch(`http://127.0.0.1:${mesh.b.metricsPort()}/metrics`)).text();
  assert.match(text, /trellis_requests_total\{reporter="destination",source_workload="a",source_namespace="default",source_principal="spiffe:\/\/cluster.local\/ns\/default\/sa\/a",destination_workload="b",destination_namespace="default",[^}]*response_code="200"[^}]*connection_security_policy="mutual_tls"\} \d+/);
});
