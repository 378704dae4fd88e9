import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRouteTable, DEFAULT_ROUTE_TIMEOUT_MS } from '../../../src/proxy/route/table.js';
import { selectRoute } from '../../../src/proxy/route/select.js';
import { rewritePath } from '../../../src/proxy/route/headers.js';
import { FAULT_TYPE, ROUTE_TYPE, packAny, unpackAny } from '../../../src/xds/protos.js';
import type { ForwardDecision, RouteDecision } from '../../../src/proxy/route/types.js';
import { req, seeded, vhost } from './helpers.js';

function forward(d: RouteDecision): ForwardDecision {
  assert.equal(d.kind, 'forward', JSON.stringify(d));
  return d as ForwardDecision;
}

function oneRoute(route: object, extraRoute: object = {}, vhExtra: object = {}, rcExtra: object = {}) {
  return compileRouteTable({
    name: 'rc',
    virtual_hosts: [vhost('h', ['*'], [{ name: 'r', match: { prefix: '/api' }, route, ...extraRoute }], vhExtra)],
    ...rcExtra,
  });
}

test('weighted clusters: 10,000 seeded picks stay within 2% of the weights', () => {
  const t = oneRoute({
    weighted_clusters: {
      clusters: [
        { name: 'v1', weight: { value: 70 } },
        { name: 'v2', weight: { value: 20 } },
        { name: 'v3', weight: { value: 10 } },
        { name: 'zero', weight: { value: 0 } },
      ],
    },
  });
  const rnd = seeded(42);
  const counts: Record<string, number> = {};
  for (let i = 0; i < 10_000; i++) {
    const d = forward(selectRoute(t, req('h', '/api'), rnd));
    counts[d.cluster] = (counts[d.cluster] ?? 0) + 1;
  }
  assert.equal(counts.zero, undefined);
  assert.ok(Math.abs(counts.v1 - 7000) < 200, JSON.stringify(counts));
  assert.ok(Math.abs(counts.v2 - 2000) < 200, JSON.stringify(counts));
  assert.ok(Math.abs(counts.v3 - 1000) < 200, JSON.stringify(counts));
});

test('weighted clusters: boundaries of random() map to the first and last cluster', () => {
  const t = oneRoute({ weighted_clusters: { clusters: [{ name: 'a', weight: { value: 1 } }, { name: 'b', weight: { value: 1 } }] } });
  assert.equal(forward(selectRoute(t, req('h', '/api'), () => 0)).cluster, 'a');
  assert.equal(forward(selectRoute(t, req('h', '/api'), () => 0.4999)).cluster, 'a');
  assert.equal(forward(selectRoute(t, req('h', '/api'), () => 0.5)).cluster, 'b');
  assert.equal(forward(selectRoute(t, req('h', '/api'), () => 0.999999)).cluster, 'b');
});

test('weighted clusters all zero: route never matches, warned', () => {
  const t = oneRoute({ weighted_clusters: { clusters: [{ name: 'a', weight: { value: 0 } }] } });
  assert.equal(selectRoute(t, req('h', '/api')).kind, 'no_route');
  assert.match(t.warnings.join(), /no cluster with a positive weight/);
});

test('non-weighted decisions are shared objects (no per-request allocation) and frozen', () => {
  const t = oneRoute({ cluster: 'c' });
  const a = selectRoute(t, req('h', '/api/1'));
  const b = selectRoute(t, req('h', '/api/2'));
  assert.equal(a, b);
  assert.ok(Object.isFrozen(a));
});

test('route action fields decode: timeout, idle, retry, rewrite, mirrors, hash policies', () => {
  const t = oneRoute({
    cluster: 'c',
    timeout: { seconds: '2', nanos: 500_000_000 },
    idle_timeout: { seconds: '30' },
    retry_policy: {
      retry_on: 'connect-failure, 5xx ,retriable-status-codes',
      num_retries: { value: 3 },
      per_try_timeout: { nanos: 250_000_000 },
      retry_back_off: { base_interval: { nanos: 10_000_000 } },
      retriable_status_codes: [503, 504],
    },
    prefix_rewrite: '/v2',
    host_rewrite_literal: 'backend.internal',
    request_mirror_policies: [
      { cluster: 'shadow', runtime_fraction: { default_value: { numerator: 5, denominator: 'TEN_THOUSAND' } } },
      { cluster: 'all' },
    ],
    hash_policy: [
      { header: { header_name: 'X-User' } },
      { cookie: { name: 'sid' }, terminal: true },
      { connection_properties: { source_ip: true } },
      { query_parameter: { name: 'u' } },
      { filter_state: { key: 'k' } },
    ],
  });
  const d = forward(selectRoute(t, req('h', '/api/x')));
  assert.equal(d.timeoutMs, 2500);
  assert.equal(d.idleTimeoutMs, 30_000);
  assert.deepEqual([...(d.retry?.retryOn ?? [])], ['connect-failure', '5xx', 'retriable-status-codes']);
  assert.deepEqual(
    { ...d.retry, retryOn: undefined },
    { retryOn: undefined, numRetries: 3, perTryTimeoutMs: 250, backoffBaseMs: 10, backoffMaxMs: 100, retriableStatusCodes: [503, 504] },
  );
  assert.deepEqual(d.rewrite?.prefix, { from: '/api', to: '/v2' });
  assert.equal(d.rewrite?.host, 'backend.internal');
  assert.equal(rewritePath('/api/x', d.rewrite), '/v2/x');
  assert.deepEqual(d.mirrors, [
    { cluster: 'shadow', fraction: 0.0005 },
    { cluster: 'all', fraction: 1 },
  ]);
  assert.deepEqual(d.hashPolicies, [
    { kind: 'header', name: 'x-user', terminal: false },
    { kind: 'cookie', name: 'sid', terminal: true },
    { kind: 'source_ip', terminal: false },
    { kind: 'query_parameter', name: 'u', terminal: false },
  ]);
  assert.match(t.warnings.join(), /hash policy 'filter_state' is not supported/);
});

test('timeout defaults: unset is Envoy 15s, explicit 0s is none; retry defaults', () => {
  assert.equal(forward(selectRoute(oneRoute({ cluster: 'c' }), req('h', '/api'))).timeoutMs, DEFAULT_ROUTE_TIMEOUT_MS);
  assert.equal(forward(selectRoute(oneRoute({ cluster: 'c', timeout: {} }), req('h', '/api'))).timeoutMs, 0);
  const r = forward(selectRoute(oneRoute({ cluster: 'c', retry_policy: { retry_on: '5xx' } }), req('h', '/api'))).retry;
  assert.equal(r?.numRetries, 1);
  assert.equal(r?.backoffBaseMs, 25);
  assert.equal(r?.backoffMaxMs, 250);
  assert.equal(r?.perTryTimeoutMs, 0);
});

test('virtual host retry policy applies when the route has none', () => {
  const t = oneRoute({ cluster: 'c' }, {}, { retry_policy: { retry_on: 'reset', num_retries: { value: 2 } } });
  assert.equal(forward(selectRoute(t, req('h', '/api'))).retry?.numRetries, 2);
});

test('path rewrites', () => {
  const table: [object, object, string, string][] = [
    [{ prefix: '/api' }, { prefix_rewrite: '/' }, '/api/x', '//x'], // as in Envoy: match '/api/' to avoid it
    [{ prefix: '/api/' }, { prefix_rewrite: '/' }, '/api/x', '/x'],
    [{ prefix: '/API', case_sensitive: { value: false } }, { prefix_rewrite: '/v2' }, '/api/x', '/v2/x'],
    [{ path: '/old' }, { prefix_rewrite: '/new' }, '/old', '/new'],
    [{ prefix: '/' }, { regex_rewrite: { pattern: { regex: '^/service/([^/]+)(/.*)$' }, substitution: '\\2/instance/\\1' } }, '/service/foo/v1/api', '/v1/api/instance/foo'],
    [{ prefix: '/' }, { regex_rewrite: { pattern: { regex: 'a' }, substitution: 'b' } }, '/aaa', '/bbb'],
    [{ prefix: '/' }, { regex_rewrite: { pattern: { regex: 'x' }, substitution: '$1' } }, '/x', '/$1'],
  ];
  for (const [match, action, path, want] of table) {
    const t = compileRouteTable({ virtual_hosts: [vhost('h', ['*'], [{ name: 'r', match, route: { cluster: 'c', ...action } }])] });
    const d = forward(selectRoute(t, req('h', path)));
    assert.equal(rewritePath(path, d.rewrite), want, JSON.stringify(action));
  }
});

test('direct response: status and inline body, shared', () => {
  const t = compileRouteTable({
    virtual_hosts: [
      vhost('h', ['*'], [
        { name: 'd', match: { path: '/healthz' }, direct_response: { status: 200, body: { inline_string: 'ok' } } },
        { name: 'b', match: { path: '/bytes' }, direct_response: { status: 404, body: { inline_bytes: Buffer.from('gone') } } },
        { name: 'e', match: { path: '/empty' }, direct_response: { status: 503 } },
        { name: 'bad', match: { path: '/bad' }, direct_response: { status: 700 } },
      ]),
    ],
  });
  const d = selectRoute(t, req('h', '/healthz'));
  assert.deepEqual({ ...d, responseHeaders: undefined }, { kind: 'direct', routeName: 'd', status: 200, body: 'ok', responseHeaders: undefined });
  assert.equal(selectRoute(t, req('h', '/healthz')), d);
  const b = selectRoute(t, req('h', '/bytes'));
  assert.equal(b.kind === 'direct' && b.body, 'gone');
  const e = selectRoute(t, req('h', '/empty'));
  assert.equal(e.kind === 'direct' && e.status, 503);
  assert.equal(e.kind === 'direct' && e.body, undefined);
  assert.equal(selectRoute(t, req('h', '/bad')).kind, 'no_route');
  assert.match(t.warnings.join(), /route bad: direct_response status 700 is not a valid HTTP status; the route never matches/);
});

test('fault: percentages decode from a packed HTTPFault', () => {
  const cases: [object, object][] = [
    [
      { delay: { fixed_delay: { seconds: 1, nanos: 500_000_000 }, percentage: { numerator: 50 } } },
      { delay: { ms: 1500, probability: 0.5 } },
    ],
    [
      { abort: { http_status: 503, percentage: { numerator: 25, denominator: 'TEN_THOUSAND' } } },
      { abort: { httpStatus: 503, probability: 0.0025 } },
    ],
    [
      { abort: { grpc_status: 14, percentage: { numerator: 1000, denominator: 'MILLION' } } },
      { abort: { grpcStatus: 14, probability: 0.001 } },
    ],
    [
      { abort: { http_status: 500, percentage: { numerator: 150 } } }, // clamped
      { abort: { httpStatus: 500, probability: 1 } },
    ],
    [{ delay: { fixed_delay: { seconds: 1 }, percentage: { numerator: 1 } }, abort: { http_status: 99, percentage: { numerator: 1 } } }, { delay: { ms: 1000, probability: 0.01 } }],
    [
      {
        delay: { fixed_delay: { nanos: 5_000_000 }, percentage: { numerator: 100 } },
        abort: { http_status: 418, percentage: { numerator: 10 } },
        max_active_faults: { value: 7 },
      },
      { delay: { ms: 5, probability: 1 }, abort: { httpStatus: 418, probability: 0.1 }, maxActiveFaults: 7 },
    ],
  ];
  for (const [fault, want] of cases) {
    const rc = { virtual_hosts: [vhost('h', ['*'], [{ name: 'r', match: { prefix: '/' }, route: { cluster: 'c' }, typed_per_filter_config: { 'envoy.filters.http.fault': packAny(FAULT_TYPE, fault) } }])] };
    const decoded = unpackAny(packAny(ROUTE_TYPE, rc));
    const t = compileRouteTable(decoded);
    assert.deepEqual(t.warnings.filter((x) => !x.includes('not in 200..599')), []);
    assert.deepEqual(forward(selectRoute(t, req('h', '/'))).fault, want);
  }
});

test('fault: already-decoded config, virtual-host level, and wrong type', () => {
  const t = compileRouteTable({
    virtual_hosts: [
      vhost(
        'h',
        ['*'],
        [
          { name: 'inherit', match: { prefix: '/a' }, route: { cluster: 'c' } },
          { name: 'bad', match: { prefix: '/b' }, route: { cluster: 'c' }, typed_per_filter_config: { 'envoy.filters.http.fault': { type_url: 'type.googleapis.com/x.Y', value: Buffer.alloc(0) } } },
        ],
        { typed_per_filter_config: { 'envoy.filters.http.fault': { abort: { http_status: 500, percentage: { numerator: 1 } } } } },
      ),
    ],
  });
  assert.deepEqual(forward(selectRoute(t, req('h', '/a'))).fault, { abort: { httpStatus: 500, probability: 0.01 } });
  assert.equal(forward(selectRoute(t, req('h', '/b'))).fault, undefined);
  assert.match(t.warnings.join(), /route bad: fault filter config ignored: expected/);
});

test('a full RouteConfiguration survives pack/unpack and routes', () => {
  const rc = {
    name: 'outbound|default/productpage',
    virtual_hosts: [
      {
        name: 'reviews.default.svc.cluster.local:9080',
        domains: ['reviews', 'reviews:9080', 'reviews.default.svc.cluster.local', 'reviews.default.svc.cluster.local:9080'],
        routes: [
          {
            name: 'default/reviews#0',
            match: { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] },
            route: { cluster: 'outbound|9080|v2|reviews.default.svc.cluster.local', timeout: { seconds: 0 } },
          },
          {
            name: 'default/reviews#1',
            match: { prefix: '/' },
            route: {
              weighted_clusters: {
                clusters: [
                  { name: 'outbound|9080|v1|reviews.default.svc.cluster.local', weight: { value: 50 } },
                  { name: 'outbound|9080|v3|reviews.default.svc.cluster.local', weight: { value: 50 } },
                ],
              },
            },
          },
        ],
      },
    ],
  };
  const t = compileRouteTable(unpackAny(packAny(ROUTE_TYPE, rc)));
  assert.deepEqual(t.warnings, []);
  const jason = forward(selectRoute(t, req('reviews:9080', '/r', { headers: { 'end-user': 'jason' } })));
  assert.equal(jason.cluster, 'outbound|9080|v2|reviews.default.svc.cluster.local');
  assert.equal(jason.timeoutMs, 0, 'an explicit 0s timeout survives encoding and means none');
  assert.equal(jason.virtualHost, 'reviews.default.svc.cluster.local:9080');
  assert.equal(forward(selectRoute(t, req('reviews', '/r'), () => 0.75)).cluster, 'outbound|9080|v3|reviews.default.svc.cluster.local');
});

test('unsupported route/action fields are ignored with a warning naming them', () => {
  const t = oneRoute({ cluster: 'c', auto_host_rewrite: { value: true }, host_rewrite_specifier: 'auto_host_rewrite', shadow_x: 1 }, { cors_x: {} });
  const w = t.warnings.join('\n');
  assert.match(w, /route field 'auto_host_rewrite' is not supported/);
  assert.match(w, /auto_host_rewrite is not supported; Host left unchanged/);
  assert.match(w, /field 'cors_x' is not supported/);
  assert.equal(selectRoute(t, req('h', '/api')).kind, 'forward');
});

test('cookie hash policy with ttl keeps ttl and path, and warns that generation is not done', () => {
  const t = oneRoute({ cluster: 'c', hash_policy: [{ cookie: { name: 'u', ttl: { seconds: '10' }, path: '/' } }] });
  assert.deepEqual(forward(selectRoute(t, req('h', '/api'))).hashPolicies, [{ kind: 'cookie', name: 'u', terminal: false, ttlMs: 10_000, path: '/' }]);
  assert.match(t.warnings.join(), /generating the cookie \(ttl\) is not supported/);
});
