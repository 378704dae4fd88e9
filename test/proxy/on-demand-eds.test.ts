// On-demand EDS: a proxy holds endpoints only for clusters it has routed to; the first request waits for them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../src/api/types.js';
import * as net from 'node:net';
import { StateStore, emptyRaw, type RawResources } from '../../src/proxy/state.js';
import { createOutboundTcpListener } from '../../src/proxy/listeners/outbound-tcp.js';
import { ProxyMetrics } from '../../src/telemetry/proxy-metrics.js';
import { call, startTestMesh, type TestMesh } from '../telemetry/mesh.js';
import * as x from './helpers/xds.js';

const svc = (name: string): Resource => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { selector: { app: name }, ports: [{ name: 'http', port: 8080 }] } }) as Resource;

// ---------------------------------------------------------------- the store alone

function rawWith(clusters: object[], endpoints: object[] = []): RawResources {
  const raw = emptyRaw();
  for (const c of clusters) raw.clusters.set((c as { name: string }).name, c as never);
  for (const e of endpoints) raw.endpoints.set((e as { cluster_name: string }).cluster_name, e as never);
  return raw;
}
const cB = x.outboundCluster('b', 80);
const cC = x.outboundCluster('c', 80);
const claB = x.loadAssignment(cB.name, [{ port: 1234, workload: 'default/b', identity: 'spiffe://cluster.local/ns/default/sa/b', targetPort: 8080 }]);

test('store: without on-demand every EDS cluster counts as missing; with it only the warm ones do', () => {
  const all = new StateStore();
  all.update(rawWith([cB, cC]));
  assert.deepEqual(all.current.missing.sort(), [`endpoints ${cB.name}`, `endpoints ${cC.name}`]);
  assert.equal(all.current.clusters.get(cB.name)!.fetchEndpoints, undefined, 'nothing to fetch without on-demand');

  const od = new StateStore();
  od.setOnDemand([cC.name]);
  od.update(rawWith([cB, cC]));
  assert.deepEqual(od.current.missing, [`endpoints ${cC.name}`]);
  assert.equal(typeof od.current.clusters.get(cB.name)!.fetchEndpoints, 'function');
});

test('store: whenEndpoints asks once for the cluster and resolves every waiter when its endpoints arrive', async () => {
  const st = new StateStore();
  st.setOnDemand();
  st.update(rawWith([cB, cC]));
  const asked: string[] = [];
  st.on('demand', (n: string) => asked.push(n));
  const w1 = st.whenEndpoints(cB.name, 60_000);
  const w2 = st.current.clusters.get(cB.name)!.fetchEndpoints!(60_000);
  assert.deepEqual(asked, [cB.name]);
  assert.deepEqual([...st.demanded], [cB.name]);
  st.update(rawWith([cB, cC], [claB]));
  const [s1, s2] = await Promise.all([w1, w2]);
  for (const s of [s1, s2]) {
    const cs = s.clusters.get(cB.name)!;
    assert.equal(cs.hasEndpoints, true);
    assert.equal(cs.fetchEndpoints, undefined);
    assert.deepEqual(cs.endpoints.map((e) => e.port), [1234]);
  }
  assert.equal(st.current.clusters.get(cC.name)!.hasEndpoints, false, 'an unrelated cluster stays unsubscribed');
});

test('store: a wait ends after its bound with the cluster still without endpoints (the caller then explains)', async () => {
  const st = new StateStore();
  st.setOnDemand();
  st.update(rawWith([cB]));
  const s = await st.whenEndpoints(cB.name, 20);
  assert.equal(s.clusters.get(cB.name)!.hasEndpoints, false);
});

test('outbound TCP: a connection to a cluster without endpoints asks for them, waits up to the connect timeout, then closes', async () => {
  const cT = x.outboundCluster('t', 9000, { connectTimeoutMs: 150 });
  const st = new StateStore();
  st.setOnDemand();
  const raw = rawWith([cT]);
  const lc = x.outboundTcpListener('default/a', 0, cT.name);
  raw.listeners.set(lc.name, lc);
  st.update(raw);
  const cfg = st.current.listeners.get(lc.name)!;
  const l = createOutboundTcpListener({ store: st, metrics: new ProxyMetrics(), identityFor: () => undefined, log: () => {} }, cfg);
  await l.listen();
  try {
    const started = Date.now();
    const sock = net.connect(l.port(), '127.0.0.1');
    sock.on('error', () => {});
    await new Promise((r) => sock.once('close', r));
    assert.deepEqual([...st.demanded], [cT.name], 'the connection subscribed the cluster');
    assert.ok(Date.now() - started >= 100, 'closed only after waiting for endpoints');
  } finally {
    await l.drain(100);
  }
});

// ---------------------------------------------------------------- a real mesh

let mesh: TestMesh;
before(async () => {
  // a calls b; c is never called; d is a Service with no workload at all.
  mesh = await startTestMesh([{ name: 'a', next: 'b' }, { name: 'b' }, { name: 'c' }], [svc('d')]);
});
after(async () => {
  await mesh?.close();
});

const endpointsHeld = (name: string) => [...mesh.proxies.get(name)!.store.current.raw.endpoints.keys()];
const clusterOf = (name: string, service: string) => [...mesh.proxies.get(name)!.store.current.clusters.keys()].find((c) => c.startsWith('outbound|') && c.endsWith(`|${service}.default.svc.cluster.local`))!;

test('mesh: a ready proxy that has called nothing holds no outbound endpoints, and the control plane sent none', async () => {
  const a = mesh.proxies.get('a')!;
  assert.ok(clusterOf('a', 'b'), 'proxy a knows cluster b from CDS');
  assert.deepEqual(endpointsHeld('a').filter((n) => n.startsWith('outbound|')), []);
  const dump = mesh.cp.ads.proxyConfig(a.id, 'endpoints') as { endpoints?: unknown[] };
  assert.deepEqual(dump.endpoints ?? [], []);
});

test('mesh: the first call to a service succeeds; afterwards the proxy holds that service only', async () => {
  // The test enters through b's proxy; a's app then calls b through a's proxy, whose first request to b fetches b's endpoints.
  const r = await call(mesh.outbound('b'), 'a');
  assert.equal(r.status, 200, r.body);
  assert.equal(JSON.parse(JSON.parse(r.body).next).name, 'b');
  assert.deepEqual(endpointsHeld('a').filter((n) => n.startsWith('outbound|')), [clusterOf('a', 'b')]);
  assert.equal(endpointsHeld('a').includes(clusterOf('a', 'c')), false, 'c was never called');
  const dump = mesh.cp.ads.proxyConfig(mesh.proxies.get('a')!.id, 'endpoints') as { endpoints: { name: string }[] };
  assert.deepEqual(dump.endpoints.map((e) => e.name), [clusterOf('a', 'b')]);
  // Direct call from the test through a's outbound to c: also fine on first use.
  const rc = await call(mesh.outbound('a'), 'c');
  assert.equal(rc.status, 200, rc.body);
  assert.equal(JSON.parse(rc.body).name, 'c');
});

test('mesh: concurrent first calls to a service all wait for its endpoints and succeed', async () => {
  // b has not called c yet: 10 requests at once through b's proxy share one subscription.
  assert.equal(endpointsHeld('b').includes(clusterOf('b', 'c')), false);
  const rs = await Promise.all(Array.from({ length: 10 }, () => call(mesh.outbound('b'), 'c')));
  assert.deepEqual(rs.map((r) => r.status), Array(10).fill(200));
});

test('mesh: a service with truly no endpoints still fails with the explained error', async () => {
  const r = await call(mesh.outbound('a'), 'd');
  assert.equal(r.status, 503);
  assert.match(r.body, /cluster outbound\|8080\|\|d\.default\.svc\.cluster\.local has no endpoints/);
});
