import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileRouteTable } from '../../../src/proxy/route/table.js';
import { selectRoute } from '../../../src/proxy/route/select.js';

const word = fc.constantFrom('a', 'b', 'reviews', 'api', 'x.y', '');
const path = fc.oneof(fc.constantFrom('/', '/a', '/api/v1', '/A/B', '//', '/%2F'), fc.string({ maxLength: 12 }).map((s) => '/' + s));
const re = fc.constantFrom('.*', '/a|/b', '(', '[0-9]+', '(?P<x>a)', '\\d{2}', '');
const stringMatch = fc.oneof(
  fc.record({ exact: word }),
  fc.record({ prefix: word, ignore_case: fc.boolean() }),
  fc.record({ suffix: word }),
  fc.record({ contains: word }),
  fc.record({ safe_regex: fc.record({ regex: re }) }),
  fc.record({ custom: fc.constant({}) }),
  fc.constant({}),
);
const headerMatcher = fc.record(
  {
    name: fc.constantFrom(':method', ':authority', ':path', 'x-a', 'X-B', ''),
    string_match: stringMatch,
    present_match: fc.boolean(),
    invert_match: fc.boolean(),
    range_match: fc.record({ start: fc.constantFrom('0', '5'), end: fc.constantFrom('10', 'x') }),
    treat_missing_header_as_empty: fc.boolean(),
  },
  { requiredKeys: [] },
);
const match = fc.record(
  {
    prefix: path,
    path,
    safe_regex: fc.record({ regex: re }),
    path_separated_prefix: path,
    case_sensitive: fc.oneof(fc.record({ value: fc.boolean() }), fc.constant({})),
    headers: fc.array(headerMatcher, { maxLength: 3 }),
    query_parameters: fc.array(fc.record({ name: word, string_match: stringMatch, present_match: fc.boolean() }, { requiredKeys: [] }), { maxLength: 2 }),
    grpc: fc.constant({}),
    runtime_fraction: fc.record({ default_value: fc.record({ numerator: fc.nat(200), denominator: fc.constantFrom('HUNDRED', 'MILLION', 'BOGUS') }) }),
    tls_context: fc.constant({ presented: { value: true } }),
  },
  { requiredKeys: [] },
);
const action = fc.oneof(
  fc.record({ route: fc.record({ cluster: word, timeout: fc.record({ seconds: fc.constantFrom('1', '0', 'x'), nanos: fc.nat() }), prefix_rewrite: word }, { requiredKeys: [] }) }),
  fc.record({
    route: fc.record({
      weighted_clusters: fc.record({ clusters: fc.array(fc.record({ name: word, weight: fc.record({ value: fc.integer({ min: -1, max: 100 }) }) }), { maxLength: 4 }) }),
    }),
  }),
  fc.record({ redirect: fc.record({ https_redirect: fc.boolean(), host_redirect: word, port_redirect: fc.nat(70000), path_redirect: path, prefix_rewrite: path, strip_query: fc.boolean(), response_code: fc.constantFrom('FOUND', 'BOGUS', 4, 99) }, { requiredKeys: [] }) }),
  fc.record({ direct_response: fc.record({ status: fc.integer({ min: 0, max: 600 }), body: fc.record({ inline_string: fc.string() }) }, { requiredKeys: [] }) }),
  fc.constant({}),
);
const route = fc.tuple(fc.record({ name: word, match }, { requiredKeys: [] }), action).map(([r, a]) => ({ ...r, ...a }));
const vh = fc.record({
  name: word,
  domains: fc.array(fc.constantFrom('*', 'a', 'a:80', '*.y', 'api.*', 'REVIEWS', 'x.y.', '[::1]:80', ''), { maxLength: 4 }),
  routes: fc.array(route, { maxLength: 5 }),
});
const routeConfig = fc.record({ name: word, virtual_hosts: fc.array(vh, { maxLength: 4 }), most_specific_header_mutations_wins: fc.boolean() });
const request = fc.record({
  authority: fc.oneof(fc.constantFrom('a', 'a:80', 'b.x.y', 'api.z', 'REVIEWS.', '[::1]:80', '', ':'), fc.string({ maxLength: 10 })),
  path,
  query: fc.oneof(fc.constantFrom('', 'a=1', 'a', '=', '&&', 'a=%zz'), fc.string({ maxLength: 10 })),
  method: fc.constantFrom('GET', 'POST', 'CONNECT'),
  headers: fc.dictionary(fc.constantFrom('x-a', 'x-b', 'content-type'), fc.oneof(fc.string({ maxLength: 6 }), fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }))),
});

const KINDS = new Set(['forward', 'redirect', 'direct', 'no_route']);

test('property: selectRoute never throws and returns one of the four kinds', () => {
  fc.assert(
    fc.property(routeConfig, fc.array(request, { minLength: 1, maxLength: 4 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (rc, reqs, r) => {
      const table = compileRouteTable(rc);
      for (const q of reqs) {
        const d = selectRoute(table, q, () => r);
        assert.ok(KINDS.has(d.kind), d.kind);
        if (d.kind === 'forward') assert.equal(typeof d.cluster, 'string');
        if (d.kind === 'no_route') assert.ok(d.reason.length > 0);
        if (d.kind === 'direct' || d.kind === 'redirect') assert.ok(d.status >= 100 && d.status <= 599, String(d.status));
      }
    }),
    { numRuns: 300, seed: 1234 },
  );
});

test('property: compileRouteTable never throws on arbitrary junk', () => {
  fc.assert(
    fc.property(fc.anything({ maxDepth: 4 }), fc.anything({ maxDepth: 3 }), (junkVh, junkRoute) => {
      const t = compileRouteTable({ virtual_hosts: [junkVh, { name: 'v', domains: ['*'], routes: [junkRoute, { match: junkRoute, route: junkRoute }] }] } as never);
      selectRoute(t, { authority: 'a', path: '/', query: '', method: 'GET', headers: {} });
    }),
    { numRuns: 200, seed: 99 },
  );
});
