import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRouteTable } from '../../../src/proxy/route/table.js';
import { selectRoute } from '../../../src/proxy/route/select.js';
import { queryParam } from '../../../src/proxy/route/matchers.js';
import type { RouteRequest } from '../../../src/proxy/route/types.js';
import { req, vhost } from './helpers.js';

/** One route with `match`, plus nothing else: 'forward' means it matched. */
function matches(match: object, r: RouteRequest): boolean {
  const t = compileRouteTable({ virtual_hosts: [vhost('h', ['*'], [{ name: 'r', match, route: { cluster: 'c' } }])] });
  assert.deepEqual(t.warnings, []);
  return selectRoute(t, r).kind === 'forward';
}

const H = (headers: Record<string, string | string[]>, extra: Partial<RouteRequest> = {}) => req('h', '/', { headers, ...extra });

const cases: [string, object, RouteRequest, boolean][] = [
  // path specifiers
  ['prefix hit', { prefix: '/api' }, req('h', '/api/v1'), true],
  ['prefix miss', { prefix: '/api' }, req('h', '/ap'), false],
  ['prefix is case-sensitive by default', { prefix: '/API' }, req('h', '/api'), false],
  ['prefix case-insensitive', { prefix: '/API', case_sensitive: { value: false } }, req('h', '/api/x'), true],
  ['path exact', { path: '/a' }, req('h', '/a'), true],
  ['path is not a prefix', { path: '/a' }, req('h', '/a/b'), false],
  ['path case-insensitive', { path: '/A', case_sensitive: { value: false } }, req('h', '/a'), true],
  ['regex full match', { safe_regex: { regex: '/u/[0-9]+' } }, req('h', '/u/42'), true],
  ['regex must match the whole path', { safe_regex: { regex: '/u/[0-9]+' } }, req('h', '/u/42/x'), false],
  ['regex not anchored by the author still full', { safe_regex: { regex: '[0-9]+' } }, req('h', '/12'), false],
  ['regex alternation anchored as a group', { safe_regex: { regex: '/a|/b' } }, req('h', '/b'), true],
  ['regex alternation no partial', { safe_regex: { regex: '/a|/b' } }, req('h', '/bc'), false],
  ['regex ignores case_sensitive', { safe_regex: { regex: '/A' }, case_sensitive: { value: false } }, req('h', '/a'), false],
  ['regex RE2 named group', { safe_regex: { regex: '/(?P<id>[a-z]+)' } }, req('h', '/abc'), true],
  ['regex leading (?i) flag', { safe_regex: { regex: '(?i)/API/.*' } }, req('h', '/api/x'), true],
  ['regex \\A and \\z anchors', { safe_regex: { regex: '\\A/x\\z' } }, req('h', '/x'), true],
  ['regex escaped backslash before z stays literal', { safe_regex: { regex: '/a\\\\z' } }, req('h', '/a\\z'), true],
  ['separated prefix equal', { path_separated_prefix: '/api' }, req('h', '/api'), true],
  ['separated prefix child', { path_separated_prefix: '/api' }, req('h', '/api/x'), true],
  ['separated prefix not a segment', { path_separated_prefix: '/api' }, req('h', '/apix'), false],
  ['query is not part of the path', { path: '/a' }, req('h', '/a', { query: 'x=1' }), true],
  // headers: string_match
  ['header exact', { prefix: '/', headers: [{ name: 'x-v', string_match: { exact: 'v1' } }] }, H({ 'x-v': 'v1' }), true],
  ['header exact miss', { prefix: '/', headers: [{ name: 'x-v', string_match: { exact: 'v1' } }] }, H({ 'x-v': 'v2' }), false],
  ['header exact ignore_case', { prefix: '/', headers: [{ name: 'x-v', string_match: { exact: 'V1', ignore_case: true } }] }, H({ 'x-v': 'v1' }), true],
  ['header name case-insensitive', { prefix: '/', headers: [{ name: 'X-V', string_match: { exact: 'v1' } }] }, H({ 'x-v': 'v1' }), true],
  ['header prefix', { prefix: '/', headers: [{ name: 'x-v', string_match: { prefix: 'v' } }] }, H({ 'x-v': 'v1' }), true],
  ['header suffix', { prefix: '/', headers: [{ name: 'x-v', string_match: { suffix: '1' } }] }, H({ 'x-v': 'v1' }), true],
  ['header suffix miss', { prefix: '/', headers: [{ name: 'x-v', string_match: { suffix: '2' } }] }, H({ 'x-v': 'v1' }), false],
  ['header contains', { prefix: '/', headers: [{ name: 'ua', string_match: { contains: 'Firefox' } }] }, H({ ua: 'Mozilla Firefox/1' }), true],
  ['header regex full', { prefix: '/', headers: [{ name: 'x-n', string_match: { safe_regex: { regex: '\\d{3}' } } }] }, H({ 'x-n': '123' }), true],
  ['header regex full miss', { prefix: '/', headers: [{ name: 'x-n', string_match: { safe_regex: { regex: '\\d{3}' } } }] }, H({ 'x-n': '1234' }), false],
  ['header regex inverted', { prefix: '/', headers: [{ name: 'x-n', string_match: { safe_regex: { regex: '\\d{3}' } }, invert_match: true }] }, H({ 'x-n': '1234' }), true],
  ['header missing fails a value match', { prefix: '/', headers: [{ name: 'x-v', string_match: { exact: 'v1' } }] }, H({}), false],
  ['header missing, inverted value match passes', { prefix: '/', headers: [{ name: 'x-v', string_match: { exact: 'v1' }, invert_match: true }] }, H({}), true],
  ['header missing treated as empty', { prefix: '/', headers: [{ name: 'x-v', string_match: { exact: '' }, treat_missing_header_as_empty: true }] }, H({}), true],
  ['header multiple values joined with ,', { prefix: '/', headers: [{ name: 'x-v', string_match: { exact: 'a,b' } }] }, H({ 'x-v': ['a', 'b'] }), true],
  ['header legacy exact_match', { prefix: '/', headers: [{ name: 'x-v', exact_match: 'v1' }] }, H({ 'x-v': 'v1' }), true],
  ['header legacy prefix_match', { prefix: '/', headers: [{ name: 'x-v', prefix_match: 'v' }] }, H({ 'x-v': 'v1' }), true],
  ['header legacy safe_regex_match', { prefix: '/', headers: [{ name: 'x-v', safe_regex_match: { regex: 'v.' } }] }, H({ 'x-v': 'v1' }), true],
  ['header range', { prefix: '/', headers: [{ name: 'x-n', range_match: { start: '10', end: '20' } }] }, H({ 'x-n': '15' }), true],
  ['header range end exclusive', { prefix: '/', headers: [{ name: 'x-n', range_match: { start: '10', end: '20' } }] }, H({ 'x-n': '20' }), false],
  // presence
  ['present', { prefix: '/', headers: [{ name: 'x-d', present_match: true }] }, H({ 'x-d': '' }), true],
  ['present miss', { prefix: '/', headers: [{ name: 'x-d', present_match: true }] }, H({}), false],
  ['present false = absent', { prefix: '/', headers: [{ name: 'x-d', present_match: false }] }, H({}), true],
  ['present inverted = absent (header absent)', { prefix: '/', headers: [{ name: 'x-d', present_match: true, invert_match: true }] }, H({}), true],
  ['present inverted = absent (header present)', { prefix: '/', headers: [{ name: 'x-d', present_match: true, invert_match: true }] }, H({ 'x-d': '1' }), false],
  ['no specifier means present', { prefix: '/', headers: [{ name: 'x-d' }] }, H({ 'x-d': '1' }), true],
  // pseudo-headers
  [':method', { prefix: '/', headers: [{ name: ':method', string_match: { exact: 'POST' } }] }, req('h', '/', { method: 'POST' }), true],
  [':method miss', { prefix: '/', headers: [{ name: ':method', string_match: { exact: 'POST' } }] }, req('h', '/'), false],
  [':method inverted', { prefix: '/', headers: [{ name: ':method', string_match: { exact: 'POST' }, invert_match: true }] }, req('h', '/'), true],
  [':authority', { prefix: '/', headers: [{ name: ':authority', string_match: { prefix: 'h' } }] }, req('h:80', '/'), true],
  [':scheme of an HTTP/1.1 request is http', { prefix: '/', headers: [{ name: ':scheme', string_match: { exact: 'http' } }] }, H({}), true],
  [':scheme https misses an HTTP/1.1 request', { prefix: '/', headers: [{ name: ':scheme', string_match: { exact: 'https' } }] }, H({}), false],
  [':scheme of an HTTP/2 request', { prefix: '/', headers: [{ name: ':scheme', string_match: { exact: 'https' } }] }, H({ ':scheme': 'https' }), true],
  [':path includes the query', { prefix: '/', headers: [{ name: ':path', string_match: { exact: '/a?b=1' } }] }, req('h', '/a', { query: 'b=1' }), true],
  // query parameters
  ['query exact', { prefix: '/', query_parameters: [{ name: 'v', string_match: { exact: '2' } }] }, req('h', '/', { query: 'a=1&v=2' }), true],
  ['query first value wins', { prefix: '/', query_parameters: [{ name: 'v', string_match: { exact: '2' } }] }, req('h', '/', { query: 'v=1&v=2' }), false],
  ['query decoded', { prefix: '/', query_parameters: [{ name: 'q', string_match: { exact: 'a b/c' } }] }, req('h', '/', { query: 'q=a+b%2Fc' }), true],
  ['query prefix ignore_case', { prefix: '/', query_parameters: [{ name: 'q', string_match: { prefix: 'AB', ignore_case: true } }] }, req('h', '/', { query: 'q=abc' }), true],
  ['query regex', { prefix: '/', query_parameters: [{ name: 'q', string_match: { safe_regex: { regex: '[a-c]+' } } }] }, req('h', '/', { query: 'q=abc' }), true],
  ['query missing', { prefix: '/', query_parameters: [{ name: 'q', string_match: { exact: '' } }] }, req('h', '/', { query: 'qq=' }), false],
  ['query present', { prefix: '/', query_parameters: [{ name: 'debug', present_match: true }] }, req('h', '/', { query: 'x=1&debug' }), true],
  ['query present miss', { prefix: '/', query_parameters: [{ name: 'debug', present_match: true }] }, req('h', '/', { query: 'debugx=1' }), false],
  // grpc and all-of semantics
  ['grpc match', { prefix: '/', grpc: {} }, H({ 'content-type': 'application/grpc+proto' }), true],
  ['grpc match miss', { prefix: '/', grpc: {} }, H({ 'content-type': 'application/json' }), false],
  ['all matchers must hold', { prefix: '/a', headers: [{ name: 'x', present_match: true }], query_parameters: [{ name: 'q', present_match: true }] }, req('h', '/a', { headers: { x: '1' } }), false],
];

for (const [name, match, r, expected] of cases) {
  test(`match: ${name}`, () => assert.equal(matches(match, r), expected));
}

test('unsupported match fields make the route never match, with a warning', () => {
  const t = compileRouteTable({
    virtual_hosts: [
      vhost('h', ['*'], [
        { name: 'tls', match: { prefix: '/', tls_context: { presented: { value: true } } }, route: { cluster: 'never' } },
        { name: 'custom', match: { prefix: '/', headers: [{ name: 'x', string_match: { custom: { name: 'e' } } }] }, route: { cluster: 'never' } },
        { name: 'badre', match: { safe_regex: { regex: '(' } }, route: { cluster: 'never' } },
        { name: 'ungreedy', match: { safe_regex: { regex: '(?U)/.*' } }, route: { cluster: 'never' } },
        { name: 'hdr', match: { prefix: '/' }, route: { cluster_header: 'x-cluster' } },
        { name: 'ok', match: { prefix: '/' }, route: { cluster: 'ok' } },
      ]),
    ],
  });
  const d = selectRoute(t, req('h', '/', { headers: { x: 'y' } }));
  assert.equal(d.kind === 'forward' && d.cluster, 'ok');
  const w = t.warnings.join('\n');
  assert.match(w, /route tls: match field 'tls_context' is not supported; the route never matches/);
  assert.match(w, /route custom: header x: custom string matcher/);
  assert.match(w, /route badre: invalid regex/);
  assert.match(w, /route ungreedy: unsupported regex flag \(\?U\)/);
  assert.match(w, /route hdr: cluster specifier 'cluster_header' is not supported/);
});

test('first match wins, in order', () => {
  const t = compileRouteTable({
    virtual_hosts: [
      vhost('h', ['*'], [
        { name: 'ns/vs#0', match: { prefix: '/api', headers: [{ name: 'x-canary', present_match: true }] }, route: { cluster: 'canary' } },
        { name: 'ns/vs#1', match: { prefix: '/api' }, route: { cluster: 'api' } },
        { name: 'ns/vs#2', match: { prefix: '/api/v2' }, route: { cluster: 'shadowed' } },
        { name: 'ns/vs#3', match: { prefix: '/' }, route: { cluster: 'default' } },
      ]),
    ],
  });
  const table: [RouteRequest, string, string][] = [
    [req('h', '/api/v2', { headers: { 'x-canary': '1' } }), 'canary', 'ns/vs#0'],
    [req('h', '/api/v2'), 'api', 'ns/vs#1'],
    [req('h', '/other'), 'default', 'ns/vs#3'],
  ];
  for (const [r, cluster, routeName] of table) {
    const d = selectRoute(t, r);
    assert.equal(d.kind, 'forward');
    if (d.kind === 'forward') {
      assert.equal(d.cluster, cluster);
      assert.equal(d.routeName, routeName);
      assert.equal(d.virtualHost, 'h');
    }
  }
});

test('no_route names the virtual host and the request', () => {
  const t = compileRouteTable({
    virtual_hosts: [vhost('reviews.default.svc.cluster.local:9080', ['reviews'], [{ name: 'r', match: { path: '/only' }, route: { cluster: 'c' } }])],
  });
  assert.deepEqual(selectRoute(t, req('reviews', '/x')), {
    kind: 'no_route',
    reason: 'no route in reviews.default.svc.cluster.local:9080 matched GET /x',
  });
});

test('queryParam scanning', () => {
  const t: [string, string, string | undefined][] = [
    ['a=1&b=2', 'b', '2'],
    ['a=1&b=2', 'a', '1'],
    ['a=1&b=2', 'c', undefined],
    ['ab=1', 'a', undefined],
    ['a', 'a', ''],
    ['a=', 'a', ''],
    ['&&a=x=y', 'a', 'x=y'],
    ['', 'a', undefined],
    ['a=%zz', 'a', '%zz'],
  ];
  for (const [q, n, v] of t) assert.equal(queryParam(q, n), v, `${q} ${n}`);
});

test('a route with runtime_fraction matches only that share of requests', () => {
  const t = compileRouteTable({
    virtual_hosts: [
      vhost('h', ['*'], [
        { name: 'some', match: { prefix: '/', runtime_fraction: { default_value: { numerator: 25 } } }, route: { cluster: 'some' } },
        { name: 'rest', match: { prefix: '/' }, route: { cluster: 'rest' } },
      ]),
    ],
  });
  let n = 0;
  const seq = [0.1, 0.3, 0.2, 0.9];
  for (let i = 0; i < 4; i++) {
    const d = selectRoute(t, req('h'), () => seq[i]);
    if (d.kind === 'forward' && d.cluster === 'some') n++;
  }
  assert.equal(n, 2);
});

test('literalPrefix is conservative', async () => {
  const { literalPrefix } = await import('../../../src/proxy/route/proto.js');
  const cases: [string, string][] = [
    ['/items/[0-9]+', '/items/'],
    ['/ab?', '/a'],
    ['/ab*c', '/a'],
    ['/ab{2}', '/a'],
    ['/ab+', '/ab'],
    ['/a|/b', ''],
    ['.*', ''],
    ['\\/x', ''],
    ['/plain', '/plain'],
    ['(/a)', ''],
  ];
  for (const [p, want] of cases) assert.equal(literalPrefix(p), want, p);
});
