// End to end: describe names every resource that applies; stat, edges and top report live traffic through the control plane.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../src/api/types.js';
import { call, cli, startTestMesh, type TestMesh } from '../telemetry/mesh.js';
import type { WorkloadDescription } from '../../src/control/describe.js';
import type { StatsReport } from '../../src/control/stats.js';

const POLICIES: Resource[] = [
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'backend-routes', namespace: 'default' },
    spec: { hosts: ['backend'], http: [{ name: 'api', match: [{ uri: { prefix: '/api' } }], route: [{ destination: { host: 'backend' } }], timeout: '3s', retries: { attempts: 2, retryOn: 'connect-failure' } }, { route: [{ destination: { host: 'backend' } }] }] },
  },
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'backend-pool', namespace: 'default' },
    spec: { host: 'backend', trafficPolicy: { connectionPool: { tcp: { maxConnections: 50 } }, outlierDetection: { consecutive5xxErrors: 5 } } },
  },
  {
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name: 'backend-strict', namespace: 'default' },
    spec: { selector: { matchLabels: { app: 'backend' } }, mtls: { mode: 'STRICT' } },
  },
  {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'backend-callers', namespace: 'default' },
    spec: { selector: { matchLabels: { app: 'backend' } }, action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/frontend'] } }] }] },
  },
] as Resource[];

let mesh: TestMesh;
before(async () => {
  mesh = await startTestMesh([{ name: 'frontend' }, { name: 'backend' }], POLICIES);
});
after(async () => {
  await mesh?.close();
});

test('describe workload names the VirtualService, DestinationRule, PeerAuthentication and AuthorizationPolicy that apply', { timeout: 30_000 }, async () => {
  const r = await cli(['describe', 'workload', 'backend', '--control', mesh.control]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /VirtualService default\/backend-routes/);
  assert.match(r.stdout, /DestinationRule default\/backend-pool/);
  assert.match(r.stdout, /PeerAuthentication default\/backend-strict/);
  assert.match(r.stdout, /AuthorizationPolicy default\/backend-callers ALLOW/);
  // Defaults are spelled out, configured values shown as set.
  assert.match(r.stdout, /maxConnections 50,/);
  assert.match(r.stdout, /http1MaxPendingRequests 1024 \(default\)/);
  assert.match(r.stdout, /interval 10s \(default\)/);
  assert.match(r.stdout, /\/api.*3s.*2 on connect-failure/);

  const j = await cli(['describe', 'workload', 'default/backend', '-o', 'json', '--control', mesh.control]);
  const d = JSON.parse(j.stdout) as WorkloadDescription;
  assert.equal(d.ports[0].mtls, 'STRICT');
  assert.equal(d.ports[0].mtlsDecidedBy, 'PeerAuthentication default/backend-strict');
  assert.equal(d.identity, 'spiffe://cluster.local/ns/default/sa/backend');
  assert.equal(d.services[0].endpoints[0].health, 'HEALTHY');
  assert.equal(d.services[0].endpoints[0].outlier, 'in rotation');

  // The frontend has none of them: mTLS by default, nothing selecting it.
  const f = JSON.parse((await cli(['describe', 'workload', 'frontend', '-o', 'json', '--control', mesh.control])).stdout) as WorkloadDescription;
  assert.equal(f.ports[0].mtls, 'PERMISSIVE');
  assert.equal(f.authorizationPolicies.length, 0);

  const missing = await cli(['describe', 'service', 'nope', '--control', mesh.control]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error: .*no service "nope" in namespace default/m);
  const bad = await cli(['describe', 'pod', 'x', '--control', mesh.control]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /describe needs "workload" or "service"/);
});

test('stat, edges and top show the traffic just sent, with mTLS between the two workloads', { timeout: 40_000 }, async () => {
  // Two scrapes bracket the traffic: the first question starts the control plane's window.
  const first = await fetch(`http://${mesh.control}/api/v1/stats?window=30`).then((r) => r.json() as Promise<StatsReport>);
  assert.equal(first.targets.length, 2);
  assert.ok(first.targets.every((t) => t.ok), JSON.stringify(first.targets));
  let ok = 0;
  for (let i = 0; i < 40; i++) if ((await call(mesh.outbound('frontend'), 'backend', i % 2 ? '/api/x' : '/')).status === 200) ok++;
  assert.equal(ok, 40);
  // A denied call (backend does not allow backend's own identity) counts as traffic, not success... it is a 403, not a failure.
  const s = await cli(['stat', '--window', '30', '-o', 'json', '--control', mesh.control]);
  assert.equal(s.code, 0, s.stderr);
  const st = JSON.parse(s.stdout) as StatsReport;
  const svc = st.services.find((g) => g.dims.service.startsWith('backend'));
  assert.ok(svc, s.stdout);
  assert.equal(svc.requests, 40);
  assert.equal(svc.successRate, 1);
  assert.equal(svc.mtlsShare, 1);
  assert.ok(svc.p99Ms !== undefined && svc.p99Ms > 0);
  const wl = st.workloads.find((g) => g.dims.workload === 'default/backend');
  assert.equal(wl?.requests, 40);

  const text = await cli(['stat', '--window', '30', '--control', mesh.control]);
  assert.match(text.stdout, /SERVICE\s+RPS\s+SUCCESS\s+P50\s+P95\s+P99\s+MTLS/);
  assert.match(text.stdout, /backend\.default\.svc\.cluster\.local\s+\S+\s+100%/);

  const e = await cli(['edges', '--window', '30', '--control', mesh.control]);
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stdout, /default\/frontend\s+default\/backend\s+backend\.default\.svc\.cluster\.local\s+yes/);
  assert.match(e.stdout, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/frontend\s+spiffe:\/\/cluster\.local\/ns\/default\/sa\/backend/);

  const t = await cli(['top', '--once', '--window', '30', '--control', mesh.control]);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /default\/backend-routes#0\s+backend/);
  assert.match(t.stdout, /default\/backend-routes#1\s+backend/);
});
