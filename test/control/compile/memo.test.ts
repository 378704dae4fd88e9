// Memoized parts follow their generation: a new CompileInput (new config or new registry) is never served stale parts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileForProxy } from '../../../src/control/compile/index.js';
import { bookinfo, res, trellisProxy, wl } from './fixtures.js';
import { clusters, endpoints } from './helpers.js';

const RV = 'reviews.default.svc.cluster.local';

test('same input twice gives equal snapshots; a new registry generation with the same config updates endpoints', () => {
  const b = bookinfo([res('DestinationRule', 'reviews', { host: 'reviews', trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } })]);
  const first = compileForProxy(b.input, trellisProxy(b.productpage));
  assert.deepEqual(compileForProxy(b.input, trellisProxy(b.productpage)), first);
  const extra = wl('reviews-v4', { labels: { app: 'reviews', version: 'v4' }, services: [RV], address: '10.0.1.4', proxy: true });
  const next = { ...b.input, registry: { ...b.input.registry, workloads: [...b.input.registry.workloads, extra] } };
  const snap = compileForProxy(next, trellisProxy(b.productpage));
  const names = endpoints(snap)[`outbound|9080||${RV}`].endpoints.flatMap((g: any) => g.lb_endpoints.map((e: any) => e.endpoint.hostname));
  assert.ok(names.includes('reviews-v4'));
  assert.equal(clusters(snap)[`outbound|9080||${RV}`].lb_policy, 'RANDOM');
});

test('a new config generation with the same registry updates clusters', () => {
  const b = bookinfo([res('DestinationRule', 'reviews', { host: 'reviews', trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } })]);
  compileForProxy(b.input, trellisProxy(b.productpage));
  const next = { ...b.input, resources: [res('DestinationRule', 'reviews', { host: 'reviews', trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } } })] };
  assert.equal(clusters(compileForProxy(next, trellisProxy(b.productpage)))[`outbound|9080||${RV}`].lb_policy, 'LEAST_REQUEST');
});
