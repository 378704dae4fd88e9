// Two proxies with mTLS between them carrying HTTP/1.1 and HTTP/2 (curl), header hygiene, rewrites and local answers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMesh, type Mesh } from './helpers/mesh.js';
import { curl } from './helpers/curl.js';

let mesh: Mesh;
before(async () => {
  mesh = await startMesh();
});
after(async () => {
  await mesh?.close();
});

test('HTTP/1.1 through the chain: absolute-form (-x) and origin-form with Host', async () => {
  const viaProxy = await curl(['-x', `http://127.0.0.1:${mesh.outPort}`, 'http://b/hello?x=1']);
  assert.equal(viaProxy.status, 200, viaProxy.body + viaProxy.stderr);
  const j = JSON.parse(viaProxy.body);
  assert.equal(j.url, '/hello?x=1');
  assert.equal(j.headers.host, 'b');
  assert.match(j.headers['x-request-id'], /^[0-9a-f-]{36}$/);
  assert.equal(viaProxy.headers['x-request-id'], j.headers['x-request-id']);

  const withHost = await curl(['-H', 'Host: b.default.svc.cluster.local:80', `http://127.0.0.1:${mesh.outPort}/p`]);
  assert.equal(withHost.status, 200, withHost.body);
  assert.equal(JSON.parse(withHost.body).url, '/p');
});

test('keep-alive: several requests on one client connection, POST bodies forwarded', async () => {
  const r = await curl([
    '-H', 'Host: b',
    '--data', 'payload-1',
    `http://127.0.0.1:${mesh.outPort}/one`,
    '--next', '-H', 'Host: b', `http://127.0.0.1:${mesh.outPort}/two`,
  ]);
  assert.equal(r.status, 200);
  // curl prints both bodies; the first carried the POST body
  assert.match(r.body, /"body":"payload-1"/);
});

test('client-supplied x-trellis-* and x-forwarded-client-cert never reach the app; an existing x-request-id is kept', async () => {
  const r = await curl([
    '-H', 'Host: b',
    '-H', 'x-trellis-error: forged',
    '-H', 'x-trellis-whatever: 1',
    '-H', 'x-forwarded-client-cert: By=spiffe://evil',
    '-H', 'x-request-id: abc-123',
    `http://127.0.0.1:${mesh.outPort}/h`,
  ]);
  const h = JSON.parse(r.body).headers;
  assert.equal(h['x-trellis-error'], undefined);
  assert.equal(h['x-trellis-whatever'], undefined);
  assert.equal(h['x-forwarded-client-cert'], undefined);
  assert.equal(h['x-request-id'], 'abc-123');
});

test('HTTP/2 prior knowledge from the client', async () => {
  const r = await curl(['--http2-prior-knowledge', '-H', 'Host: b', `http://127.0.0.1:${mesh.outPort}/h2`]);
  assert.equal(r.status, 200, r.stderr);
  assert.equal(JSON.parse(r.body).url, '/h2');
});

test('prefix rewrite from the route', async () => {
  const r = await curl(['-H', 'Host: b', `http://127.0.0.1:${mesh.outPort}/rewrite/x`]);
  assert.equal(JSON.parse(r.body).url, '/rewritten/x');
});

test('direct response from the route', async () => {
  const r = await curl(['-H', 'Host: static', `http://127.0.0.1:${mesh.outPort}/`]);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'hello from the route');
});

test('plaintext endpoint (tls: none) is reached directly', async () => {
  const r = await curl(['-H', 'Host: plain', `http://127.0.0.1:${mesh.outPort}/direct`]);
  assert.equal(r.status, 200, r.body);
  assert.equal(JSON.parse(r.body).url, '/direct');
});

test('requests are counted with SPEC.md metric names and labels', async () => {
  const r = await fetch(`http://127.0.0.1:${mesh.a.metricsPort()}/metrics`);
  const text = await r.text();
  assert.match(text, /trellis_requests_total\{reporter="source",source_workload="a",source_namespace="default",source_principal="spiffe:\/\/cluster.local\/ns\/default\/sa\/a",destination_workload="b",destination_namespace="default",destination_service="b.default.svc.cluster.local",destination_principal="spiffe:\/\/cluster.local\/ns\/default\/sa\/b",route="default\/b#2",response_code="200",grpc_status="",error_code="",connection_security_policy="mutual_tls"\} \d+/);
  assert.match(text, /trellis_request_duration_seconds_bucket\{.*le="\+Inf"\} \d+/);
  assert.match(text, /trellis_request_bytes_sum\{[^}]*route="default\/b#2"[^}]*\} [1-9]\d*/, 'the POST body was counted');
  assert.match(text, /trellis_response_bytes_sum\{[^}]*route="default\/b#2"[^}]*\} [1-9]\d*/);
  assert.match(text, /trellis_certificate_expiry_seconds\{kind="workload"\} \d+/);
});
