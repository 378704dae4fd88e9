// Everything the authz compilers produce survives packAny/unpackAny unchanged (no field the proto lacks).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../../../src/api/types.js';
import { compileAuthorization, compileJwtAuthn, jwtAuthnConfig } from '../../../../src/control/compile/authz/index.js';
import type { MeshSettings, WorkloadInstance } from '../../../../src/control/model.js';
import { JWT_AUTHN_TYPE, RBAC_TYPE, packAny, unpackAny } from '../../../../src/xds/protos.js';

const MESH: MeshSettings = { trustDomain: 'cluster.local', rootNamespaces: ['trellis-system', 'istio-system'], certificateTtlSeconds: 86400 };
const WL: WorkloadInstance = {
  name: 'w', namespace: 'default', labels: { app: 'w' }, serviceAccount: 'w', identity: 'spiffe://cluster.local/ns/default/sa/w',
  services: ['w.default.svc.cluster.local'], address: '127.0.0.1', ports: [], health: 'HEALTHY', source: 'Workload',
};

/** Drops protobufjs's virtual oneof keys (their value names a sibling field) and normalises longs. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [key, val] of Object.entries(o)) {
      if (typeof val === 'string' && val !== key && val in o && !['exact', 'prefix', 'suffix'].includes(key)) continue;
      out[key] = canonical(val);
    }
    return out;
  }
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  return v;
}

const everything = {
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'all-fields', namespace: 'default' },
  spec: {
    rules: [
      {
        from: [
          {
            source: {
              principals: ['cluster.local/ns/a/sa/b', 'x*', '*y', '*'], notPrincipals: ['cluster.local/ns/a/sa/c'],
              requestPrincipals: ['iss/sub', '*'], notRequestPrincipals: ['bad/*'],
              namespaces: ['a', 'b*'], notNamespaces: ['c'],
              ipBlocks: ['10.0.0.0/8', '::1'], notIpBlocks: ['10.1.0.0/16'],
              remoteIpBlocks: ['1.2.3.4'], notRemoteIpBlocks: ['1.2.3.5/32'],
              serviceAccounts: ['ns1/sa1'], notServiceAccounts: ['ns1/sa2'],
            },
          },
        ],
        to: [
          {
            operation: {
              hosts: ['a.com', '*.b.com'], notHosts: ['c.com'], ports: ['80'], notPorts: ['81'],
              methods: ['GET'], notMethods: ['PUT'], paths: ['/a', '/b*', '*.c', '*', '/d/{*}/e/{**}'], notPaths: ['/z'],
            },
          },
        ],
        when: [
          { key: 'request.headers[x-a]', values: ['1'], notValues: ['2'] },
          { key: 'source.ip', values: ['10.0.0.1'] }, { key: 'remote.ip', values: ['10.0.0.2'] },
          { key: 'source.namespace', values: ['n'] }, { key: 'source.principal', values: ['td/ns/n/sa/s'] },
          { key: 'request.auth.principal', values: ['i/s'] }, { key: 'request.auth.audiences', values: ['aud'] },
          { key: 'request.auth.presenter', values: ['p'] }, { key: 'request.auth.claims[a][b]', values: ['v'] },
          { key: 'destination.ip', values: ['10.9.0.0/16'] }, { key: 'destination.port', values: ['8080'] },
          { key: 'connection.sni', values: ['*.svc'] },
        ],
      },
    ],
  },
} as Resource;

test('RBAC configs using every supported field survive packAny/unpackAny', () => {
  for (const action of ['ALLOW', 'DENY', 'AUDIT']) {
    const r = compileAuthorization([{ ...everything, spec: { ...everything.spec, action } }], WL, MESH);
    assert.deepEqual(r.warnings, []);
    assert.equal(r.configs.length, 1);
    const back = unpackAny(r.filters[0].typed_config);
    assert.deepEqual(canonical(back), canonical(r.configs[0]));
    assert.equal(r.filters[0].typed_config.type_url, RBAC_TYPE);
    // Re-encoding the decoded object gives the same bytes: nothing was lost or invented.
    assert.deepEqual(Buffer.from(packAny(RBAC_TYPE, back).value), Buffer.from(r.filters[0].typed_config.value));
  }
});

test('an allow-nothing policy keeps an (empty) ALLOW rules message on the wire', () => {
  const r = compileAuthorization([{ ...everything, spec: {} }], WL, MESH);
  const back = unpackAny<{ rules?: object }>(r.filters[0].typed_config);
  assert.ok(back.rules, 'rules must be present so the proxy enforces ALLOW with no policies');
});

test('filters come in AUDIT, DENY, ALLOW order with Envoy actions LOG, DENY, ALLOW', () => {
  const mk = (name: string, action: string): Resource => ({ ...everything, metadata: { name, namespace: 'default' }, spec: { action, rules: [{}] } });
  const r = compileAuthorization([mk('x', 'ALLOW'), mk('y', 'DENY'), mk('z', 'AUDIT')], WL, MESH);
  const actions = r.filters.map((f) => unpackAny<{ rules: { action?: string } }>(f.typed_config).rules.action ?? 'ALLOW');
  assert.deepEqual(actions, ['LOG', 'DENY', 'ALLOW']);
});

test('the jwt_authn config survives packAny/unpackAny', () => {
  const ra = {
    apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'ra', namespace: 'default' },
    spec: {
      jwtRules: [
        {
          issuer: 'https://idp', audiences: ['a', 'b'], jwksUri: 'https://idp:8443/jwks', timeout: '2s',
          fromHeaders: [{ name: 'X-Token', prefix: 'Bearer ' }], fromParams: ['tok'], fromCookies: ['session'],
          outputPayloadToHeader: 'x-payload', forwardOriginalToken: true,
          outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }],
        },
        { issuer: 'local', jwks: '{"keys":[]}' },
      ],
    },
  } as Resource;
  const cfg = jwtAuthnConfig([ra], WL, MESH)!;
  const filter = compileJwtAuthn([ra], WL, MESH)!;
  assert.equal(filter.name, 'envoy.filters.http.jwt_authn');
  assert.equal(filter.typed_config.type_url, JWT_AUTHN_TYPE);
  const back = unpackAny(filter.typed_config);
  assert.deepEqual(canonical(back), canonical(cfg));
});
