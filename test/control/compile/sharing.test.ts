// Caller-independent parts are shared by reference across proxies and generations; a change replaces only what it touches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileForProxy, compileWithNotes } from '../../../src/control/compile/index.js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../../../src/xds/protos.js';
import type { CompileInput, WorkloadInstance } from '../../../src/control/model.js';
import { bookinfo, res, trellisProxy } from './fixtures.js';
import { listeners, outboundRoutes, routeConfigs, unpack } from './helpers.js';

const RV = 'reviews.default.svc.cluster.local';
const REVIEWS = `outbound|9080||${RV}`;
const RATINGS = 'outbound|9080||ratings.default.svc.cluster.local';

/** The same config and registry content as fresh objects: what the control plane hands over after an unrelated change. */
function regenerate(input: CompileInput, edit?: (w: WorkloadInstance) => WorkloadInstance): CompileInput {
  const workloads = input.registry.workloads.map((w) => (edit ? edit(structuredClone(w)) : structuredClone(w)));
  return { ...input, resources: [...input.resources], registry: { services: structuredClone(input.registry.services), workloads } };
}

test('sidecars in one namespace share route configuration, clusters and load assignments by reference', () => {
  const b = bookinfo();
  const pp = compileForProxy(b.input, trellisProxy(b.productpage));
  const rv = compileForProxy(b.input, trellisProxy(b.reviews[0]));
  assert.equal(outboundRoutes(pp, 'default/productpage-v1'), outboundRoutes(rv, 'default/reviews-v1'));
  assert.equal(outboundRoutes(pp, 'default/productpage-v1').name, 'outbound|default');
  assert.equal(pp[CLUSTER_TYPE][REVIEWS], rv[CLUSTER_TYPE][REVIEWS]);
  assert.equal(pp[ENDPOINT_TYPE][REVIEWS], rv[ENDPOINT_TYPE][REVIEWS], 'no locality policy: one assignment for every locality');
  const rt = compileForProxy(b.input, trellisProxy(b.ratings));
  assert.equal(pp[ENDPOINT_TYPE], rt[ENDPOINT_TYPE], 'same namespace and locality: the whole EDS map is shared');
  assert.equal(pp[ROUTE_TYPE], rv[ROUTE_TYPE], 'the same route configuration: the whole RDS map is shared');
  assert.notEqual(pp[CLUSTER_TYPE], rv[CLUSTER_TYPE], 'each proxy has its own inbound cluster');
});

test('a new generation with equal content hands out the very same objects and maps', () => {
  const b = bookinfo([res('PeerAuthentication', 'default', { mtls: { mode: 'STRICT' } })]);
  const proxy = trellisProxy(b.productpage);
  const first = compileForProxy(b.input, proxy);
  const next = regenerate(b.input);
  const again = compileForProxy(next, { ...proxy, workloads: [next.registry.workloads[0]] });
  for (const type of [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE]) {
    for (const [name, obj] of Object.entries(first[type])) {
      if (type === ROUTE_TYPE) assert.deepEqual(again[type][name], obj, name); // rebuilt per generation, equal content
      else assert.equal(again[type][name], obj, `${type} ${name} is the same object`);
    }
  }
  assert.equal(again[CLUSTER_TYPE], first[CLUSTER_TYPE], 'CDS map unchanged');
  assert.equal(again[ENDPOINT_TYPE], first[ENDPOINT_TYPE], 'EDS map unchanged');
  assert.equal(again[LISTENER_TYPE], first[LISTENER_TYPE], 'LDS map unchanged');
});

test('an endpoint change replaces only that load assignment; clusters and listeners stay', () => {
  const b = bookinfo();
  const proxy = trellisProxy(b.productpage);
  const first = compileForProxy(b.input, proxy);
  const next = regenerate(b.input, (w) => (w.name === 'reviews-v2' ? { ...w, health: 'UNHEALTHY' } : w));
  const again = compileForProxy(next, { ...proxy, workloads: [next.registry.workloads[0]] });
  assert.notEqual(again[ENDPOINT_TYPE][REVIEWS], first[ENDPOINT_TYPE][REVIEWS]);
  const health = (again[ENDPOINT_TYPE][REVIEWS] as any).endpoints.flatMap((g: any) => g.lb_endpoints.map((e: any) => e.health_status));
  assert.ok(health.includes('UNHEALTHY'));
  assert.equal(again[ENDPOINT_TYPE][RATINGS], first[ENDPOINT_TYPE][RATINGS]);
  assert.equal(again[CLUSTER_TYPE], first[CLUSTER_TYPE]);
  assert.equal(again[LISTENER_TYPE], first[LISTENER_TYPE]);
});

test('callers matching a sourceLabels selector get their own route configuration; the rest share the plain one', () => {
  const b = bookinfo([
    res('VirtualService', 'reviews', {
      hosts: ['reviews'],
      http: [{ match: [{ sourceLabels: { app: 'ratings' } }], route: [{ destination: { host: 'reviews', subset: 'v3' } }] }, { route: [{ destination: { host: 'reviews' } }] }],
    }),
  ]);
  const pp = outboundRoutes(compileForProxy(b.input, trellisProxy(b.productpage)), 'default/productpage-v1');
  const rt = outboundRoutes(compileForProxy(b.input, trellisProxy(b.ratings)), 'default/ratings-v1');
  assert.equal(pp.name, 'outbound|default');
  assert.match(rt.name, /^outbound\|default\|[0-9a-f]{12}$/);
  assert.notDeepEqual(pp.virtual_hosts, rt.virtual_hosts);
  const hcm = unpack(listeners(compileForProxy(b.input, trellisProxy(b.ratings)))['outbound|default/ratings-v1'].filter_chains[0].filters[0].typed_config);
  assert.equal(hcm.rds.route_config_name, rt.name, 'the listener names the configuration it needs');
});

test('a policy change rebuilds listeners (and notes) though the workload did not change', () => {
  const b = bookinfo([res('PeerAuthentication', 'default', { mtls: { mode: 'STRICT' } })]);
  const proxy = trellisProxy(b.productpage);
  const strict = compileForProxy(b.input, proxy)[LISTENER_TYPE]['inbound|default/productpage-v1'] as any;
  const permissive = { ...b.input, resources: [res('PeerAuthentication', 'default', { mtls: { mode: 'PERMISSIVE' } })] };
  const after = compileWithNotes(permissive, proxy);
  const inbound = after.snapshot[LISTENER_TYPE]['inbound|default/productpage-v1'] as any;
  assert.notEqual(inbound, strict);
  assert.equal(strict.filter_chains.length, 1);
  assert.equal(inbound.filter_chains.length, 2, 'PERMISSIVE adds the plaintext chain');
  assert.deepEqual(Object.keys(routeConfigs(after.snapshot)), ['outbound|default']);
});
