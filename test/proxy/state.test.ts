// The state store: compiles raw xDS resources into one snapshot, reports what is missing, never swaps in a bad config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StateStore, compileState, emptyRaw } from '../../src/proxy/state.js';
import { parseListener, parseCluster } from '../../src/proxy/config/parse.js';
import * as x from './helpers/xds.js';

const W = 'default/a';

function fullRaw() {
  const raw = emptyRaw();
  const c = x.outboundCluster('b', 80, { protocol: 'GRPC', subset: 'v1' });
  raw.listeners.set(`outbound|${W}`, x.outboundHttpListener(W, 15001));
  raw.listeners.set(`inbound|${W}`, x.inboundListener(W, 15006, [{ appPort: 9080, mtls: 'PERMISSIVE' }, { appPort: 7000, protocol: 'TCP' }]));
  raw.clusters.set(c.name, c);
  raw.clusters.set('inbound|9080|default/a', x.inboundCluster(W, 9080));
  raw.endpoints.set(c.name, x.loadAssignment(c.name, [{ port: 15006, workload: 'default/b', identity: 'spiffe://cluster.local/ns/default/sa/b', targetPort: 9080 }]));
  raw.routes.set(`outbound|${W}`, x.routeConfiguration(`outbound|${W}`, [{ name: 'b', domains: ['b'], routes: [{ cluster: c.name }] }]));
  return { raw, c };
}

test('listener parsing per the contract: outbound HTTP, inbound chains with mtls/protocol metadata', () => {
  const out = parseListener(x.outboundHttpListener(W, 15001));
  assert.deepEqual(
    { kind: out.kind, direction: out.direction, workload: out.workload, route: out.routeConfigName, port: out.port, address: out.address },
    { kind: 'http', direction: 'outbound', workload: W, route: `outbound|${W}`, port: 15001, address: '127.0.0.1' },
  );
  const inb = parseListener(x.inboundListener(W, 15006, [{ appPort: 9080, mtls: 'PERMISSIVE' }, { appPort: 7000, protocol: 'TCP', mtls: 'STRICT' }]));
  assert.equal(inb.kind, 'inbound');
  assert.deepEqual(
    inb.chains.map((c) => [c.destinationPort, c.transport, c.mtls, c.protocol, c.cluster, c.httpFilters.length]),
    [
      [9080, 'tls', 'PERMISSIVE', 'HTTP', 'inbound|9080|default/a', 0],
      [9080, 'raw_buffer', 'PERMISSIVE', 'HTTP', 'inbound|9080|default/a', 0],
      [7000, 'tls', 'STRICT', 'TCP', 'inbound|7000|default/a', 0],
    ],
  );
  assert.deepEqual(inb.chains[0].alpn, ['h2', 'http/1.1']);
  const tcp = parseListener(x.outboundTcpListener(W, 17000, 'outbound|7000||db.default.svc.cluster.local'));
  assert.equal(tcp.kind, 'tcp');
  assert.equal(tcp.tcpCluster, 'outbound|7000||db.default.svc.cluster.local');
});

test('cluster parsing: EDS service name, connect timeout, lb policy, trellis metadata', () => {
  const c = parseCluster(x.outboundCluster('b', 80, { protocol: 'GRPC', subset: 'v1', connectTimeoutMs: 1500 }));
  assert.deepEqual(
    [c.type, c.edsServiceName, c.connectTimeoutMs, c.lbPolicy, c.service, c.port, c.subset, c.protocol],
    ['EDS', 'outbound|80|v1|b.default.svc.cluster.local', 1500, 'ROUND_ROBIN', 'b.default.svc.cluster.local', 80, 'v1', 'GRPC'],
  );
  assert.throws(() => parseCluster({ name: 'x', type: 'STRICT_DNS' }), /cluster x: unsupported type STRICT_DNS/);
  assert.throws(() => parseCluster({ name: 'x', type: 'EDS', lb_policy: 'CLUSTER_PROVIDED' }), /unsupported lb_policy/);
});

test('a complete config has nothing missing; references not yet delivered are listed', () => {
  const { raw, c } = fullRaw();
  assert.deepEqual(compileState(raw, 1).missing, []);
  raw.routes.clear();
  raw.endpoints.clear();
  assert.deepEqual(compileState(raw, 2).missing.sort(), [`endpoints ${c.name}`, `route outbound|${W}`]);
});

test('an update that does not compile is refused with the resource named, and the last good snapshot stays', () => {
  const store = new StateStore();
  const { raw } = fullRaw();
  assert.equal(store.update(raw, 'listeners'), undefined);
  const good = store.current;
  const bad = { ...raw, listeners: new Map(raw.listeners) };
  bad.listeners.set('broken', { name: 'broken', address: { socket_address: { address: '127.0.0.1', port_value: 1 } }, filter_chains: [{ filters: [] }] });
  const err = store.update(bad, 'listeners');
  assert.match(err!, /listener broken filter_chains\[0\]: neither http_connection_manager nor tcp_proxy/);
  assert.equal(store.current, good);
});

test('unchanged cluster and endpoints keep their balancer across updates; changed endpoints get a new one', () => {
  const store = new StateStore();
  const { raw, c } = fullRaw();
  store.update(raw);
  const b1 = store.current.clusters.get(c.name)!.balancer;
  store.update({ ...raw, routes: new Map(raw.routes) });
  assert.equal(store.current.clusters.get(c.name)!.balancer, b1);
  const eps = new Map(raw.endpoints);
  eps.set(c.name, x.loadAssignment(c.name, [{ port: 15007, workload: 'default/b2', identity: 'spiffe://cluster.local/ns/default/sa/b', targetPort: 9080 }]));
  store.update({ ...raw, endpoints: eps });
  const cs = store.current.clusters.get(c.name)!;
  assert.notEqual(cs.balancer, b1);
  assert.equal(cs.endpoints[0].port, 15007);
});

test('ROOTCA secret becomes the trust bundle; garbage is refused', () => {
  const { raw } = fullRaw();
  raw.secrets.set('ROOTCA', x.rootCaSecret('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'));
  assert.match(compileState(raw, 1).trustBundlePem!, /BEGIN CERTIFICATE/);
  raw.secrets.set('ROOTCA', x.rootCaSecret('nope'));
  assert.throws(() => compileState(raw, 2), /secret ROOTCA: trusted_ca holds no PEM certificate/);
});
