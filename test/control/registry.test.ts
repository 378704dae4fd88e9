// Registry: services and instances from config, proxy registration with token scope, grace-period removal, ports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Resource } from '../../src/api/types.js';
import { Registry, RegistrationError } from '../../src/control/registry.js';
import { inferProtocol } from '../../src/control/registry-static.js';

const res = (kind: string, name: string, spec: unknown, extra: Partial<Resource['metadata']> = {}, apiVersion = 'v1'): Resource => ({
  apiVersion,
  kind,
  metadata: { name, namespace: 'default', ...extra },
  spec,
});

const CONFIG: Resource[] = [
  res('Service', 'reviews', { selector: { app: 'reviews' }, ports: [{ name: 'http', port: 9080, targetPort: 'web' }] }),
  res('WorkloadEntry', 'reviews-vm', { address: '10.0.0.5', ports: { web: 9082 }, labels: { app: 'reviews', version: 'v3' }, serviceAccount: 'reviews', locality: 'eu/west-1a' }, {}, 'networking.istio.io/v1'),
  res('ServiceEntry', 'ext', { hosts: ['api.example.com'], ports: [{ number: 443, name: 'https', protocol: 'HTTPS' }], endpoints: [{ address: '192.0.2.1' }] }, {}, 'networking.istio.io/v1'),
  res('Workload', 'ratings-v1', { service: 'ratings', ports: [{ name: 'http', port: 9083, protocol: 'HTTP' }] }, { labels: { app: 'ratings', version: 'v1' } }, 'trellis.dev/v1alpha1'),
  res('Workload', 'reviews-v1', { service: 'reviews', serviceAccount: 'reviews', ports: [{ name: 'web', port: 9081 }], proxy: { inboundPort: 16001, outboundPort: 16000 } }, { labels: { app: 'reviews' } }, 'trellis.dev/v1alpha1'),
];

test('static resources become services and instances', () => {
  const r = new Registry();
  r.setResources(CONFIG);
  const snap = r.snapshot();
  assert.deepEqual(snap.services.map((s) => `${s.fqdn}:${s.source}`), [
    'api.example.com:ServiceEntry',
    'ratings.default.svc.cluster.local:Workload',
    'reviews.default.svc.cluster.local:Service',
  ]);
  const vm = snap.workloads.find((w) => w.name === 'reviews-vm')!;
  assert.deepEqual(vm.services, ['reviews.default.svc.cluster.local']);
  assert.equal(vm.identity, 'spiffe://cluster.local/ns/default/sa/reviews');
  assert.deepEqual(vm.locality, { region: 'eu', zone: 'west-1a', subZone: undefined });
  assert.equal(vm.proxy, undefined);
  const ext = snap.workloads.find((w) => w.source === 'ServiceEntry')!;
  assert.equal(ext.address, '192.0.2.1');
  assert.deepEqual(ext.services, ['api.example.com']);
  // named targetPort resolves against the first member (in snapshot order) with a port of that name
  assert.equal(snap.services.find((s) => s.name === 'reviews')!.ports[0].targetPort, 9081);
  // declared Workloads without a proxy: UNHEALTHY with proxy ports (explicit or allocated)
  const rv1 = snap.workloads.find((w) => w.name === 'reviews-v1')!;
  assert.equal(rv1.health, 'UNHEALTHY');
  assert.deepEqual([rv1.proxy!.inboundPort, rv1.proxy!.outboundPort], [16001, 16000]);
  const ra = snap.workloads.find((w) => w.name === 'ratings-v1')!;
  assert.deepEqual([ra.proxy!.outboundPort, ra.proxy!.inboundPort, ra.proxy!.adminPort], [15100, 15101, 15102]);
  assert.equal(ra.serviceAccount, 'ratings');
});

test('a connecting proxy registers workloads; the Workload resource fields win', () => {
  const r = new Registry();
  r.setResources(CONFIG);
  let changes = 0;
  r.onChange(() => changes++);
  const ws = r.registerProxy(
    'p1',
    [{ name: 'reviews-v1', namespace: 'default', labels: { app: 'other', version: 'v1' }, serviceAccount: 'reviews', ports: [{ port: 1 }], inboundPort: 17001, outboundPort: 17000 }],
    { namespace: 'default', serviceAccount: 'reviews' },
  );
  assert.equal(changes, 1);
  assert.equal(ws.length, 1);
  const w = ws[0];
  assert.equal(w.health, 'HEALTHY');
  assert.equal(w.source, 'proxy');
  assert.deepEqual(w.labels, { app: 'reviews', version: 'v1' });
  assert.deepEqual(w.ports, [{ name: 'web', port: 9081, protocol: 'HTTP' }]);
  assert.deepEqual([w.proxy!.id, w.proxy!.inboundPort, w.proxy!.outboundPort], ['p1', 16001, 16000]);
  assert.deepEqual(w.services, ['reviews.default.svc.cluster.local']);
  // the declared placeholder is replaced, not duplicated
  assert.equal(r.snapshot().workloads.filter((x) => x.name === 'reviews-v1').length, 1);
});

test('a proxy may only register workloads its token grants', () => {
  const r = new Registry();
  r.setResources(CONFIG);
  assert.throws(
    () => r.registerProxy('p1', [{ name: 'reviews-v1', namespace: 'default' }], { namespace: 'default', serviceAccount: 'ratings' }),
    (e: unknown) => e instanceof RegistrationError && /not allowed by the join token/.test(e.message),
  );
  assert.throws(() => r.registerProxy('p1', [{ name: 'x', namespace: 'default', serviceAccount: 'x' }], undefined), /no valid join token/);
  assert.throws(() => r.registerProxy('p1', [{ name: 'x', serviceAccount: 'x', address: 'host.example' }], 'any'), /not an IP literal/);
  assert.equal(r.snapshot().workloads.filter((w) => w.source === 'proxy').length, 0);
  // a proxy with no workloads (proxyless or idle) needs no token
  assert.deepEqual(r.registerProxy('p2', [], undefined), []);
});

test('a node-mode proxy with one token per service account registers each workload its tokens grant, and no other', () => {
  const r = new Registry();
  r.setResources([]);
  const grants = [
    { namespace: 'default', serviceAccount: 'a' },
    { namespace: 'default', serviceAccount: 'b' },
  ];
  const metas = [
    { name: 'a1', namespace: 'default', serviceAccount: 'a', inboundPort: 18101, outboundPort: 18100 },
    { name: 'b1', namespace: 'default', serviceAccount: 'b', inboundPort: 18103, outboundPort: 18102 },
  ];
  assert.deepEqual(r.registerProxy('node1', metas, grants).map((w) => w.name), ['a1', 'b1']);
  assert.throws(
    () => r.registerProxy('node2', [{ name: 'c1', namespace: 'default', serviceAccount: 'c' }], grants),
    (e: unknown) => e instanceof RegistrationError && /grants default\/a, default\/b/.test(e.message),
  );
});

test('a disconnected proxy turns UNHEALTHY, then leaves after the grace period; reconnecting cancels it', async () => {
  const r = new Registry({ graceMs: 200 });
  r.setResources([]);
  const meta = [{ name: 'a', namespace: 'default', serviceAccount: 'a', service: 'a', inboundPort: 18001, outboundPort: 18000 }];
  r.registerProxy('p1', meta, 'any');
  r.proxyDisconnected('p1');
  assert.equal(r.snapshot().workloads[0].health, 'UNHEALTHY');
  await new Promise((res) => setTimeout(res, 100));
  r.registerProxy('p1', meta, 'any');
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(r.snapshot().workloads[0].health, 'HEALTHY');
  r.proxyDisconnected('p1');
  await new Promise((res) => setTimeout(res, 300));
  assert.equal(r.snapshot().workloads.length, 0);
  r.close();
});

test('allocated proxy ports are deterministic and survive a restart', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-reg-'));
  try {
    const wl = (name: string) => res('Workload', name, { service: name, ports: [{ port: 9000 }] }, {}, 'trellis.dev/v1alpha1');
    const r1 = new Registry({ stateDir: dir });
    r1.setResources([wl('b'), wl('a')]);
    const a1 = r1.proxyPortsFor('default', 'a');
    const b1 = r1.proxyPortsFor('default', 'b');
    assert.deepEqual(a1, { outboundPort: 15100, inboundPort: 15101, adminPort: 15102 });
    assert.equal(b1.outboundPort, 15103);
    const r2 = new Registry({ stateDir: dir });
    r2.setResources([wl('c'), wl('b')]); // a is gone, c is new: b keeps its ports, c gets a fresh block
    assert.deepEqual(r2.proxyPortsFor('default', 'b'), b1);
    assert.equal(r2.proxyPortsFor('default', 'c').outboundPort, 15106);
    // a proxy registering a workload with no ports anywhere gets allocated ones too
    const w = r2.registerProxy('p', [{ name: 'd', serviceAccount: 'd' }], 'any')[0];
    assert.equal(w.proxy!.outboundPort, 15109);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('port protocol inference', () => {
  const table: [string | undefined, string | undefined, string][] = [
    [undefined, 'http-web', 'HTTP'],
    [undefined, 'grpc', 'GRPC'],
    ['kubernetes.io/h2c', 'x', 'HTTP2'],
    ['tcp', 'http', 'TCP'],
    [undefined, 'mongo', 'TCP'],
    [undefined, undefined, 'TCP'],
  ];
  for (const [explicit, name, want] of table) assert.equal(inferProtocol(explicit, name, 'TCP'), want, `${explicit} ${name}`);
});
