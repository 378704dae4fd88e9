// HTTPRoute, GRPCRoute and TrafficSplit attached to a service -> RouteConfiguration, and their precedence over VirtualService.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileForProxy } from '../../../src/control/compile/index.js';
import type { Resource } from '../../../src/api/types.js';
import { bookinfo, input, res, svc, trellisProxy, wl } from './fixtures.js';
import { outboundRoutes, routeConfigs, trellisMeta, vhost } from './helpers.js';

const RV = 'reviews.default.svc.cluster.local';
const GW = 'gateway.networking.k8s.io/v1';

function reviewsVhost(resources: Resource[]): any {
  const b = bookinfo(resources);
  b.input.registry.services.push(svc('reviews-v1'), svc('reviews-v2'));
  return vhost(outboundRoutes(compileForProxy(b.input, trellisProxy(b.productpage)), 'default/productpage-v1'), `${RV}:9080`);
}

const httpRoute = (name: string, rules: unknown[], port?: number) =>
  res('HTTPRoute', name, { parentRefs: [{ group: '', kind: 'Service', name: 'reviews', ...(port ? { port } : {}) }], rules }, { apiVersion: GW });

test('HTTPRoute: backendRefs with relative weights to per-version Services; timeouts', () => {
  const vh = reviewsVhost([
    httpRoute('split', [
      { backendRefs: [{ name: 'reviews-v1', port: 9080, weight: 90 }, { name: 'reviews-v2', port: 9080, weight: 10 }], timeouts: { request: '3s' } },
    ]),
  ]);
  const [r] = vh.routes;
  assert.equal(r.name, 'default/split#0');
  assert.deepEqual(r.match, { prefix: '/' });
  assert.deepEqual(r.route.weighted_clusters.clusters, [
    { name: 'outbound|9080||reviews-v1.default.svc.cluster.local', weight: { value: 90 } },
    { name: 'outbound|9080||reviews-v2.default.svc.cluster.local', weight: { value: 10 } },
  ]);
  assert.deepEqual(r.route.timeout, { seconds: 3 });
});

test('HTTPRoute: matches compile to Envoy matchers and sort by Gateway API precedence', () => {
  const vh = reviewsVhost([
    httpRoute('m', [
      { matches: [{ path: { type: 'PathPrefix', value: '/api' } }], backendRefs: [{ name: 'reviews-v1' }] },
      {
        matches: [{ path: { type: 'PathPrefix', value: '/api/v2/' }, headers: [{ name: 'X-Env', value: 'canary' }], queryParams: [{ type: 'RegularExpression', name: 'q', value: 'a.*' }], method: 'GET' }],
        backendRefs: [{ name: 'reviews-v2' }],
      },
      { matches: [{ path: { type: 'Exact', value: '/api/health' } }], backendRefs: [{ name: 'reviews-v2' }] },
      { matches: [{ path: { type: 'RegularExpression', value: '/x/[a-z]+' } }], backendRefs: [{ name: 'reviews-v1' }] },
    ]),
  ]);
  assert.deepEqual(
    vh.routes.map((r: any) => [r.name, r.match.path ?? r.match.prefix ?? r.match.safe_regex?.regex]),
    [
      ['default/m#2', '/api/health'],
      ['default/m#3', '/x/[a-z]+'],
      ['default/m#1', '/api/v2'],
      ['default/m#1', '/api/v2/'],
      ['default/m#0', '/api'],
      ['default/m#0', '/api/'],
    ],
  );
  const v2 = vh.routes[2];
  assert.deepEqual(v2.match.headers, [
    { name: 'x-env', string_match: { exact: 'canary' } },
    { name: ':method', string_match: { exact: 'GET' } },
  ]);
  assert.deepEqual(v2.match.query_parameters, [{ name: 'q', string_match: { safe_regex: { regex: 'a.*' } } }]);
  assert.equal(vh.routes[0].route.cluster, 'outbound|9080||reviews-v2.default.svc.cluster.local');
});

test('HTTPRoute: filters (header modifiers, redirect, URL rewrite, mirror)', () => {
  const vh = reviewsVhost([
    httpRoute('f', [
      {
        matches: [{ path: { type: 'PathPrefix', value: '/old' } }],
        filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', hostname: 'new.example', statusCode: 301, path: { type: 'ReplaceFullPath', replaceFullPath: '/n' } } }],
      },
      {
        filters: [
          { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-s', value: '1' }], add: [{ name: 'x-a', value: '2' }], remove: ['x-r'] } },
          { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x-resp', value: '3' }] } },
          { type: 'URLRewrite', urlRewrite: { hostname: 'rw', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' } } },
          { type: 'RequestMirror', requestMirror: { backendRef: { name: 'reviews-v2', port: 9080 }, percent: 25 } },
        ],
        backendRefs: [{ name: 'reviews-v1', port: 9080 }],
      },
    ]),
  ]);
  const routes = vh.routes;
  assert.deepEqual(routes[0].redirect, { scheme_redirect: 'https', host_redirect: 'new.example', path_redirect: '/n', response_code: 'MOVED_PERMANENTLY' });
  const main = routes.find((r: any) => r.name === 'default/f#1');
  assert.equal(main.route.cluster, 'outbound|9080||reviews-v1.default.svc.cluster.local');
  assert.equal(main.route.host_rewrite_literal, 'rw');
  assert.equal(main.route.prefix_rewrite, '/v2');
  assert.deepEqual(main.route.request_mirror_policies, [
    { cluster: 'outbound|9080||reviews-v2.default.svc.cluster.local', runtime_fraction: { default_value: { numerator: 25, denominator: 'HUNDRED' } } },
  ]);
  assert.deepEqual(main.request_headers_to_add, [
    { header: { key: 'x-s', value: '1' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' },
    { header: { key: 'x-a', value: '2' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' },
  ]);
  assert.deepEqual(main.request_headers_to_remove, ['x-r']);
  assert.deepEqual(main.response_headers_to_add, [{ header: { key: 'x-resp', value: '3' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }]);
});

test('HTTPRoute: no backendRefs -> 500; a parentRef port limits it to that port', () => {
  const vh = reviewsVhost([httpRoute('empty', [{}])]);
  assert.deepEqual(vh.routes[0].direct_response, { status: 500 });
  const other = reviewsVhost([httpRoute('p', [{ backendRefs: [{ name: 'reviews-v1' }] }], 1234)]);
  assert.equal(other.routes[0].name, 'default');
});

test('HTTPRoute wins over a VirtualService for the same host; the choice is recorded on the virtual host', () => {
  const vh = reviewsVhost([
    res('VirtualService', 'reviews', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] }),
    httpRoute('split', [{ backendRefs: [{ name: 'reviews-v2' }] }]),
  ]);
  assert.equal(vh.routes[0].route.cluster, 'outbound|9080||reviews-v2.default.svc.cluster.local');
  const meta = trellisMeta(vh);
  assert.equal(meta.source, 'HTTPRoute default/split');
  assert.deepEqual(meta.ignored, ['VirtualService default/reviews']);
});

test('GRPCRoute: method matches become paths', () => {
  const g = (name: string, matches: unknown[]) =>
    res('GRPCRoute', name, { parentRefs: [{ kind: 'Service', name: 'reviews' }], rules: [{ matches, backendRefs: [{ name: 'reviews-v2' }] }] }, { apiVersion: GW });
  const vh = reviewsVhost([
    g('a', [
      { method: { service: 'pkg.Reviews', method: 'Get' }, headers: [{ name: 'x-t', value: '1' }] },
      { method: { service: 'pkg.Reviews' } },
      { method: { method: 'List' } },
    ]),
  ]);
  const m = vh.routes.map((r: any) => r.match);
  assert.deepEqual(m[0], { path: '/pkg.Reviews/Get', headers: [{ name: 'x-t', string_match: { exact: '1' } }] });
  assert.ok(m.some((x: any) => x.prefix === '/pkg.Reviews/'));
  assert.ok(m.some((x: any) => x.safe_regex?.regex === '/[^/]+/List'));
});

test('TrafficSplit: weights as numbers or quantities split the root service', () => {
  const ts = (backends: unknown[]) =>
    res('TrafficSplit', 'reviews', { service: 'reviews', backends }, { apiVersion: 'split.smi-spec.io/v1alpha4' });
  const a = reviewsVhost([ts([{ service: 'reviews-v1', weight: '900m' }, { service: 'reviews-v2', weight: '100m' }])]);
  assert.equal(a.routes[0].name, 'default/reviews#0');
  assert.deepEqual(a.routes[0].route.weighted_clusters.clusters, [
    { name: 'outbound|9080||reviews-v1.default.svc.cluster.local', weight: { value: 900 } },
    { name: 'outbound|9080||reviews-v2.default.svc.cluster.local', weight: { value: 100 } },
  ]);
  const b = reviewsVhost([ts([{ service: 'reviews-v1', weight: 3 }, { service: 'reviews-v2', weight: 1 }])]);
  assert.deepEqual(b.routes[0].route.weighted_clusters.clusters.map((c: any) => c.weight.value), [3, 1]);
  const c = reviewsVhost([ts([{ service: 'reviews-v1', weight: 0 }, { service: 'reviews-v2', weight: 5 }])]);
  assert.equal(c.routes[0].route.cluster, 'outbound|9080||reviews-v2.default.svc.cluster.local');
});

test('routes referencing other services pull their clusters into the snapshot', () => {
  const s = [svc('reviews'), svc('reviews-v1')];
  const caller = wl('c', { proxy: true, services: [] });
  const snap = compileForProxy(
    input(s, [caller], [httpRoute('x', [{ backendRefs: [{ name: 'reviews-v1' }] }])]),
    trellisProxy(caller),
  );
  assert.ok(snap['type.googleapis.com/envoy.config.cluster.v3.Cluster']['outbound|9080||reviews-v1.default.svc.cluster.local']);
});

test('GAMMA: a consumer route (caller namespace) applies only to its namespace and replaces the producer route there', () => {
  const producer = httpRoute('producer', [{ backendRefs: [{ name: 'reviews-v1' }] }]);
  const consumer = res(
    'HTTPRoute',
    'consumer',
    { parentRefs: [{ kind: 'Service', name: 'reviews', namespace: 'default' }], rules: [{ backendRefs: [{ name: 'reviews-v2', namespace: 'default' }] }] },
    { apiVersion: GW, namespace: 'shop' },
  );
  const b = bookinfo([producer, consumer]);
  b.input.registry.services.push(svc('reviews-v1'), svc('reviews-v2'));
  const clusterFor = (ns: string) => {
    const caller = { ...b.productpage, namespace: ns };
    const rc = outboundRoutes(compileForProxy({ ...b.input }, trellisProxy(caller)), `${ns}/productpage-v1`);
    return vhost(rc, `${RV}:9080`).routes[0].route.cluster;
  };
  assert.equal(clusterFor('shop'), 'outbound|9080||reviews-v2.default.svc.cluster.local');
  assert.equal(clusterFor('default'), 'outbound|9080||reviews-v1.default.svc.cluster.local');
  assert.equal(clusterFor('other'), 'outbound|9080||reviews-v1.default.svc.cluster.local');
});
