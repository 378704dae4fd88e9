// RequestAuthentication -> jwt_authn config: providers, Istio's requires_any + allow_missing, selection, warnings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../../../src/api/types.js';
import { jwtAuthnConfig } from '../../../../src/control/compile/authz/index.js';
import type { MeshSettings, WorkloadInstance } from '../../../../src/control/model.js';

const MESH: MeshSettings = { trustDomain: 'cluster.local', rootNamespaces: ['trellis-system', 'istio-system'], certificateTtlSeconds: 86400 };
const WL: WorkloadInstance = {
  name: 'w', namespace: 'default', labels: { app: 'w' }, serviceAccount: 'w', identity: 'spiffe://cluster.local/ns/default/sa/w',
  services: ['w.default.svc.cluster.local'], address: '127.0.0.1', ports: [], health: 'HEALTHY', source: 'Workload',
};
const ra = (name: string, spec: Record<string, unknown>, namespace = 'default'): Resource =>
  ({ apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name, namespace }, spec });

test('no RequestAuthentication applies -> no filter', () => {
  assert.equal(jwtAuthnConfig([], WL, MESH), undefined);
  assert.equal(jwtAuthnConfig([ra('x', { jwtRules: [{ issuer: 'i', jwks: '{"keys":[]}' }] }, 'other')], WL, MESH), undefined);
  assert.equal(jwtAuthnConfig([ra('x', { selector: { matchLabels: { app: 'z' } }, jwtRules: [{ issuer: 'i', jwks: '{"keys":[]}' }] })], WL, MESH), undefined);
});

test('providers from every applicable resource; requires_any(all, allow_missing) on every path', () => {
  const cfg = jwtAuthnConfig(
    [
      ra('a', { jwtRules: [{ issuer: 'i1', jwksUri: 'https://idp.example/jwks', audiences: ['x'] }] }),
      ra('mesh', { jwtRules: [{ issuer: 'i2', jwks: '{"keys":[]}', fromParams: ['t'] }] }, 'istio-system'),
    ],
    WL,
    MESH,
  ) as any;
  assert.deepEqual(Object.keys(cfg.providers), ['origins-0', 'origins-1']);
  const p0 = cfg.providers['origins-0'];
  assert.equal(p0.issuer, 'i1');
  assert.deepEqual(p0.audiences, ['x']);
  assert.deepEqual(p0.remote_jwks.http_uri, { uri: 'https://idp.example/jwks', cluster: 'jwks|idp.example', timeout: { seconds: 5 } });
  assert.equal(p0.payload_in_metadata, 'jwt_payload');
  assert.equal(p0.forward, false);
  assert.equal(p0.from_headers, undefined, 'Envoy defaults apply: Authorization Bearer and access_token');
  assert.deepEqual(cfg.providers['origins-1'].local_jwks, { inline_string: '{"keys":[]}' });
  assert.deepEqual(cfg.rules, [
    {
      match: { prefix: '/' },
      requires: { requires_any: { requirements: [{ provider_name: 'origins-0' }, { provider_name: 'origins-1' }, { allow_missing: {} }] } },
    },
  ]);
});

test('warnings name the field; bad key material fails closed with an empty key set', () => {
  const warnings: string[] = [];
  const cfg = jwtAuthnConfig(
    [ra('r', { jwtRules: [{ issuer: 'i', jwks: 'not json' }, { issuer: 'j', jwksUri: 'ftp://x' }, { jwks: '{}' }, { issuer: 'k', jwks: '{"keys":[]}', bogus: 1 }] })],
    WL,
    MESH,
    warnings,
  ) as any;
  assert.equal(cfg.providers['origins-0'].local_jwks.inline_string, '{"keys":[]}');
  assert.equal(cfg.providers['origins-1'].local_jwks.inline_string, '{"keys":[]}');
  assert.equal(Object.keys(cfg.providers).length, 3);
  for (const re of [/jwtRules\[0\]\.jwks is not a JSON Web Key Set/, /jwtRules\[1\]\.jwksUri "ftp:\/\/x"/, /jwtRules\[2\]\.issuer is required/, /jwtRules\[3\]\.bogus is not supported/]) {
    assert.ok(warnings.some((w) => re.test(w)), `${re} in ${warnings.join('\n')}`);
  }
});

test('jwtAuthnConfig never throws on arbitrary rule shapes, and the result always packs', async () => {
  const fc = (await import('fast-check')).default;
  const { compileJwtAuthn } = await import('../../../../src/control/compile/authz/index.js');
  const leaf = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.constantFrom('', 'x', 'https://a/j', '{"keys":[]}', '5s'));
  const val = fc.oneof(leaf, fc.array(leaf, { maxLength: 2 }), fc.array(fc.dictionary(fc.constantFrom('name', 'prefix', 'header', 'claim'), leaf), { maxLength: 2 }));
  const rule = fc.dictionary(
    fc.constantFrom('issuer', 'audiences', 'jwksUri', 'jwks', 'fromHeaders', 'fromParams', 'fromCookies', 'outputPayloadToHeader', 'forwardOriginalToken', 'outputClaimToHeaders', 'timeout'),
    val,
    { maxKeys: 5 },
  );
  fc.assert(
    fc.property(fc.array(rule, { maxLength: 3 }), (rules) => {
      compileJwtAuthn([ra('f', { jwtRules: rules })], WL, MESH, []);
    }),
    { numRuns: 200 },
  );
});

test('an unusable location list does not widen to the default Authorization header', () => {
  const warnings: string[] = [];
  const cfg = jwtAuthnConfig([ra('r', { jwtRules: [{ issuer: 'i', jwks: '{"keys":[]}', fromHeaders: 'authorization' }] })], WL, MESH, warnings) as any;
  assert.deepEqual(cfg.providers['origins-0'].from_headers, [{ name: 'x-trellis-no-jwt-location' }]);
  assert.ok(warnings.some((w) => /fromHeaders must be a list/.test(w)));
});
