// Fields the schema accepts and the compiler now honours: VirtualService match gateways and redirect derivePort,
// HTTPRoute parentRef sectionName, DestinationRule localityLbSetting.failover.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileForProxy } from '../../../src/control/compile/index.js';
import { localityPlan } from '../../../src/control/compile/locality.js';
import type { Resource } from '../../../src/api/types.js';
import { bookinfo, res, svc, trellisProxy } from './fixtures.js';
import { outboundRoutes, vhost } from './helpers.js';

const RV = 'reviews.default.svc.cluster.local';
const GW = 'gateway.networking.k8s.io/v1';
const TO_V1 = [{ destination: { host: 'reviews' } }];

/** Route tables of reviews' virtual hosts (every port) as productpage sees them. */
function reviewsRoutes(resources: Resource[], ports?: { port: number; name?: string }[]): Record<number, any[]> {
  const b = bookinfo(resources);
  if (ports) b.input.registry.services[1] = svc('reviews', ports);
  const rc = outboundRoutes(compileForProxy(b.input, trellisProxy(b.productpage)), 'default/productpage-v1');
  const out: Record<number, any[]> = {};
  for (const p of ports ?? [{ port: 9080 }]) out[p.port] = vhost(rc, `${RV}:${p.port}`).routes;
  return out;
}

const vs = (http: unknown[]) => res('VirtualService', 'reviews', { hosts: ['reviews'], http });

test('VirtualService match gateways: a match without `mesh` does not apply to mesh traffic', () => {
  const cases: { name: string; gateways: string[] | undefined; applies: boolean }[] = [
    { name: 'unset', gateways: undefined, applies: true },
    { name: 'empty', gateways: [], applies: true },
    { name: 'mesh', gateways: ['mesh'], applies: true },
    { name: 'a gateway and mesh', gateways: ['bookinfo-gateway', 'mesh'], applies: true },
    { name: 'a gateway only', gateways: ['bookinfo-gateway'], applies: false },
  ];
  for (const c of cases) {
    const routes = reviewsRoutes([
      vs([
        { match: [{ uri: { prefix: '/gw' }, ...(c.gateways ? { gateways: c.gateways } : {}) }], directResponse: { status: 418 } },
        { route: TO_V1 },
      ]),
    ])[9080];
    const gw = routes.find((r) => r.match.prefix === '/gw');
    assert.equal(gw !== undefined, c.applies, c.name);
    assert.equal(routes.length, c.applies ? 2 : 1, c.name);
  }
  // Only the gateway-only match of a rule is dropped; its other matches keep the rule.
  const routes = reviewsRoutes([vs([{ match: [{ uri: { prefix: '/gw' }, gateways: ['gw'] }, { uri: { prefix: '/m' } }], route: TO_V1 }])])[9080];
  assert.deepEqual(routes.map((r) => r.match.prefix), ['/m']);
});

test('VirtualService redirect derivePort: FROM_PROTOCOL_DEFAULT sets the scheme\'s default port; port wins', () => {
  const cases: { name: string; redirect: Record<string, unknown>; port: number | undefined }[] = [
    { name: 'no derivePort keeps the request port', redirect: { uri: '/n' }, port: undefined },
    { name: 'FROM_REQUEST_PORT keeps the request port', redirect: { uri: '/n', derivePort: 'FROM_REQUEST_PORT' }, port: undefined },
    { name: 'FROM_PROTOCOL_DEFAULT, scheme https', redirect: { scheme: 'https', derivePort: 'FROM_PROTOCOL_DEFAULT' }, port: 443 },
    { name: 'FROM_PROTOCOL_DEFAULT, scheme http', redirect: { scheme: 'http', derivePort: 'FROM_PROTOCOL_DEFAULT' }, port: 80 },
    { name: 'FROM_PROTOCOL_DEFAULT, no scheme (plain HTTP in the mesh)', redirect: { uri: '/n', derivePort: 'FROM_PROTOCOL_DEFAULT' }, port: 80 },
    { name: 'an explicit port wins', redirect: { scheme: 'https', port: 8443, derivePort: 'FROM_PROTOCOL_DEFAULT' }, port: 8443 },
  ];
  for (const c of cases) {
    const [r] = reviewsRoutes([vs([{ redirect: c.redirect }])])[9080];
    assert.equal(r.redirect.port_redirect, c.port, c.name);
  }
});

test('HTTPRoute parentRef sectionName: the route attaches to the Service port of that name only', () => {
  const ports = [
    { port: 9080, name: 'http' },
    { port: 9090, name: 'admin' },
  ];
  const route = (parent: Record<string, unknown>) =>
    res('HTTPRoute', 'r', { parentRefs: [{ group: '', kind: 'Service', name: 'reviews', ...parent }], rules: [{ backendRefs: [{ name: 'reviews', port: 9080 }] }] }, { apiVersion: GW });
  const cases: { name: string; parent: Record<string, unknown>; attached: number[] }[] = [
    { name: 'no section: every port', parent: {}, attached: [9080, 9090] },
    { name: 'section admin', parent: { sectionName: 'admin' }, attached: [9090] },
    { name: 'section http', parent: { sectionName: 'http' }, attached: [9080] },
    { name: 'section naming no port', parent: { sectionName: 'grpc' }, attached: [] },
    { name: 'section and port must agree', parent: { sectionName: 'admin', port: 9080 }, attached: [] },
  ];
  for (const c of cases) {
    const byPort = reviewsRoutes([route(c.parent)], ports);
    const attached = ports.map((p) => p.port).filter((p) => byPort[p].some((r) => r.name === 'default/r#0'));
    assert.deepEqual(attached, c.attached, c.name);
  }
});

test('DestinationRule localityLbSetting.failover: the named region comes right after the caller\'s own', () => {
  const od = true;
  const caller = { region: 'us-east', zone: 'a' };
  const lb = (failover?: { from: string; to: string }[]) => ({ localityLbSetting: { enabled: true, ...(failover ? { failover } : {}) } });
  const cases: { name: string; failover?: { from: string; to: string }[]; order: string[] }[] = [
    { name: 'no failover: every other region alike', order: ['us-east/a', 'us-east/b', 'eu-west/a|us-west/a'] },
    { name: 'failover to us-west first', failover: [{ from: 'us-east', to: 'us-west' }], order: ['us-east/a', 'us-east/b', 'us-west/a', 'eu-west/a'] },
    {
      name: 'two failover regions keep their order',
      failover: [{ from: 'us-east', to: 'eu-west' }, { from: 'us-east', to: 'us-west' }],
      order: ['us-east/a', 'us-east/b', 'eu-west/a', 'us-west/a'],
    },
    { name: 'a rule for another origin region changes nothing', failover: [{ from: 'eu-west', to: 'us-west' }], order: ['us-east/a', 'us-east/b', 'eu-west/a|us-west/a'] },
  ];
  const groups = ['us-east/a', 'us-east/b', 'us-west/a', 'eu-west/a'];
  for (const c of cases) {
    const plan = localityPlan(lb(c.failover), od, caller)!;
    const prio = new Map<number, string[]>();
    for (const g of groups) {
      const [region, zone] = g.split('/');
      const p = plan.priority({ region, zone });
      prio.set(p, [...(prio.get(p) ?? []), g]);
    }
    const order = [...prio.keys()].sort((a, b) => a - b).map((p) => prio.get(p)!.sort().join('|'));
    assert.deepEqual(order, c.order, c.name);
  }
  // As with proximity failover, Istio needs outlier detection to fail over at all.
  assert.equal(localityPlan(lb([{ from: 'us-east', to: 'us-west' }]), false, caller), undefined);
});
