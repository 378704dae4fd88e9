// AuthorizationPolicy semantics from Istio's documentation, each checked through compile -> Any -> proxy evaluation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthzRequest } from '../../../src/proxy/authz/types.js';
import { MESH, type PolicyInput, pipeline, workload } from './helpers.js';

interface Case {
  req: Partial<AuthzRequest>;
  allowed: boolean;
  decidedBy?: string;
}
interface Row {
  name: string;
  policies: PolicyInput[];
  cases: Case[];
  warns?: RegExp;
}

const k = (name: string, rule = 0, ns = 'default') => `ns[${ns}]-policy[${name}]-rule[${rule}]`;
const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep';
const jwt = (payload: Record<string, unknown>) => ({
  payload,
  principal: `${String(payload.iss)}/${String(payload.sub)}`,
});

const ROWS: Row[] = [
  { name: 'a workload with no policy is allowed', policies: [], cases: [{ req: {}, allowed: true }] },
  {
    name: 'allow-nothing: spec {} denies everything',
    policies: [{ name: 'allow-nothing', spec: {} }],
    cases: [{ req: {}, allowed: false }, { req: { path: '/x', principal: undefined }, allowed: false }],
  },
  {
    name: 'ALLOW with empty rules list matches nothing',
    policies: [{ name: 'empty', spec: { action: 'ALLOW', rules: [] } }],
    cases: [{ req: {}, allowed: false }],
  },
  {
    name: 'deny-all: DENY with rules [{}]',
    policies: [{ name: 'deny-all', spec: { action: 'DENY', rules: [{}] } }],
    cases: [{ req: {}, allowed: false, decidedBy: k('deny-all') }],
  },
  {
    name: 'DENY with no rules denies nothing',
    policies: [{ name: 'deny-none', spec: { action: 'DENY' } }],
    cases: [{ req: {}, allowed: true }],
  },
  {
    name: 'allow-all: rules [{}]',
    policies: [{ name: 'allow-all', spec: { rules: [{}] } }],
    cases: [{ req: { principal: undefined, path: '/anything' }, allowed: true, decidedBy: k('allow-all') }],
  },
  {
    name: 'DENY is evaluated before ALLOW',
    policies: [
      { name: 'allow-all', spec: { rules: [{}] } },
      { name: 'deny-admin', spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] } },
    ],
    cases: [
      { req: { path: '/admin' }, allowed: false, decidedBy: k('deny-admin') },
      { req: { path: '/' }, allowed: true, decidedBy: k('allow-all') },
    ],
  },
  {
    name: 'principals are compared literally (dots are not wildcards), with spiffe:// prefix',
    policies: [{ name: 'p', spec: { rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'] } }] }] } }],
    cases: [
      { req: { principal: SLEEP }, allowed: true, decidedBy: k('p') },
      { req: { principal: 'spiffe://clusterXlocal/ns/default/sa/sleep' }, allowed: false },
      { req: { principal: 'spiffe://cluster.local/ns/default/sa/sleep2' }, allowed: false },
      { req: { principal: 'cluster.local/ns/default/sa/sleep' }, allowed: false },
      { req: { principal: undefined }, allowed: false },
    ],
  },
  {
    name: 'principals prefix, suffix and * (any authenticated)',
    policies: [
      { name: 'pre', spec: { rules: [{ from: [{ source: { principals: ['cluster.local/ns/team-a/*'] } }] }] } },
      { name: 'suf', spec: { rules: [{ from: [{ source: { principals: ['*/sa/robot'] } }] }] } },
      { name: 'any', namespace: 'default', spec: { rules: [{ from: [{ source: { principals: ['*'] } }], to: [{ operation: { paths: ['/any'] } }] }] } },
    ],
    cases: [
      { req: { principal: 'spiffe://cluster.local/ns/team-a/sa/x' }, allowed: true, decidedBy: k('pre') },
      { req: { principal: 'spiffe://other.td/ns/b/sa/robot' }, allowed: true, decidedBy: k('suf') },
      { req: { principal: 'spiffe://cluster.local/ns/team-b/sa/x' }, allowed: false },
      { req: { principal: 'spiffe://cluster.local/ns/team-b/sa/x', path: '/any' }, allowed: true, decidedBy: k('any') },
      { req: { principal: undefined, path: '/any' }, allowed: false },
    ],
  },
  {
    name: 'namespaces match the /ns/<ns>/ segment exactly',
    policies: [{ name: 'ns', spec: { rules: [{ from: [{ source: { namespaces: ['foo', 'a.b'] } }] }] } }],
    cases: [
      { req: { principal: 'spiffe://cluster.local/ns/foo/sa/x' }, allowed: true },
      { req: { principal: 'spiffe://cluster.local/ns/foobar/sa/x' }, allowed: false },
      { req: { principal: 'spiffe://cluster.local/ns/bar/sa/foo' }, allowed: false },
      { req: { principal: 'spiffe://cluster.local/ns/a.b/sa/x' }, allowed: true },
      { req: { principal: 'spiffe://cluster.local/ns/aXb/sa/x' }, allowed: false },
      { req: { principal: undefined }, allowed: false },
    ],
  },
  {
    name: 'notNamespaces in DENY also denies plaintext (no identity)',
    policies: [{ name: 'd', spec: { action: 'DENY', rules: [{ from: [{ source: { notNamespaces: ['foo'] } }] }] } }],
    cases: [
      { req: { principal: 'spiffe://cluster.local/ns/foo/sa/x' }, allowed: true },
      { req: { principal: 'spiffe://cluster.local/ns/bar/sa/x' }, allowed: false, decidedBy: k('d') },
      { req: { principal: undefined }, allowed: false },
    ],
  },
  {
    name: 'ipBlocks with CIDR and host addresses; IPv4-mapped IPv6 peers count as IPv4',
    policies: [{ name: 'ip', spec: { rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/8', '192.168.1.5', '2001:db8::/32'] } }] }] } }],
    cases: [
      { req: { directRemoteIp: '10.1.2.3' }, allowed: true },
      { req: { directRemoteIp: '::ffff:10.9.9.9' }, allowed: true },
      { req: { directRemoteIp: '11.0.0.1' }, allowed: false },
      { req: { directRemoteIp: '192.168.1.5' }, allowed: true },
      { req: { directRemoteIp: '192.168.1.6' }, allowed: false },
      { req: { directRemoteIp: '2001:db8:1::7' }, allowed: true },
      { req: { directRemoteIp: '2001:db9::7' }, allowed: false },
      { req: { directRemoteIp: '11.0.0.1', sourceIp: '10.0.0.1' }, allowed: false },
    ],
  },
  {
    name: 'notIpBlocks in DENY',
    policies: [{ name: 'd', spec: { action: 'DENY', rules: [{ from: [{ source: { notIpBlocks: ['127.0.0.0/8'] } }] }] } }],
    cases: [
      { req: { directRemoteIp: '127.0.0.1' }, allowed: true },
      { req: { directRemoteIp: '10.0.0.1' }, allowed: false },
    ],
  },
  {
    name: 'remoteIpBlocks use the original client address',
    policies: [{ name: 'r', spec: { rules: [{ from: [{ source: { remoteIpBlocks: ['203.0.113.0/24'] } }] }] } }],
    cases: [
      { req: { sourceIp: '203.0.113.9', directRemoteIp: '10.0.0.1' }, allowed: true },
      { req: { sourceIp: '10.0.0.1', directRemoteIp: '203.0.113.9' }, allowed: false },
    ],
  },
  {
    name: 'methods and notMethods',
    policies: [
      { name: 'get', spec: { rules: [{ to: [{ operation: { methods: ['GET', 'HEAD'] } }] }] } },
      { name: 'no-delete', spec: { action: 'DENY', rules: [{ to: [{ operation: { notMethods: ['GET', 'HEAD', 'POST'] } }] }] } },
    ],
    cases: [
      { req: { method: 'GET' }, allowed: true },
      { req: { method: 'HEAD' }, allowed: true },
      { req: { method: 'POST' }, allowed: false },
      { req: { method: 'DELETE' }, allowed: false, decidedBy: k('no-delete') },
    ],
  },
  {
    name: 'paths exact, prefix *, suffix *, * and templates',
    policies: [
      { name: 'exact', spec: { rules: [{ to: [{ operation: { paths: ['/exact'] } }] }] } },
      { name: 'prefix', spec: { rules: [{ to: [{ operation: { paths: ['/api/*'] } }] }] } },
      { name: 'suffix', spec: { rules: [{ to: [{ operation: { paths: ['*.png'] } }] }] } },
      { name: 'tmpl', spec: { rules: [{ to: [{ operation: { paths: ['/users/{*}/profile'] } }] }] } },
    ],
    cases: [
      { req: { path: '/exact' }, allowed: true, decidedBy: k('exact') },
      { req: { path: '/exact/' }, allowed: false },
      { req: { path: '/api/v1/x' }, allowed: true, decidedBy: k('prefix') },
      { req: { path: '/api' }, allowed: false },
      { req: { path: '/img/a.png' }, allowed: true, decidedBy: k('suffix') },
      { req: { path: '/users/42/profile' }, allowed: true, decidedBy: k('tmpl') },
      { req: { path: '/users/4/2/profile' }, allowed: false },
      { req: { path: '/other' }, allowed: false },
    ],
  },
  {
    name: 'paths * matches any path',
    policies: [{ name: 'any', spec: { rules: [{ to: [{ operation: { paths: ['*'] } }] }] } }],
    cases: [{ req: { path: '/whatever' }, allowed: true }],
  },
  {
    name: 'notPaths',
    policies: [{ name: 'np', spec: { rules: [{ to: [{ operation: { notPaths: ['/private/*'] } }] }] } }],
    cases: [
      { req: { path: '/public' }, allowed: true },
      { req: { path: '/private/x' }, allowed: false },
    ],
  },
  {
    name: 'hosts are case-insensitive and match with a port',
    policies: [{ name: 'h', spec: { rules: [{ to: [{ operation: { hosts: ['Example.COM', '*.svc.cluster.local'] } }] }] } }],
    cases: [
      { req: { host: 'example.com' }, allowed: true },
      { req: { host: 'EXAMPLE.com:8080' }, allowed: true },
      { req: { host: 'example.comx' }, allowed: false },
      { req: { host: 'httpbin.default.SVC.cluster.local' }, allowed: true },
      { req: { host: 'other.org' }, allowed: false },
    ],
  },
  {
    name: 'ports and notPorts',
    policies: [{ name: 'port', spec: { rules: [{ to: [{ operation: { ports: ['8000'], notPorts: ['9000'] } }] }] } }],
    cases: [
      { req: { destinationPort: 8000 }, allowed: true },
      { req: { destinationPort: 9090 }, allowed: false },
    ],
  },
  {
    name: 'from entries OR; fields inside one source AND',
    policies: [
      {
        name: 'src',
        spec: {
          rules: [{
            from: [
              { source: { namespaces: ['foo'], ipBlocks: ['10.0.0.0/8'] } },
              { source: { principals: ['cluster.local/ns/bar/sa/admin'] } },
            ],
          }],
        },
      },
    ],
    cases: [
      { req: { principal: 'spiffe://cluster.local/ns/foo/sa/a', directRemoteIp: '10.0.0.1' }, allowed: true },
      { req: { principal: 'spiffe://cluster.local/ns/foo/sa/a', directRemoteIp: '11.0.0.1' }, allowed: false },
      { req: { principal: 'spiffe://cluster.local/ns/bar/sa/admin', directRemoteIp: '11.0.0.1' }, allowed: true },
    ],
  },
  {
    name: 'when request.headers with values and notValues',
    policies: [{
      name: 'hdr',
      spec: { rules: [{ when: [{ key: 'request.headers[X-Token]', values: ['secret-*'], notValues: ['secret-revoked'] }] }] },
    }],
    cases: [
      { req: { headers: { 'x-token': 'secret-1' } }, allowed: true },
      { req: { headers: { 'x-token': 'secret-revoked' } }, allowed: false },
      { req: { headers: { 'x-token': 'nope' } }, allowed: false },
      { req: { headers: {} }, allowed: false },
    ],
  },
  {
    name: 'when request.auth.claims, flat, list and nested',
    policies: [
      { name: 'groups', spec: { rules: [{ when: [{ key: 'request.auth.claims[groups]', values: ['admin'] }] }] } },
      { name: 'nested', spec: { rules: [{ when: [{ key: 'request.auth.claims[realm][role]', values: ['ops'] }] }] } },
    ],
    cases: [
      { req: { jwt: jwt({ iss: 'i', sub: 's', groups: ['dev', 'admin'] }) }, allowed: true, decidedBy: k('groups') },
      { req: { jwt: jwt({ iss: 'i', sub: 's', groups: 'admin' }) }, allowed: true },
      { req: { jwt: jwt({ iss: 'i', sub: 's', groups: ['dev'] }) }, allowed: false },
      { req: { jwt: jwt({ iss: 'i', sub: 's', realm: { role: 'ops' } }) }, allowed: true, decidedBy: k('nested') },
      { req: { jwt: jwt({ iss: 'i', sub: 's', realm: 'ops' }) }, allowed: false },
      { req: {}, allowed: false },
    ],
  },
  {
    name: 'requestPrincipals: * means any valid token; exact iss/sub',
    policies: [
      { name: 'any-token', spec: { rules: [{ from: [{ source: { requestPrincipals: ['*'] } }], to: [{ operation: { paths: ['/a'] } }] }] } },
      { name: 'alice', spec: { rules: [{ from: [{ source: { requestPrincipals: ['https://idp.example/alice'] } }], to: [{ operation: { paths: ['/b'] } }] }] } },
    ],
    cases: [
      { req: { path: '/a', jwt: jwt({ iss: 'x', sub: 'y' }) }, allowed: true },
      { req: { path: '/a' }, allowed: false },
      { req: { path: '/b', jwt: jwt({ iss: 'https://idp.example', sub: 'alice' }) }, allowed: true },
      { req: { path: '/b', jwt: jwt({ iss: 'https://idp.example', sub: 'bob' }) }, allowed: false },
    ],
  },
  {
    name: 'DENY notRequestPrincipals * denies requests without a token',
    policies: [{ name: 'need-jwt', spec: { action: 'DENY', rules: [{ from: [{ source: { notRequestPrincipals: ['*'] } }] }] } }],
    cases: [
      { req: {}, allowed: false, decidedBy: k('need-jwt') },
      { req: { jwt: jwt({ iss: 'a', sub: 'b' }) }, allowed: true },
    ],
  },
  {
    name: 'when on source, destination, connection and auth attributes',
    policies: [{
      name: 'attrs',
      spec: {
        rules: [{
          when: [
            { key: 'source.ip', values: ['10.0.0.0/24'] },
            { key: 'remote.ip', values: ['10.0.0.7'] },
            { key: 'source.namespace', values: ['default'] },
            { key: 'source.principal', values: ['cluster.local/ns/default/sa/sleep'] },
            { key: 'destination.ip', values: ['10.0.0.9'] },
            { key: 'destination.port', values: ['8000'] },
            { key: 'connection.sni', values: ['*.httpbin.default.svc.cluster.local'] },
            { key: 'request.auth.principal', values: ['iss/sub'] },
            { key: 'request.auth.audiences', values: ['api'] },
            { key: 'request.auth.presenter', values: ['web'] },
          ],
        }],
      },
    }],
    cases: [
      { req: { jwt: jwt({ iss: 'iss', sub: 'sub', aud: ['x', 'api'], azp: 'web' }) }, allowed: true },
      { req: { jwt: jwt({ iss: 'iss', sub: 'sub', aud: 'api', azp: 'web' }) }, allowed: true },
      { req: { jwt: jwt({ iss: 'iss', sub: 'sub', aud: 'other', azp: 'web' }) }, allowed: false },
      { req: { jwt: jwt({ iss: 'iss', sub: 'sub', aud: 'api', azp: 'web' }), destinationPort: 8001 }, allowed: false },
      { req: { jwt: jwt({ iss: 'iss', sub: 'sub', aud: 'api', azp: 'web' }), sni: undefined }, allowed: false },
      { req: { jwt: jwt({ iss: 'iss', sub: 'sub', aud: 'api', azp: 'web' }), directRemoteIp: '10.0.1.7' }, allowed: false },
    ],
  },
  {
    name: 'AUDIT never affects the decision but is reported',
    policies: [{ name: 'audit', spec: { action: 'AUDIT', rules: [{ to: [{ operation: { paths: ['/secret'] } }] }] } }],
    cases: [
      { req: { path: '/secret' }, allowed: true },
      { req: { path: '/open' }, allowed: true },
    ],
  },
  {
    name: 'unknown when key: ALLOW rule never matches (fail closed)',
    policies: [{ name: 'weird', spec: { rules: [{ when: [{ key: 'request.bogus', values: ['x'] }] }] } }],
    cases: [{ req: {}, allowed: false }],
    warns: /request\.bogus.*never matches/,
  },
  {
    name: 'unknown when key in DENY: the condition is dropped so the rule denies more',
    policies: [{
      name: 'weird-deny',
      spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/x'] } }], when: [{ key: 'request.bogus', values: ['x'] }] }] },
    }],
    cases: [
      { req: { path: '/x' }, allowed: false },
      { req: { path: '/y' }, allowed: true },
    ],
    warns: /request\.bogus.*DENY rule matches more/,
  },
  {
    name: 'an invalid CIDR fails closed in ALLOW',
    policies: [{ name: 'badip', spec: { rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/8', 'nonsense'] } }] }] } }],
    cases: [{ req: { directRemoteIp: '10.0.0.1' }, allowed: false }],
    warns: /nonsense/,
  },
  {
    name: 'CUSTOM is ignored with a warning',
    policies: [{ name: 'ext', spec: { action: 'CUSTOM', provider: { name: 'opa' }, rules: [{}] } }],
    cases: [{ req: {}, allowed: true }],
    warns: /CUSTOM.*opa/,
  },
];

for (const row of ROWS) {
  test(`authz e2e: ${row.name}`, () => {
    const { decide, compiled, engine } = pipeline(row.policies);
    assert.deepEqual(engine.errors, []);
    if (row.warns) assert.ok(compiled.warnings.some((w) => row.warns!.test(w)), compiled.warnings.join('\n'));
    else assert.deepEqual(compiled.warnings, []);
    row.cases.forEach((c, i) => {
      const d = decide(c.req);
      assert.equal(d.allowed, c.allowed, `case ${i} ${JSON.stringify(c.req)}: ${d.reason}`);
      if (c.decidedBy) assert.equal(d.decidedBy, c.decidedBy, `case ${i}`);
    });
  });
}

test('AUDIT matches are listed and the action reports NONE when nothing enforces', () => {
  const { decide } = pipeline([{ name: 'audit', spec: { action: 'AUDIT', rules: [{ to: [{ operation: { paths: ['/secret'] } }] }] } }]);
  const d = decide({ path: '/secret' });
  assert.equal(d.action, 'NONE');
  assert.deepEqual(d.auditMatches, [k('audit')]);
  assert.equal(decide({ path: '/x' }).auditMatches, undefined);
});

test('AUDIT still records requests that a DENY policy rejects', () => {
  const { decide } = pipeline([
    { name: 'audit', spec: { action: 'AUDIT', rules: [{}] } },
    { name: 'deny', spec: { action: 'DENY', rules: [{}] } },
  ]);
  const d = decide({});
  assert.equal(d.allowed, false);
  assert.equal(d.action, 'DENY');
  assert.deepEqual(d.auditMatches, [k('audit')]);
});

test('decision action and reason name what decided', () => {
  const deny = pipeline([{ name: 'allow-get', spec: { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] } }]);
  assert.deepEqual(deny.decide({ method: 'POST' }), { allowed: false, action: 'ALLOW', reason: 'no ALLOW policy matched', auditMatches: undefined });
  const ok = deny.decide({ method: 'GET' });
  assert.equal(ok.action, 'ALLOW');
  assert.equal(ok.decidedBy, k('allow-get'));
  assert.equal(pipeline([]).decide({}).action, 'NONE');
});

test('a root-namespace policy applies to every workload, in every namespace', () => {
  const policies = [
    { name: 'global-deny', namespace: 'istio-system', spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] } },
    { name: 'mesh-deny', namespace: 'mesh-root', spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/debug'] } }] }] } },
  ];
  const mesh = { ...MESH, rootNamespaces: ['mesh-root', 'istio-system'] };
  for (const ns of ['default', 'foo', 'bar']) {
    const { decide } = pipeline(policies, workload({ namespace: ns }), mesh);
    assert.equal(decide({ path: '/admin' }).decidedBy, k('global-deny', 0, 'istio-system'));
    assert.equal(decide({ path: '/debug' }).decidedBy, k('mesh-deny', 0, 'mesh-root'));
    assert.equal(decide({ path: '/' }).allowed, true);
  }
});

test('policies in another, non-root namespace do not apply', () => {
  const { decide } = pipeline([{ name: 'x', namespace: 'other', spec: {} }], workload({ namespace: 'default' }));
  assert.equal(decide({}).allowed, true);
});

test('selector scopes a policy to workloads carrying all its labels', () => {
  const policies = [{ name: 'sel', spec: { selector: { matchLabels: { app: 'httpbin', version: 'v1' } }, action: 'DENY', rules: [{}] } }];
  assert.equal(pipeline(policies, workload({ labels: { app: 'httpbin', version: 'v1', extra: 'y' } })).decide({}).allowed, false);
  assert.equal(pipeline(policies, workload({ labels: { app: 'httpbin', version: 'v2' } })).decide({}).allowed, true);
  assert.equal(pipeline(policies, workload({ labels: { app: 'httpbin' } })).decide({}).allowed, true);
  assert.equal(pipeline(policies, workload({ namespace: 'foo', labels: { app: 'httpbin', version: 'v1' } })).decide({}).allowed, true);
});

test('a root-namespace policy with a selector applies to matching workloads in any namespace', () => {
  const policies = [{ name: 'sel', namespace: 'istio-system', spec: { selector: { matchLabels: { app: 'httpbin' } }, action: 'DENY', rules: [{}] } }];
  assert.equal(pipeline(policies, workload({ namespace: 'foo' })).decide({}).allowed, false);
  assert.equal(pipeline(policies, workload({ namespace: 'foo', labels: { app: 'x' } })).decide({}).allowed, true);
});

test('targetRef to a Service applies to the workloads in that service', () => {
  const policies = [{ name: 'tr', spec: { targetRefs: [{ kind: 'Service', group: '', name: 'httpbin' }], action: 'DENY', rules: [{}] } }];
  assert.equal(pipeline(policies, workload()).decide({}).allowed, false);
  assert.equal(pipeline(policies, workload({ services: ['other.default.svc.cluster.local'] })).decide({}).allowed, true);
  const gw = pipeline([{ name: 'gw', spec: { targetRef: { kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'g' }, action: 'DENY', rules: [{}] } }]);
  assert.equal(gw.decide({}).allowed, true);
  assert.ok(gw.compiled.warnings.some((w) => /Gateway/.test(w)));
});

test('compile reports the policies applied and their rule keys', () => {
  const { compiled } = pipeline([
    { name: 'b-allow', spec: { rules: [{}, { when: [{ key: 'nope', values: ['1'] }] }] } },
    { name: 'a-deny', spec: { action: 'DENY', rules: [{}] } },
  ]);
  assert.deepEqual(compiled.decidedBy, ['default/a-deny', 'default/b-allow']);
  assert.deepEqual(compiled.policies.find((p) => p.ref === 'default/b-allow')?.keys, [k('b-allow', 0)]);
  assert.equal(compiled.filters.length, 2);
  assert.ok(compiled.filters.every((f) => f.name === 'envoy.filters.http.rbac'));
});
