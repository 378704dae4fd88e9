// Inbound JWT end to end: RequestAuthentication + AuthorizationPolicy compiled by the control plane, enforced by proxy B behind mTLS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { startMesh, type Mesh } from './helpers/mesh.js';
import { compileAuthorization, compileJwtAuthn } from '../../src/control/compile/authz/index.js';
import type { AuthorizationPolicySpec, RequestAuthenticationSpec } from '../../src/api/types.js';
import { MESH_SETTINGS, closeAgent, echoed, metricsText, pushInboundFilters, request, resource, workloadB, type FilterEntry } from './security-helpers.js';

type KeyLike = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
const ISS = 'https://issuer.example';
let mesh: Mesh;
let key: KeyLike;
let otherKey: KeyLike;

before(async () => {
  mesh = await startMesh();
  const kp = await generateKeyPair('ES256', { extractable: true });
  key = kp.privateKey;
  otherKey = (await generateKeyPair('ES256')).privateKey;
  const jwk = { ...(await exportJWK(kp.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const w = workloadB(mesh.ports.http);
  const warnings: string[] = [];
  const reqAuth = resource<RequestAuthenticationSpec>('RequestAuthentication', 'jwt', {
    selector: { matchLabels: { app: 'b' } },
    jwtRules: [{ issuer: ISS, jwks: JSON.stringify({ keys: [jwk] }), outputClaimToHeaders: [{ header: 'x-jwt-sub', claim: 'sub' }, { header: 'x-jwt-group', claim: 'group' }] }],
  } as RequestAuthenticationSpec);
  const jwt = compileJwtAuthn([reqAuth], w, MESH_SETTINGS, warnings);
  const authz = compileAuthorization(
    [resource<AuthorizationPolicySpec>('AuthorizationPolicy', 'require-jwt', { selector: { matchLabels: { app: 'b' } }, rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }] })],
    w,
    MESH_SETTINGS,
  );
  assert.deepEqual([...warnings, ...authz.warnings], []);
  assert.ok(jwt);
  assert.equal(pushInboundFilters(mesh, [jwt as FilterEntry, ...authz.filters]), undefined);
});
after(async () => {
  closeAgent();
  await mesh?.close();
});

async function token(claims: Record<string, unknown> = {}, opts: { exp?: number; signWith?: KeyLike } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: 'alice', ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(ISS)
    .setIssuedAt(now)
    .setExpirationTime(opts.exp ?? now + 600)
    .sign(opts.signWith ?? key);
}

const viaA = (path: string, headers: Record<string, string> = {}) => request(mesh.outPort, 'b', path, headers);

test('a valid token passes; the app gets the claim headers, not the token, and never a forged claim header', async () => {
  const r = await viaA('/hello', { authorization: `Bearer ${await token()}`, 'x-jwt-group': 'admins', 'x-jwt-sub': 'mallory' });
  assert.equal(r.status, 200, r.body);
  const h = echoed(r).headers;
  assert.equal(h['x-jwt-sub'], 'alice');
  // The token has no "group" claim: the client's x-jwt-group must not pass as if the proxy had set it.
  assert.equal(h['x-jwt-group'], undefined);
  assert.equal(h.authorization, undefined, 'forwardOriginalToken is false: the token is removed');
  assert.equal(h['x-forwarded-client-cert'], 'By=spiffe://cluster.local/ns/default/sa/b;URI=spiffe://cluster.local/ns/default/sa/a');
});

test('an invalid token gets 401 unauthenticated with the reason; the app sees nothing', async () => {
  const seen = mesh.seen.length;
  const cases: [string, string, RegExp][] = [
    ['bad signature', await token({}, { signWith: otherKey }), /verification fails/],
    ['expired', await token({}, { exp: Math.floor(Date.now() / 1000) - 3600 }), /expired/],
    ['garbage', 'not.a.jwt', /Header.Payload.Signature/],
  ];
  for (const [what, t, reason] of cases) {
    const r = await viaA('/hello', { authorization: `Bearer ${t}` });
    assert.equal(r.status, 401, `${what}: ${r.body}`);
    assert.equal(r.headers['x-trellis-error'], 'unauthenticated');
    assert.match(r.headers['www-authenticate'] ?? '', /^Bearer/);
    assert.match(r.body, reason, what);
  }
  assert.equal(mesh.seen.length, seen);
  const text = await metricsText(mesh.b);
  assert.match(text, /trellis_requests_total\{reporter="destination",[^}]*response_code="401"[^}]*error_code="unauthenticated"/);
});

test('no token: authorization requiring a request principal answers 403 denied', async () => {
  const seen = mesh.seen.length;
  const r = await viaA('/hello');
  assert.equal(r.status, 403, r.body);
  assert.equal(r.headers['x-trellis-error'], 'denied');
  assert.equal(r.body, 'denied: denied by authorization policy\n');
  assert.equal(mesh.seen.length, seen);
});
