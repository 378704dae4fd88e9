// Inbound policy without sockets: request facts from tables, chain parsing of http_filters, policy building and caching.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { callerKey, clientIp, policyHost, validMethod } from '../../src/proxy/inbound-policy/request.js';
import { InboundPolicies } from '../../src/proxy/inbound-policy/policy.js';
import { parseListener } from '../../src/proxy/config/parse.js';
import { currentChain } from '../../src/proxy/http/inbound.js';
import type { InboundChain, ListenerConfig } from '../../src/proxy/config/types.js';
import { HCM_TYPE, JWT_AUTHN_TYPE, LISTENER_TYPE, LOCAL_RATELIMIT_TYPE, RBAC_TYPE, ROUTER_TYPE, packAny, unpackAny } from '../../src/xds/protos.js';
import { objectToStruct } from '../../src/proxy/config/struct.js';

test('methods: uppercase RFC 9110 tokens only (table)', () => {
  const rows: [string, boolean][] = [
    ['GET', true], ['POST', true], ['PROPFIND', true], ['M-SEARCH', true], ['X_CUSTOM', true],
    ['get', false], ['Get', false], ['', false], ['GET ', false], ['G\u00c9T', false], ['GET/1', false], ['A'.repeat(33), false],
  ];
  for (const [m, ok] of rows) assert.equal(validMethod(m), ok, JSON.stringify(m));
});

test('host as authorization compares it: lowercase, no port, no trailing dot (table)', () => {
  const rows: [string, string][] = [
    ['Admin.Example.COM', 'admin.example.com'],
    ['admin.example.com.', 'admin.example.com'],
    ['admin.example.com.:8080', 'admin.example.com'],
    ['admin.example.com:80', 'admin.example.com'],
    ['[::1]:8080', '[::1]'],
    ['[::1]', '[::1]'],
    ['  b  ', 'b'],
    ['', ''],
  ];
  for (const [raw, want] of rows) assert.equal(policyHost(raw), want, raw);
});

test('client IP and rate-limit caller key', () => {
  assert.equal(clientIp('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(clientIp('::1'), '::1');
  assert.equal(clientIp(undefined), '');
  assert.equal(callerKey('spiffe://cluster.local/ns/default/sa/a', '10.0.0.1'), 'spiffe://cluster.local/ns/default/sa/a');
  assert.equal(callerKey(undefined, '10.0.0.1'), '10.0.0.1');
  assert.equal(callerKey(undefined, ''), 'unauthenticated');
});

type Obj = Record<string, any>;
const router = { name: 'envoy.filters.http.router', typed_config: packAny(ROUTER_TYPE, {}) };
const rbacDenyAdmin = {
  name: 'envoy.filters.http.rbac',
  typed_config: packAny(RBAC_TYPE, {
    rules: { action: 'DENY', policies: { 'ns[default]-policy[p]-rule[0]': { permissions: [{ url_path: { path: { exact: '/admin' } } }], principals: [{ any: true }] } } },
  }),
};
const limit = (n: number) => ({
  name: 'envoy.filters.http.local_ratelimit',
  typed_config: packAny(LOCAL_RATELIMIT_TYPE, {
    stat_prefix: 'ratelimit|default/limit',
    token_bucket: { max_tokens: n, tokens_per_fill: { value: n }, fill_interval: { seconds: 1 } },
    filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
    filter_enforced: { default_value: { numerator: 100, denominator: 'HUNDRED' } },
  }),
});

function listener(httpFilters: Obj[], hcmExtra: Obj = {}): ListenerConfig {
  const hcm = {
    stat_prefix: 'x',
    route_config: { name: 'x', virtual_hosts: [{ name: 'x', domains: ['*'], routes: [{ name: 'inbound', match: { prefix: '/' }, route: { cluster: 'inbound|8080|default/b' } }] }] },
    http_filters: [...httpFilters, router],
    ...hcmExtra,
  };
  const l = {
    name: 'inbound|default/b',
    address: { socket_address: { address: '127.0.0.1', port_value: 15006 } },
    metadata: { filter_metadata: { trellis: objectToStruct({ workload: 'default/b', direction: 'inbound' }) } },
    filter_chains: [
      {
        filter_chain_match: { destination_port: { value: 8080 }, transport_protocol: 'raw_buffer' },
        filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: packAny(HCM_TYPE, hcm) }],
        metadata: { filter_metadata: { trellis: objectToStruct({ mtls: 'PERMISSIVE', decidedBy: 'default', protocol: 'HTTP' }) } },
      },
    ],
  };
  return parseListener(unpackAny(packAny(LISTENER_TYPE, l)));
}

const quiet = { workload: 'default/b', log: () => {} };

test('parsing keeps the inbound http_filters packed (router dropped), the route name and the escaped-slash action', () => {
  const c = listener([rbacDenyAdmin, limit(5)], { path_with_escaped_slashes_action: 'KEEP_UNCHANGED' }).chains[0];
  assert.deepEqual(c.httpFilters, [RBAC_TYPE, LOCAL_RATELIMIT_TYPE]);
  assert.deepEqual(c.httpFilterConfigs!.map((f) => f.name), ['envoy.filters.http.rbac', 'envoy.filters.http.local_ratelimit']);
  assert.equal(c.routeName, 'inbound');
  assert.equal(c.escapedSlashes, 'keep');
  assert.equal(listener([], { path_with_escaped_slashes_action: 'UNESCAPE_AND_FORWARD' }).chains[0].escapedSlashes, 'decode-and-merge');
  assert.equal(listener([]).chains[0].escapedSlashes, undefined);
  assert.deepEqual(listener([]).chains[0].httpFilters, []);
});

test('policies: built once per chain; limiter and verifier shared by identical content across pushes, not across workloads', () => {
  const pols = new InboundPolicies(quiet);
  const c1 = listener([rbacDenyAdmin, limit(5)]).chains[0];
  const c2 = listener([rbacDenyAdmin, limit(5)]).chains[0];
  const p1 = pols.forChain(c1);
  assert.equal(pols.forChain(c1), p1);
  const p2 = pols.forChain(c2);
  assert.notEqual(p2, p1);
  assert.ok(p1.limiter);
  assert.equal(p2.limiter, p1.limiter, 'an identical push keeps the buckets');
  assert.equal(p2.security, p1.security);
  assert.equal(p1.security.engine.stages.length, 1);
  assert.equal(p1.denyAll, undefined);
  const p3 = pols.forChain(listener([rbacDenyAdmin, limit(6)]).chains[0]);
  assert.notEqual(p3.limiter, p1.limiter);
  const other = new InboundPolicies({ ...quiet, workload: 'default/c' }).forChain(c1);
  assert.notEqual(other.limiter, p1.limiter);
  // Retain forgets what current chains no longer use.
  assert.equal(pols.limiterCount(), 2);
  pols.retain([c1]);
  assert.equal(pols.limiterCount(), 1);
  assert.equal(pols.forChain(listener([rbacDenyAdmin, limit(5)]).chains[0]).limiter, p1.limiter);
});

test('policies fail closed: unknown non-optional filters, undecodable rate limits; optional and disabled ones are skipped', () => {
  const pols = new InboundPolicies(quiet);
  const unknown = { name: 'ext', typed_config: { type_url: 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz', value: Buffer.alloc(0) } };
  assert.match(pols.forChain(listener([unknown]).chains[0]).denyAll ?? '', /ext_authz.*not supported/);
  assert.equal(pols.forChain(listener([{ ...unknown, is_optional: true }]).chains[0]).denyAll, undefined);
  assert.equal(pols.forChain(listener([{ ...unknown, disabled: true }]).chains[0]).denyAll, undefined);
  const badLimit = { name: 'envoy.filters.http.local_ratelimit', typed_config: { type_url: LOCAL_RATELIMIT_TYPE, value: Buffer.from([0x0a, 0xff, 0xff]) } };
  assert.match(pols.forChain(listener([badLimit]).chains[0]).denyAll ?? '', /cannot be decoded/);
  // Undecodable RBAC is the authz module's deny-all stage, not a proxy-level refusal.
  const badRbac = { name: 'envoy.filters.http.rbac', typed_config: { type_url: RBAC_TYPE, value: Buffer.from([0x0a, 0xff, 0xff]) } };
  const p = pols.forChain(listener([badRbac]).chains[0]);
  assert.ok(p.security.errors.length > 0);
  assert.ok(p.problems.some((x) => /denying every request/.test(x)));
});

test('JWT output headers are what the hygiene layer strips', () => {
  const jwt = {
    name: 'envoy.filters.http.jwt_authn',
    typed_config: packAny(JWT_AUTHN_TYPE, {
      providers: { 'origins-0': { issuer: 'https://i', local_jwks: { inline_string: '{"keys":[]}' }, forward_payload_header: 'x-jwt-payload', claim_to_headers: [{ header_name: 'x-sub', claim_name: 'sub' }] } },
    }),
  };
  const p = new InboundPolicies(quiet).forChain(listener([jwt]).chains[0]);
  assert.deepEqual([...p.stripHeaders].sort(), ['x-jwt-payload', 'x-sub']);
});

test('a request on an open connection answers to the newest chain for its port and transport', () => {
  const chain = (port: number, transport: InboundChain['transport']): InboundChain => ({ destinationPort: port, transport, mtls: 'PERMISSIVE', decidedBy: 'default', protocol: 'HTTP', cluster: `inbound|${port}|default/b`, alpn: [], httpFilters: [] });
  const old = chain(8080, 'tls');
  const l = (chains: InboundChain[]): ListenerConfig => ({ name: 'inbound|default/b', address: '127.0.0.1', port: 0, direction: 'inbound', workload: 'default/b', kind: 'inbound', chains });
  assert.equal(currentChain(l([old]), old, true), old);
  const repl = chain(8080, 'tls');
  assert.equal(currentChain(l([chain(9090, 'tls'), repl]), old, true), repl);
  const plainOld = chain(8080, 'raw_buffer');
  assert.equal(currentChain(l([repl]), plainOld, false), undefined, 'STRICT now: plaintext no longer accepted');
  assert.equal(currentChain(l([chain(9090, 'tls')]), old, true), undefined, 'port removed');
});
