// Every response the proxy generates names its cause: x-trellis-error and a one-line body (never an anonymous 503).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { startMesh, type Mesh } from './helpers/mesh.js';
import { curl } from './helpers/curl.js';

let mesh: Mesh;
before(async () => {
  mesh = await startMesh();
});
after(async () => {
  await mesh?.close();
});

const get = (host: string, path = '/', extra: string[] = []) => curl([...extra, '-H', `Host: ${host}`, `http://127.0.0.1:${mesh.outPort}${path}`]);

function rawRequest(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(data));
    let buf = '';
    s.on('data', (d) => (buf += d));
    s.on('close', () => resolve(buf));
    s.on('error', () => resolve(buf));
    setTimeout(() => s.destroy(), 3000);
  });
}

const cases: [string, string, string, number, RegExp][] = [
  ['unknown host', 'nowhere', '/', 404, /^no_route: no virtual host for nowhere \(route configuration outbound\|default\/a\)/],
  ['route to a cluster the proxy does not know', 'ghost', '/', 503, /^no_healthy_upstream: route default\/ghost#0: cluster outbound\|80\|\|ghost.default.svc.cluster.local is not known/],
  ['cluster without endpoints', 'empty', '/', 503, /^no_healthy_upstream: route default\/empty#0: cluster outbound\|80\|\|empty.default.svc.cluster.local has no endpoints/],
  ['nothing listens at the endpoint', 'dead', '/', 503, /^upstream_connect_failure: route default\/dead#0: cluster outbound\|80\|\|dead.default.svc.cluster.local endpoint 127.0.0.1:\d+: .*ECONNREFUSED/],
  ['peer identity differs from the endpoint identity', 'impostor', '/', 503, /^upstream_connect_failure: .*peer is spiffe:\/\/cluster.local\/ns\/default\/sa\/b, expected spiffe:\/\/cluster.local\/ns\/default\/sa\/someone-else/],
  ['the peer proxy is up but its app is not listening', 'deadapp', '/', 503, /^upstream_connect_failure: listener inbound\|default\/b: app at 127.0.0.1:\d+ \(inbound\|\d+\|default\/b\) refused the connection: ECONNREFUSED/],
  ['fault injection from the route', 'faulty', '/', 503, /^fault_injected: route default\/faulty#0 injected a fault \(HTTP 503\)/],
  ['app resets the connection', 'b', '/reset', 503, /^upstream_reset: route default\/b#2 cluster outbound\|80\|\|b.default.svc.cluster.local: (socket hang up|upstream connection closed before any response)/],
  ['route timeout', 'b', '/slow?delay=1500', 504, /^upstream_timeout: route default\/b-slow#0 timeout 300ms exceeded waiting for cluster outbound\|80\|\|b.default.svc.cluster.local/],
];

for (const [what, host, path, status, body] of cases) {
  test(`x-trellis-error: ${what}`, async () => {
    const r = await get(host, path);
    assert.equal(r.status, status, r.body);
    const code = body.source.match(/^\^([a-z_]+):/)![1];
    assert.equal(r.headers['x-trellis-error'], code);
    assert.match(r.body, body);
    assert.equal(r.body.trim().split('\n').length, 1, 'one line');
  });
}

test('x-trellis-error: bad_request for a malformed request', async () => {
  const out = await rawRequest(mesh.outPort, 'GET / HTTP/1.1\r\nHost: b\r\nbad header line\r\n\r\n');
  assert.match(out, /^HTTP\/1.1 400 /);
  assert.match(out, /x-trellis-error: bad_request/);
  assert.match(out, /bad_request: listener outbound\|default\/a: malformed HTTP request/);
});

test('x-trellis-error: headers_too_large', async () => {
  const out = await rawRequest(mesh.outPort, `GET / HTTP/1.1\r\nHost: b\r\nx-big: ${'a'.repeat(70_000)}\r\n\r\n`);
  assert.match(out, /^HTTP\/1.1 431 /);
  assert.match(out, /x-trellis-error: headers_too_large/);
});

test('x-trellis-error: bad_request for a request without Host', async () => {
  const out = await rawRequest(mesh.outPort, 'GET / HTTP/1.0\r\n\r\n');
  assert.match(out, /x-trellis-error: bad_request/);
  assert.match(out, /no Host header/);
});

test('x-trellis-error: bad_request for CONNECT', async () => {
  const out = await rawRequest(mesh.outPort, 'CONNECT b:443 HTTP/1.1\r\nHost: b:443\r\n\r\n');
  assert.match(out, /x-trellis-error: bad_request/);
  assert.match(out, /CONNECT tunnels are not supported/);
});

test('errors are counted with their code', async () => {
  const text = await (await fetch(`http://127.0.0.1:${mesh.a.metricsPort()}/metrics`)).text();
  assert.match(text, /trellis_requests_total\{[^}]*route="default\/dead#0",response_code="503",grpc_status="",error_code="upstream_connect_failure"[^}]*\} 1/);
});
