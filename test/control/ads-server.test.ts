// ADS protocol against a raw grpc-js client: ACK/NACK, stale nonces, full-state LDS/CDS, RDS/EDS by name, debounce.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type * as grpc from '@grpc/grpc-js';
import { AdsServer, type SnapshotFn } from '../../src/control/ads-server.js';
import { Registry } from '../../src/control/registry.js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../src/xds/protos.js';
import type { ProxyDescriptor, XdsSnapshot } from '../../src/control/model.js';
import { ResourceEncoder } from '../../src/control/xds-encoding.js';
import { RawAdsClient, names, startGrpc } from './ads-client.js';

interface World {
  clusters: string[];
  listeners: string[];
  routes: string[];
  endpoints: Record<string, string>; // cluster -> address
}

function snapshotOf(w: World): XdsSnapshot {
  return {
    [CLUSTER_TYPE]: Object.fromEntries(w.clusters.map((n) => [n, { name: n, type: 'EDS' }])),
    [LISTENER_TYPE]: Object.fromEntries(w.listeners.map((n) => [n, { name: n }])),
    [ROUTE_TYPE]: Object.fromEntries(w.routes.map((n) => [n, { name: n }])),
    [ENDPOINT_TYPE]: Object.fromEntries(
      Object.entries(w.endpoints).map(([c, a]) => [
        c,
        { cluster_name: c, endpoints: [{ load_balancing_weight: { value: 1 }, lb_endpoints: [{ endpoint: { address: { socket_address: { address: a, port_value: 80 } } } }] }] },
      ]),
    ),
  };
}

async function setup(opts: { registry?: Registry; verifyToken?: (t: string) => { namespace: string; serviceAccount: string } } = {}) {
  const world: World = { clusters: ['a', 'b'], listeners: ['l1', 'l2'], routes: ['r1', 'r2'], endpoints: { a: '10.0.0.1', b: '10.0.0.2' } };
  const calls: { proxy: ProxyDescriptor; subs: { listeners?: string[] } }[] = [];
  const snapshotFor: SnapshotFn = (proxy, subs) => {
    calls.push({ proxy, subs });
    return snapshotOf(world);
  };
  const ads = new AdsServer({ snapshotFor, debounceMs: 100, maxDelayMs: 1000, ...opts });
  const { server, addr } = await startGrpc((s) => ads.addTo(s));
  const clients: RawAdsClient[] = [];
  const client = (id: string, metadata: Record<string, unknown> = { TRELLIS_PROXY: '1' }, token?: string) => {
    const c = new RawAdsClient(addr, { id, metadata }, token);
    clients.push(c);
    return c;
  };
  const close = async () => {
    for (const c of clients) c.close();
    ads.close();
    await new Promise<void>((r) => (server as grpc.Server).tryShutdown(() => r()));
  };
  return { world, ads, client, calls, close };
}

test('ADS: initial response, an ACK gets no answer, a stale nonce is ignored', async () => {
  const t = await setup();
  try {
    const c = t.client('p1');
    c.request({ type: CLUSTER_TYPE });
    const r1 = await c.next();
    assert.deepEqual(names(r1), ['a', 'b']);
    assert.equal(t.ads.proxy('p1')!.types.clusters.state, 'STALE');
    c.ack(r1);
    assert.ok(await c.none(300), 'an ACK is never answered');
    const st = t.ads.proxy('p1')!.types.clusters;
    assert.equal(st.state, 'SYNCED');
    assert.equal(st.ackedVersion, r1.version_info);
    // a request carrying an old nonce, even with other names, is ignored
    c.request({ type: CLUSTER_TYPE, names: ['a'], nonce: 'not-the-last-nonce', version: r1.version_info });
    assert.ok(await c.none(300));
    assert.equal(t.ads.responsesSent, 1);
  } finally {
    await t.close();
  }
});

test('ADS: a NACK keeps the last good config and its reason is shown', async () => {
  const t = await setup();
  try {
    const c = t.client('p1');
    c.request({ type: CLUSTER_TYPE });
    const r1 = await c.next();
    c.ack(r1);
    await c.none(100);
    t.world.clusters = ['a', 'b', 'c'];
    t.ads.trigger();
    const r2 = await c.next();
    assert.notEqual(r2.nonce, r1.nonce);
    assert.notEqual(r2.version_info, r1.version_info);
    assert.deepEqual(names(r2), ['a', 'b', 'c']);
    c.ack(r2, [], 'cluster c: unknown lb policy');
    assert.ok(await c.none(300), 'a NACK is not answered with the same config');
    const st = t.ads.proxy('p1')!.types.clusters;
    assert.equal(st.state, 'NACKED');
    assert.equal(st.nackReason, 'cluster c: unknown lb policy');
    assert.equal(st.ackedVersion, r1.version_info);
    const cfg = t.ads.proxyConfig('p1', 'clusters') as { clusters: { name: string }[] };
    assert.deepEqual(cfg.clusters.map((x) => x.name), ['a', 'b'], 'config shows what the proxy holds');
    // the same snapshot again is not re-sent; a fixed one is, and its ACK clears the NACK
    t.ads.trigger();
    assert.ok(await c.none(300));
    t.world.clusters = ['a', 'c'];
    t.ads.trigger();
    const r3 = await c.next();
    c.ack(r3);
    await c.none(100);
    assert.equal(t.ads.proxy('p1')!.types.clusters.state, 'SYNCED');
    assert.equal(t.ads.proxy('p1')!.types.clusters.nackReason, undefined);
  } finally {
    await t.close();
  }
});

test('ADS: LDS is full state (a removed listener disappears); RDS and EDS carry requested names, only those that changed', async () => {
  const t = await setup();
  try {
    const c = t.client('p1');
    c.request({ type: LISTENER_TYPE });
    const l1 = await c.next();
    assert.deepEqual(names(l1), ['l1', 'l2']);
    c.ack(l1);
    c.request({ type: ENDPOINT_TYPE, names: ['a'] });
    const e1 = await c.next();
    assert.deepEqual(names(e1), ['a']);
    c.ack(e1, ['a', 'b']); // subscription grows with the ACK: only the new name is sent
    const e2 = await c.next();
    assert.deepEqual(names(e2), ['b']);
    c.ack(e2, ['a', 'b']);
    c.request({ type: ROUTE_TYPE, names: ['r2', 'missing'] });
    const rr = await c.next();
    assert.deepEqual(names(rr), ['r2']);
    c.ack(rr, ['r2', 'missing']);
    assert.ok(await c.none(200));

    t.world.listeners = ['l2'];
    t.world.endpoints.b = '10.0.0.9';
    t.ads.trigger();
    const got = [await c.next(), await c.next()];
    const lds = got.find((r) => r.type_url === LISTENER_TYPE)!;
    const eds = got.find((r) => r.type_url === ENDPOINT_TYPE)!;
    assert.deepEqual(names(lds), ['l2']);
    assert.deepEqual(names(eds), ['b'], 'EDS carries only the changed assignment; the client keeps a');
    assert.ok(await c.none(200), 'routes did not change: not re-sent');
    const held = t.ads.proxyConfig('p1', 'endpoints') as { endpoints: { cluster_name: string }[] };
    assert.deepEqual(held.endpoints.map((e) => e.cluster_name), ['a', 'b'], 'status shows everything the proxy holds');
  } finally {
    await t.close();
  }
});

test('ADS: a burst of changes is coalesced into one push', async () => {
  const t = await setup();
  try {
    const c = t.client('p1');
    c.request({ type: CLUSTER_TYPE });
    c.ack(await c.next());
    await c.none(50);
    const before = t.ads.responsesSent;
    for (let i = 0; i < 5; i++) {
      t.world.clusters = ['a', 'b', `x${i}`];
      t.ads.trigger();
      await new Promise((r) => setTimeout(r, 20));
    }
    const r = await c.next();
    assert.deepEqual(names(r), ['a', 'b', 'x4']);
    assert.ok(await c.none(300));
    assert.equal(t.ads.responsesSent - before, 1);
  } finally {
    await t.close();
  }
});

test('ADS: proxy registration is scoped by its join token; proxyless clients get listeners by subscription', async () => {
  const registry = new Registry({ graceMs: 200 });
  registry.setResources([]);
  const verifyToken = (tok: string) => {
    if (tok !== 'good') throw new Error('bad token');
    return { namespace: 'default', serviceAccount: 'reviews' };
  };
  const t = await setup({ registry, verifyToken });
  try {
    const workload = { name: 'reviews-v1', namespace: 'default', serviceAccount: 'reviews', service: 'reviews', inboundPort: 16001, outboundPort: 16000 };
    const bad = t.client('bad', { TRELLIS_PROXY: '1', WORKLOADS: [{ ...workload, serviceAccount: 'ratings' }] }, 'good');
    bad.request({ type: CLUSTER_TYPE });
    const err = await bad.failure();
    assert.match(err.details, /not allowed by the join token/);
    const noTok = t.client('notok', { TRELLIS_PROXY: '1', WORKLOADS: [workload] });
    noTok.request({ type: CLUSTER_TYPE });
    assert.match((await noTok.failure()).details, /no valid join token/);

    const ok = t.client('ok', { TRELLIS_PROXY: '1', WORKLOADS: [workload], VERSION: '9.9.9' }, 'good');
    ok.request({ type: CLUSTER_TYPE });
    await ok.next();
    const st = t.ads.proxy('ok')!;
    assert.equal(st.version, '9.9.9');
    assert.deepEqual(st.workloads.map((w) => `${w.namespace}/${w.name}:${w.health}`), ['default/reviews-v1:HEALTHY']);
    assert.equal(t.calls.at(-1)!.proxy.workloads[0].name, 'reviews-v1');
    ok.close();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(registry.snapshot().workloads[0]?.health, 'UNHEALTHY');
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(registry.snapshot().workloads.length, 0);

    const pl = t.client('grpc-app', {});
    pl.request({ type: LISTENER_TYPE, names: ['reviews:9080'] });
    const r = await pl.next();
    assert.deepEqual(names(r), []); // the fake compiler has no such listener; the subscription reached it
    const last = t.calls.at(-1)!;
    assert.equal(last.proxy.kind, 'proxyless');
    assert.deepEqual(last.subs.listeners, ['reviews:9080']);
  } finally {
    await t.close();
    registry.close();
  }
});

test('encoder: equal resources built separately share one encoding', () => {
  const enc = new ResourceEncoder();
  const a = enc.encode(CLUSTER_TYPE, { name: 'x', type: 'EDS' });
  const b = enc.encode(CLUSTER_TYPE, { name: 'x', type: 'EDS' });
  const c = enc.encode(CLUSTER_TYPE, { name: 'y', type: 'EDS' });
  assert.equal(a, b);
  assert.notEqual(a.id, c.id);
  assert.equal(enc.size, 2);
  enc.sweep();
  enc.sweep();
  enc.sweep();
  assert.equal(enc.size, 0, 'unused encodings are dropped');
});

test('ADS: while a response is unanswered nothing more is sent; changes meanwhile arrive folded after the ACK', async () => {
  const t = await setup();
  try {
    const c = t.client('p1');
    c.request({ type: CLUSTER_TYPE });
    const r1 = await c.next();
    t.world.clusters = ['a', 'b', 'x1'];
    await t.ads.pushAll();
    t.world.clusters = ['a', 'b', 'x2'];
    await t.ads.pushAll();
    assert.ok(await c.none(200), 'nothing while r1 is unanswered');
    c.ack(r1);
    const r2 = await c.next();
    assert.deepEqual(names(r2), ['a', 'b', 'x2'], 'the latest state, once');
    c.ack(r2);
    assert.ok(await c.none(200));
    assert.equal(t.ads.proxy('p1')!.types.clusters.state, 'SYNCED');
  } finally {
    await t.close();
  }
});

test('ADS: streams subscribing alike get one shared response (same version and nonce), each ACK counts for its stream', async () => {
  const t = await setup();
  try {
    const [c1, c2] = [t.client('p1'), t.client('p2')];
    c1.request({ type: ENDPOINT_TYPE, names: ['a', 'b'] });
    c2.request({ type: ENDPOINT_TYPE, names: ['b', 'a'] });
    const [r1, r2] = [await c1.next(), await c2.next()];
    assert.equal(r1.nonce, r2.nonce);
    assert.equal(r1.version_info, r2.version_info);
    c1.ack(r1, ['a', 'b']);
    c2.ack(r2, ['a', 'b']);
    await c1.none(100);
    assert.equal(t.ads.ackedSince(ENDPOINT_TYPE, 0).acked, 2);
  } finally {
    await t.close();
  }
});

test('ADS: a large EDS response goes in parts; the last part ACKed syncs, a rejected earlier part stands', async () => {
  const eps = (c: string) => ({
    cluster_name: c,
    endpoints: [{ load_balancing_weight: { value: 1 }, lb_endpoints: Array.from({ length: 1000 }, (_, i) => ({ endpoint: { address: { socket_address: { address: `10.1.${i >> 8}.${i & 255}`, port_value: 80 } }, hostname: `${c}-host-${i}` } })) }],
  });
  const clusterNames = Array.from({ length: 12 }, (_, i) => `c${i}`);
  const snap: XdsSnapshot = { [ENDPOINT_TYPE]: Object.fromEntries(clusterNames.map((c) => [c, eps(c)])) };
  const ads = new AdsServer({ snapshotFor: () => snap });
  const { server, addr } = await startGrpc((s) => ads.addTo(s));
  const c = new RawAdsClient(addr, { id: 'p1', metadata: { TRELLIS_PROXY: '1' } });
  try {
    c.request({ type: ENDPOINT_TYPE, names: clusterNames });
    const parts = [await c.next()];
    while (parts.flatMap(names).length < clusterNames.length) parts.push(await c.next());
    assert.ok(parts.length >= 2, `${parts.length} parts`);
    assert.deepEqual(parts.flatMap(names).sort(), [...clusterNames].sort(), 'every assignment exactly once');
    c.ack(parts[0], clusterNames);
    await c.none(100);
    assert.equal(ads.proxy('p1')!.types.endpoints.state, 'STALE', 'an earlier part ACKed is not the whole response');
    for (const p of parts.slice(1)) c.ack(p, clusterNames);
    await c.none(100);
    assert.equal(ads.proxy('p1')!.types.endpoints.state, 'SYNCED');

    // A new subscription from scratch: the first part rejected, the rest accepted -> NACKED with that reason.
    c.request({ type: ENDPOINT_TYPE, names: clusterNames });
    const again = [await c.next()];
    while (again.flatMap(names).length < clusterNames.length) again.push(await c.next());
    c.ack(again[0], clusterNames, 'bad endpoint in c0');
    for (const p of again.slice(1)) c.ack(p, clusterNames);
    await c.none(100);
    const st = ads.proxy('p1')!.types.endpoints;
    assert.equal(st.state, 'NACKED');
    assert.equal(st.nackReason, 'bad endpoint in c0');
  } finally {
    c.close();
    ads.close();
    await new Promise<void>((r) => server.tryShutdown(() => r()));
  }
});

test('ADS (on-demand EDS): a change to an assignment nobody on the stream requested sends nothing; ackedSince counts that name\'s subscribers', async () => {
  const t = await setup();
  try {
    const c1 = t.client('p1');
    const c2 = t.client('p2');
    for (const [c, n] of [[c1, 'a'], [c2, 'b']] as const) {
      c.request({ type: ENDPOINT_TYPE, names: [n] });
      const r = await c.next();
      assert.deepEqual(names(r), [n]);
      c.ack(r, [n]);
    }
    const since = Date.now();
    t.world.endpoints.b = '10.0.0.7';
    t.ads.trigger();
    const r2 = await c2.next();
    assert.deepEqual(names(r2), ['b']);
    c2.ack(r2, ['b']);
    assert.ok(await c1.none(300), 'p1 asked only for a: nothing sent');
    assert.deepEqual(
      { b: t.ads.ackedSince(ENDPOINT_TYPE, since, 'b').total, a: t.ads.ackedSince(ENDPOINT_TYPE, 0, 'a').total, all: t.ads.ackedSince(ENDPOINT_TYPE, 0).total },
      { b: 1, a: 1, all: 2 },
    );
    // The ACK is processed asynchronously: wait for it (bounded).
    for (const end = Date.now() + 5000; t.ads.ackedSince(ENDPOINT_TYPE, since, 'b').acked < 1 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
    assert.equal(t.ads.ackedSince(ENDPOINT_TYPE, since, 'b').acked, 1);
  } finally {
    await t.close();
  }
});

test('ADS: a recompile into an equal map sends nothing and lets the previous map go (the proxy holds the new one)', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  setFlagsFromString('--no-expose-gc');
  let map: Record<string, object> | undefined = { a: { name: 'a', type: 'EDS' } };
  const first = new WeakRef(map);
  const snapshotFor: SnapshotFn = () => {
    const m = map ?? { a: { name: 'a', type: 'EDS' } }; // equal content, another object
    map = undefined;
    return { [CLUSTER_TYPE]: m };
  };
  const ads = new AdsServer({ snapshotFor, debounceMs: 10 });
  const { server, addr } = await startGrpc((s) => ads.addTo(s));
  const c = new RawAdsClient(addr, { id: 'p1', metadata: { TRELLIS_PROXY: '1' } });
  try {
    c.request({ type: CLUSTER_TYPE });
    c.ack(await c.next());
    assert.ok(await c.none(100));
    await ads.pushAll();
    assert.ok(await c.none(100), 'equal content: nothing to send');
    assert.equal(ads.responsesSent, 1);
    assert.equal(ads.proxy('p1')!.types.clusters.state, 'SYNCED');
    for (let i = 0; i < 3 && first.deref(); i++) {
      await new Promise((r) => setImmediate(r));
      gc();
    }
    assert.equal(first.deref(), undefined, 'the first map is no longer held for the proxy');
    assert.deepEqual(Object.keys((ads.proxyConfig('p1') as { clusters: object[] }).clusters), ['0']);
  } finally {
    c.close();
    ads.close();
    await new Promise<void>((r) => (server as grpc.Server).tryShutdown(() => r()));
  }
});

test('ADS: a response content is kept encoded only from its second send on (one-off responses are not cached)', async () => {
  const ads = new AdsServer({ snapshotFor: (p) => ({ [CLUSTER_TYPE]: { [`own-${p.id}`]: { name: `own-${p.id}`, type: 'EDS' } }, [ROUTE_TYPE]: { r: { name: 'r' } } }) });
  const cached = () => [...(ads as unknown as { responses: Map<string, { bytes?: Buffer }> }).responses.values()].filter((r) => r.bytes).length;
  const { server, addr } = await startGrpc((s) => ads.addTo(s));
  const a = new RawAdsClient(addr, { id: 'a', metadata: { TRELLIS_PROXY: '1' } });
  const b = new RawAdsClient(addr, { id: 'b', metadata: { TRELLIS_PROXY: '1' } });
  try {
    a.request({ type: CLUSTER_TYPE });
    a.request({ type: ROUTE_TYPE, names: ['r'] });
    const [ca, ra] = [await a.next(), await a.next()];
    assert.equal(cached(), 0, 'each content sent once: nothing kept but its version and nonce');
    b.request({ type: CLUSTER_TYPE });
    b.request({ type: ROUTE_TYPE, names: ['r'] });
    const [cb, rb] = [await b.next(), await b.next()];
    assert.notEqual(cb.nonce, ca.nonce, 'each proxy its own clusters');
    assert.equal(rb.nonce, ra.nonce, 'the same route configuration: same nonce and version');
    assert.equal(rb.version_info, ra.version_info);
    assert.equal(cached(), 1, 'the shared response is kept, the one-off ones are not');
  } finally {
    a.close();
    b.close();
    ads.close();
    await new Promise<void>((r) => (server as grpc.Server).tryShutdown(() => r()));
  }
});
