// VirtualService -> RouteConfiguration: each routing feature compiles to the Envoy fields an Istio user expects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileForProxy } from '../../../src/control/compile/index.js';
import { FAULT_TYPE } from '../../../src/xds/protos.js';
import { bookinfo, res, trellisProxy } from './fixtures.js';
import { outboundRoutes, routeConfigs, trellisMeta, unpack, vhost } from './helpers.js';

const RV = 'reviews.default.svc.cluster.local';

/** Routes of the reviews:9080 virtual host as productpage (or `caller`) sees them. */
function reviewsRoutes(http: unknown[], extra: unknown[] = [], caller: 'productpage' | 'ratings' = 'productpage'): any[] {
  const b = bookinfo([res('VirtualService', 'reviews', { hosts: ['reviews'], http }), ...(extra as never[])]);
  const w = caller === 'productpage' ? b.productpage : { ...b.ratings, proxy: { id: 'p', inboundPort: 15006, outboundPort: 15001 } };
  const snap = compileForProxy(b.input, trellisProxy(w));
  return vhost(outboundRoutes(snap, `default/${w.name}`), `${RV}:9080`).routes;
}

const cases: { name: string; http: unknown[]; check: (routes: any[]) => void }[] = [
  {
    name: 'uri exact / prefix / regex and ignoreUriCase',
    http: [
      { match: [{ uri: { exact: '/a' } }, { uri: { prefix: '/b' }, ignoreUriCase: true }, { uri: { regex: '/c/[0-9]+' } }], route: [{ destination: { host: 'reviews' } }] },
    ],
    check: (r) => {
      assert.equal(r.length, 3, 'several match blocks OR: one Envoy route each, same action');
      assert.deepEqual(r[0].match, { path: '/a' });
      assert.deepEqual(r[1].match, { prefix: '/b', case_sensitive: { value: false } });
      assert.deepEqual(r[2].match, { safe_regex: { regex: '/c/[0-9]+' } });
      for (const x of r) assert.equal(x.route.cluster, `outbound|9080||${RV}`);
      assert.equal(r[0].name, 'default/reviews#0');
    },
  },
  {
    name: 'headers, withoutHeaders, method, authority, queryParams AND together',
    http: [
      {
        match: [
          {
            headers: { 'End-User': { exact: 'jason' }, 'x-p': { prefix: 'a' }, 'x-r': { regex: 'b.*' } },
            withoutHeaders: { 'x-no': { exact: '1' }, 'x-absent': {} },
            method: { exact: 'POST' },
            authority: { prefix: 'reviews' },
            queryParams: { q: { exact: 'v' }, present: {} },
          },
        ],
        route: [{ destination: { host: 'reviews' } }],
      },
    ],
    check: ([r]) => {
      assert.deepEqual(r.match.headers, [
        { name: 'end-user', string_match: { exact: 'jason' } },
        { name: 'x-p', string_match: { prefix: 'a' } },
        { name: 'x-r', string_match: { safe_regex: { regex: 'b.*' } } },
        { name: 'x-no', string_match: { exact: '1' }, invert_match: true },
        { name: 'x-absent', present_match: true, invert_match: true },
        { name: ':method', string_match: { exact: 'POST' } },
        { name: ':authority', string_match: { prefix: 'reviews' } },
      ]);
      assert.deepEqual(r.match.query_parameters, [
        { name: 'q', string_match: { exact: 'v' } },
        { name: 'present', present_match: true },
      ]);
      assert.deepEqual(r.match.prefix, '/');
    },
  },
  {
    name: 'weights -> weighted_clusters with subsets; destination headers per cluster',
    http: [
      {
        route: [
          { destination: { host: 'reviews', subset: 'v1' }, weight: 75 },
          { destination: { host: 'reviews', subset: 'v2' }, weight: 25, headers: { request: { set: { 'x-v': '2' } } } },
          { destination: { host: 'reviews', subset: 'v3' }, weight: 0 },
        ],
      },
    ],
    check: ([r]) => {
      assert.deepEqual(r.route.weighted_clusters.clusters, [
        { name: `outbound|9080|v1|${RV}`, weight: { value: 75 } },
        {
          name: `outbound|9080|v2|${RV}`,
          weight: { value: 25 },
          request_headers_to_add: [{ header: { key: 'x-v', value: '2' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
        },
      ]);
    },
  },
  {
    name: 'timeout default is explicit none; configured timeout and retries',
    http: [
      { match: [{ uri: { prefix: '/t' } }], route: [{ destination: { host: 'reviews' } }], timeout: '2.5s', retries: { attempts: 2, perTryTimeout: '100ms', retryOn: 'gateway-error,503' } },
      { route: [{ destination: { host: 'reviews' } }], retries: { attempts: 0 } },
    ],
    check: ([a, b]) => {
      assert.deepEqual(a.route.timeout, { seconds: 2, nanos: 500_000_000 });
      assert.deepEqual(a.route.retry_policy, {
        retry_on: 'gateway-error,retriable-status-codes',
        num_retries: { value: 2 },
        retry_back_off: { base_interval: { seconds: 0, nanos: 25_000_000 }, max_interval: { seconds: 0, nanos: 250_000_000 } },
        per_try_timeout: { seconds: 0, nanos: 100_000_000 },
        retriable_status_codes: [503],
      });
      assert.deepEqual(b.route.timeout, { seconds: 0 });
      assert.equal(b.route.retry_policy, undefined, 'attempts: 0 means no retries, and none are implied');
    },
  },
  {
    name: 'fault delay with fractional percentage and grpc abort',
    http: [
      {
        route: [{ destination: { host: 'reviews' } }],
        fault: { delay: { fixedDelay: '5s', percentage: { value: 0.1 } }, abort: { grpcStatus: 'UNAVAILABLE', percentage: { value: 50 } } },
      },
    ],
    check: ([r]) => {
      const any = r.typed_per_filter_config['envoy.filters.http.fault'];
      assert.equal(any.type_url, FAULT_TYPE);
      const f = unpack(any);
      assert.deepEqual(f.delay.fixed_delay, { seconds: '5' });
      assert.deepEqual(f.delay.percentage, { numerator: 1000, denominator: 'MILLION' });
      assert.equal(f.abort.grpc_status, 14);
      assert.deepEqual(f.abort.percentage, { numerator: 50, denominator: 'HUNDRED' });
    },
  },
  {
    name: 'http abort defaults to 100%',
    http: [{ route: [{ destination: { host: 'reviews' } }], fault: { abort: { httpStatus: 418 } } }],
    check: ([r]) => {
      const f = unpack(r.typed_per_filter_config['envoy.filters.http.fault']);
      assert.equal(f.abort.http_status, 418);
      assert.deepEqual(f.abort.percentage, { numerator: 100, denominator: 'HUNDRED' });
    },
  },
  {
    name: 'mirror with percentage, rewrite, route headers',
    http: [
      {
        route: [{ destination: { host: 'reviews', subset: 'v1' } }],
        mirror: { host: 'reviews', subset: 'v2' },
        mirrorPercentage: { value: 12.5 },
        rewrite: { uri: '/v1/', authority: 'internal' },
        headers: { request: { add: { 'x-a': '1' }, remove: ['x-b'] }, response: { set: { 'x-c': '2' }, remove: ['server'] } },
      },
    ],
    check: ([r]) => {
      assert.deepEqual(r.route.request_mirror_policies, [
        { cluster: `outbound|9080|v2|${RV}`, runtime_fraction: { default_value: { numerator: 125000, denominator: 'MILLION' } } },
      ]);
      assert.equal(r.route.prefix_rewrite, '/v1/');
      assert.equal(r.route.host_rewrite_literal, 'internal');
      assert.deepEqual(r.request_headers_to_add, [{ header: { key: 'x-a', value: '1' }, append_action: 'APPEND_IF_EXISTS_OR_ADD' }]);
      assert.deepEqual(r.request_headers_to_remove, ['x-b']);
      assert.deepEqual(r.response_headers_to_add, [{ header: { key: 'x-c', value: '2' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }]);
      assert.deepEqual(r.response_headers_to_remove, ['server']);
    },
  },
  {
    name: 'redirect and directResponse',
    http: [
      { match: [{ uri: { exact: '/r' } }], redirect: { uri: '/new', authority: 'x', redirectCode: 308 } },
      { directResponse: { status: 503, body: { string: 'down' } } },
    ],
    check: ([a, b]) => {
      assert.deepEqual(a.redirect, { path_redirect: '/new', host_redirect: 'x', response_code: 'PERMANENT_REDIRECT' });
      assert.equal(a.route, undefined);
      assert.deepEqual(b.direct_response, { status: 503, body: { inline_string: 'down' } });
    },
  },
  {
    name: 'sourceLabels: a route for another caller is left out; match port filters',
    http: [
      { match: [{ sourceLabels: { app: 'ratings' } }], route: [{ destination: { host: 'reviews', subset: 'v3' } }] },
      { match: [{ sourceLabels: { app: 'productpage' }, uri: { prefix: '/pp' } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
      { match: [{ port: 1234 }], route: [{ destination: { host: 'reviews', subset: 'v3' } }] },
      { route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
    ],
    check: (r) => {
      assert.deepEqual(
        r.map((x) => [x.name, x.route.cluster]),
        [
          ['default/reviews#1', `outbound|9080|v2|${RV}`],
          ['default/reviews#3', `outbound|9080|v1|${RV}`],
        ],
      );
    },
  },
  {
    name: 'consistent hash DestinationRule -> route hash_policy',
    http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }],
    check: ([r]) => assert.deepEqual(r.route.hash_policy, [{ header: { header_name: 'x-user' } }]),
  },
];

for (const c of cases) {
  test(`VirtualService: ${c.name}`, () => {
    const dr = res('DestinationRule', 'reviews', {
      host: 'reviews',
      trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } },
      subsets: [{ name: 'v1', labels: { version: 'v1' } }],
    });
    c.check(reviewsRoutes(c.http, c.name.startsWith('consistent') ? [dr] : []));
  });
}

test('VirtualService: sourceLabels routes differ per caller workload', () => {
  const http = [{ match: [{ sourceLabels: { app: 'ratings' } }], route: [{ destination: { host: 'reviews', subset: 'v3' } }] }];
  assert.equal(reviewsRoutes(http, [], 'ratings').length, 1);
  assert.equal(reviewsRoutes(http, [], 'productpage').length, 0);
});

test('VirtualService: gateway-only VirtualServices do not apply to the mesh; virtual host names its source', () => {
  const b = bookinfo([
    res('VirtualService', 'edge', { hosts: ['reviews'], gateways: ['ingress'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v9' } }] }] }),
  ]);
  const vh = vhost(outboundRoutes(compileForProxy(b.input, trellisProxy(b.productpage)), 'default/productpage-v1'), `${RV}:9080`);
  assert.equal(vh.routes[0].name, 'default');
  assert.equal(vh.routes[0].route.cluster, `outbound|9080||${RV}`);
  assert.deepEqual(trellisMeta(vh), {}, 'nothing configures it: no metadata, which means source "default"');
});

test('VirtualService: a destination in another namespace resolves from the VirtualService namespace', () => {
  const routes = reviewsRoutes([{ route: [{ destination: { host: 'ratings.default.svc.cluster.local', port: { number: 9080 } } }] }]);
  assert.equal(routes[0].route.cluster, 'outbound|9080||ratings.default.svc.cluster.local');
});

test('route names: a rule name (and a match name) replace the index, as in Istio', async () => {
  const { ruleName } = await import('../../../src/control/compile/vs-routes.js');
  const cases: [string | undefined, number, string | undefined, string][] = [
    [undefined, 0, undefined, 'default/reviews#0'],
    ['jason', 0, undefined, 'default/reviews#jason'],
    ['jason', 3, 'by-header', 'default/reviews#jason.by-header'],
    [undefined, 2, 'm', 'default/reviews#2.m'],
    ['', 1, '', 'default/reviews#1'],
  ];
  for (const [name, i, match, want] of cases) assert.equal(ruleName('default/reviews', name, i, match), want);
});
