// End to end: describe names every resource that applies; stat, edges and top report live traffic through the control plane.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Resource } from '../../src/api/types.js';
import { call, cli, cliStream, startTestMesh, type TestMesh } from '../telemetry/mesh.js';
import type { TapEvent } from '../../src/telemetry/tap.js';
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
  {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'backend-deny-blocked', namespace: 'default' },
    spec: { selector: { matchLabels: { app: 'backend' } }, action: 'DENY', rules: [{ to: [{ operation: { paths: ['/blocked*'] } }] }] },
  },
] as Resource[];

let mesh: TestMesh;
const logDir = mkdtempSync(join(tmpdir(), 'trellis-obs-log-'));
const accessLog = join(logDir, 'backend.log');
before(async () => {
  mesh = await startTestMesh([{ name: 'frontend' }, { name: 'backend' }], POLICIES, (name) => (name === 'backend' ? { accessLog } : {}));
});
after(async () => {
  await mesh?.close();
  rmSync(logDir, { recursive: true, force: true });
});

test('describe workload names the VirtualService, DestinationRule, PeerAuthentication and AuthorizationPolicy that apply', { timeout: 30_000 }, async () => {
  const r = await cli(['describe', 'workload', 'backend', '--control', mesh.control]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /VirtualService default\/backend-routes/);
  assert.match(r.stdout, /DestinationRule default\/backend-pool/);
  assert.match(r.stdout, /PeerAuthentication default\/backend-strict/);
  assert.match(r.stdout, /AuthorizationPolicy default\/backend-callers ALLOW/);
  assert.match(r.stdout, /AuthorizationPolicy default\/backend-deny-blocked DENY/);
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
  assert.match(t.stdout, /default\/backend-routes#api\s+backend/);
  assert.match(t.stdout, /default\/backend-routes#1\s+backend/);
});

test('tap shows a request within a second of it being sent; a denied one carries the error code and the deciding rule', { timeout: 30_000 }, async () => {
  const child = cliStream(['tap', 'backend', '-o', 'json', '--control', mesh.control]);
  const events: { at: number; e: TapEvent }[] = [];
  let stderr = '';
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      events.push({ at: Date.now(), e: JSON.parse(buf.slice(0, nl)) as TapEvent });
      buf = buf.slice(nl + 1);
    }
  });
  child.stderr.on('data', (d) => (stderr += d));
  const waitUntil = async (cond: () => boolean, what: string) => {
    const end = Date.now() + 10_000;
    while (!cond()) {
      if (Date.now() > end || child.exitCode !== null) throw new Error(`${what}; tap stderr: ${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    await waitUntil(() => stderr.includes('tapping default/backend'), 'tap did not attach');
    const sent = Date.now();
    const r = await call(mesh.outbound('frontend'), 'backend', '/tapped?q=1');
    assert.equal(r.status, 200);
    await waitUntil(() => events.some((x) => x.e.path === '/tapped?q=1'), 'the request never showed in tap');
    const seen = events.find((x) => x.e.path === '/tapped?q=1')!;
    assert.ok(seen.at - sent < 1000, `tap showed the request after ${seen.at - sent} ms`);
    assert.equal(seen.e.direction, 'inbound');
    assert.equal(seen.e.status, 200);
    assert.equal(seen.e.source_principal, 'spiffe://cluster.local/ns/default/sa/frontend');
    assert.equal(seen.e.destination_principal, 'spiffe://cluster.local/ns/default/sa/backend');
    assert.equal(seen.e.mtls, true);
    assert.ok(seen.e.duration_ms >= seen.e.proxy_ms);

    // backend calling itself is not allowed by backend-callers: its own inbound answers 403 denied.
    const d = await call(mesh.outbound('backend'), 'backend', '/self');
    assert.equal(d.status, 403);
    await waitUntil(() => events.some((x) => x.e.path === '/self' && x.e.direction === 'inbound'), 'the denied request never showed in tap');
    const denied = events.find((x) => x.e.path === '/self' && x.e.direction === 'inbound')!.e;
    assert.equal(denied.error_code, 'denied');
    // No ALLOW rule matched: no single rule decided, the reason says so.
    assert.match(denied.decision_reason ?? '', /no ALLOW policy matched/);
    // A DENY rule that matches is named.
    assert.equal((await call(mesh.outbound('frontend'), 'backend', '/blocked/x')).status, 403);
    await waitUntil(() => events.some((x) => x.e.path === '/blocked/x' && x.e.direction === 'inbound'), 'the blocked request never showed in tap');
    const blocked = events.find((x) => x.e.path === '/blocked/x' && x.e.direction === 'inbound')!.e;
    assert.equal(blocked.error_code, 'denied');
    assert.match(blocked.decided_by ?? '', /backend-deny-blocked/, JSON.stringify(blocked));
  } finally {
    child.kill('SIGINT');
    await new Promise((r) => child.once('exit', r));
  }

  // The backend proxy's access log has the same requests as JSON lines.
  const lines = readFileSync(accessLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const line = lines.find((l) => l.path === '/tapped?q=1');
  assert.ok(line, `no access log line for /tapped in ${lines.length} lines`);
  assert.equal(line.direction, 'inbound');
  assert.equal(line.source_principal, 'spiffe://cluster.local/ns/default/sa/frontend');
  assert.equal(typeof line.upstream_ms, 'number');
  assert.equal(typeof line.proxy_ms, 'number');
  assert.ok(lines.some((l) => l.error_code === 'denied' && String(l.decided_by).includes('backend-deny-blocked')));
});
