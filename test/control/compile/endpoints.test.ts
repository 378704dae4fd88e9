// Registry -> ClusterLoadAssignment: membership, subsets, localities, health, proxied vs plain endpoints, IP-only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileWithNotes } from '../../../src/control/compile/index.js';
import { loadAssignment } from '../../../src/control/compile/endpoints.js';
import { bookinfo, input, res, svc, trellisProxy, wl } from './fixtures.js';
import { endpoints, trellisMeta } from './helpers.js';

const RV = 'reviews.default.svc.cluster.local';

function cla(resources: unknown[] = [], mutate?: (b: ReturnType<typeof bookinfo>) => void) {
  const b = bookinfo(resources as never[]);
  mutate?.(b);
  const { snapshot, notes } = compileWithNotes(b.input, trellisProxy(b.productpage));
  return { e: endpoints(snapshot), notes };
}

const DR = res('DestinationRule', 'reviews', {
  host: 'reviews',
  subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v3', labels: { version: 'v3' } }, { name: 'none', labels: { version: 'v9' } }],
});

test('a proxied member is its proxy address + inboundPort with tls mutual; identity and targetPort in metadata', () => {
  const { e } = cla([DR]);
  const v1 = e[`outbound|9080|v1|${RV}`];
  assert.equal(v1.cluster_name, `outbound|9080|v1|${RV}`);
  assert.equal(v1.endpoints.length, 1);
  const [le] = v1.endpoints[0].lb_endpoints;
  assert.deepEqual(le.endpoint, { address: { socket_address: { address: '10.0.1.1', port_value: 15006 } }, hostname: 'reviews-v1' });
  assert.equal(le.health_status, 'HEALTHY');
  assert.deepEqual(trellisMeta(le), {
    workload: 'default/reviews-v1',
    identity: 'spiffe://cluster.local/ns/default/sa/reviews-v1',
    targetPort: 9080,
    tls: 'mutual',
  });
});

test('an unproxied member is address:targetPort with tls none', () => {
  const { e } = cla();
  const [le] = e['outbound|9080||ratings.default.svc.cluster.local'].endpoints[0].lb_endpoints;
  assert.deepEqual(le.endpoint.address.socket_address, { address: '10.0.2.1', port_value: 9080 });
  assert.equal(trellisMeta(le).tls, 'none');
});

test('subsets restrict by labels; localities group with weight 1; an empty subset has no endpoints', () => {
  const { e } = cla([DR]);
  const all = e[`outbound|9080||${RV}`];
  assert.deepEqual(
    all.endpoints.map((g: any) => [g.locality, g.load_balancing_weight, g.lb_endpoints.map((x: any) => x.endpoint.hostname)]),
    [
      [{ region: 'eu', zone: 'eu-a' }, { value: 1 }, ['reviews-v1', 'reviews-v2']],
      [{ region: 'eu', zone: 'eu-b' }, { value: 1 }, ['reviews-v3']],
    ],
  );
  assert.equal(e[`outbound|9080|v3|${RV}`].endpoints[0].lb_endpoints[0].endpoint.hostname, 'reviews-v3');
  assert.deepEqual(e[`outbound|9080|none|${RV}`].endpoints, []);
});

test('UNHEALTHY instances are kept and marked; non-IP addresses are skipped and reported', () => {
  const { e, notes } = cla([], (b) => {
    b.reviews[0].health = 'UNHEALTHY';
    b.reviews[1].address = 'reviews-v2.example';
  });
  const eps = e[`outbound|9080||${RV}`].endpoints.flatMap((g: any) => g.lb_endpoints);
  assert.deepEqual(eps.map((x: any) => [x.endpoint.hostname, x.health_status]), [
    ['reviews-v1', 'UNHEALTHY'],
    ['reviews-v3', 'HEALTHY'],
  ]);
  assert.ok(notes.some((n) => n.includes('default/reviews-v2') && n.includes('not an IP literal')));
});

test('membership by Service selector (same namespace) and named instance ports', () => {
  const s = svc('api', [{ port: 80, name: 'http', targetPort: 8080 }], { selector: { app: 'api' } });
  const a = wl('api-1', { labels: { app: 'api' }, address: '10.1.0.1', ports: [{ name: 'http', port: 9999 }] });
  const b = wl('api-2', { labels: { app: 'api' }, address: '10.1.0.2', ports: [{ name: 'other', port: 1 }] });
  const c = wl('api-3', { labels: { app: 'api' }, namespace: 'elsewhere', address: '10.1.0.3' });
  const la: any = loadAssignment('x', input([s], [a, b, c]).registry, s, s.ports[0], undefined);
  assert.deepEqual(
    la.endpoints[0].lb_endpoints.map((x: any) => x.endpoint.address.socket_address),
    [{ address: '10.1.0.1', port_value: 9999 }, { address: '10.1.0.2', port_value: 8080 }],
  );
});

test('a subset referenced by a route but not defined yields a cluster without endpoints, and a note', () => {
  const b = bookinfo([res('VirtualService', 'reviews', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'ghost' } }] }] })]);
  const { snapshot, notes } = compileWithNotes(b.input, trellisProxy(b.productpage));
  assert.deepEqual(endpoints(snapshot)[`outbound|9080|ghost|${RV}`].endpoints, []);
  assert.ok(notes.some((n) => n.includes('"ghost"')));
});

function localityCla(lb: unknown, outlier: boolean) {
  const b = bookinfo([
    res('DestinationRule', 'reviews', { host: 'reviews', trafficPolicy: { loadBalancer: lb, ...(outlier ? { outlierDetection: { consecutive5xxErrors: 3 } } : {}) } }),
  ]);
  b.reviews.push(wl('reviews-us', { labels: { app: 'reviews' }, services: [RV], address: '10.0.3.1', proxy: true, locality: { region: 'us', zone: 'us-a' } }));
  b.input.registry.workloads.push(b.reviews[3]);
  b.productpage.locality = { region: 'eu', zone: 'eu-a' };
  return endpoints(compileWithNotes(b.input, trellisProxy(b.productpage)).snapshot)[`outbound|9080||${RV}`].endpoints.map((g: any) => [
    `${g.locality.region}/${g.locality.zone}`,
    g.load_balancing_weight.value,
    g.priority ?? 0,
  ]);
}

test('locality failover: with outlier detection, groups are prioritised by proximity to the caller (no gaps)', () => {
  assert.deepEqual(localityCla(undefined, true), [
    ['eu/eu-a', 1, 0],
    ['eu/eu-b', 1, 1],
    ['us/us-a', 1, 2],
  ]);
  assert.deepEqual(localityCla(undefined, false), [
    ['eu/eu-a', 1, 0],
    ['eu/eu-b', 1, 0],
    ['us/us-a', 1, 0],
  ], 'without outlier detection nothing would fail over, so priorities stay flat');
  assert.deepEqual(localityCla({ localityLbSetting: { enabled: false } }, true).map((x: any) => x[2]), [0, 0, 0]);
});

test('locality distribute: weights from the first matching rule; unmatched localities get no traffic', () => {
  const lb = { localityLbSetting: { enabled: true, distribute: [{ from: 'us/*', to: { 'us/*': 100 } }, { from: 'eu/eu-a/*', to: { 'eu/eu-a/*': 80, 'us/*': 20 } }] } };
  assert.deepEqual(localityCla(lb, false), [
    ['eu/eu-a', 80, 0],
    ['us/us-a', 20, 0],
  ]);
});
