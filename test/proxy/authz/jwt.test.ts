// JWT verification: RequestAuthentication -> jwt_authn config -> Any -> proxy verifier, with keys made in the test.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type JWK, SignJWT, UnsecuredJWT, exportJWK, generateKeyPair } from 'jose';
import type { Resource } from '../../../src/api/types.js';
import { compileJwtAuthn } from '../../../src/control/compile/authz/index.js';
import { unpackAny } from '../../../src/xds/protos.js';
import { type FetchJwks, compileJwt, httpFetchJwks } from '../../../src/proxy/authz/index.js';
import type { JwtOptions } from '../../../src/proxy/authz/index.js';
import { MESH, pipeline, workload } from './helpers.js';

const ISS = 'https://idp.example';
type Key = { privateKey: CryptoKey; jwk: JWK };
let rsa: Key;
let ec: Key;
let other: Key;

async function key(alg: string, kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

before(async () => {
  rsa = await key('RS256', 'rsa-1');
  ec = await key('ES256', 'ec-1');
  other = await key('RS256', 'rsa-1'); // same kid, different key: a forged signature
});

const now = () => Math.floor(Date.now() / 1000);

function sign(k: Key, alg: string, claims: Record<string, unknown> = {}, opts: { exp?: number; nbf?: number; iss?: string } = {}) {
  const jwt = new SignJWT({ sub: 'alice', aud: 'api', ...claims })
    .setProtectedHeader({ alg, kid: k.jwk.kid })
    .setIssuer(opts.iss ?? ISS)
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? now() + 300);
  if (opts.nbf !== undefined) jwt.setNotBefore(opts.nbf);
  return jwt.sign(k.privateKey);
}

function ra(rules: Record<string, unknown>[]): Resource {
  return { apiVersion: 'security.istio.io/v1', kind: 'RequestAuthentication', metadata: { name: 'jwt', namespace: 'default' }, spec: { jwtRules: rules } };
}

/** RequestAuthentication rules through the control-plane compiler and the wire into a proxy verifier. */
function verifier(rules: Record<string, unknown>[], fetch?: FetchJwks, opts?: JwtOptions) {
  const filter = compileJwtAuthn([ra(rules) as never], workload(), MESH);
  assert.ok(filter);
  return compileJwt(unpackAny(filter.typed_config), fetch, opts);
}

const inline = (...keys: Key[]) => JSON.stringify({ keys: keys.map((k) => k.jwk) });
const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` }, query: '' });

test('valid RS256 and ES256 tokens are accepted with principal iss/sub; the token header is removed', async () => {
  const v = verifier([{ issuer: ISS, jwks: inline(rsa, ec) }]);
  for (const token of [await sign(rsa, 'RS256'), await sign(ec, 'ES256')]) {
    const r = await v.verify(bearer(token));
    assert.equal(r.kind, 'ok', JSON.stringify(r));
    if (r.kind !== 'ok') return;
    assert.equal(r.principal, `${ISS}/alice`);
    assert.equal(r.payload.sub, 'alice');
    assert.equal(r.removeHeader, 'authorization');
  }
});

test('rejections: expired, not yet valid, wrong audience, unlisted issuer, bad signature, alg none, garbage', async () => {
  const v = verifier([{ issuer: ISS, audiences: ['api', 'web'], jwks: inline(rsa) }]);
  const cases: [string, string, RegExp][] = [
    ['expired', await sign(rsa, 'RS256', {}, { exp: now() - 600 }), /expired/],
    ['not yet valid', await sign(rsa, 'RS256', {}, { nbf: now() + 600 }), /not yet valid/],
    ['wrong audience', await sign(rsa, 'RS256', { aud: 'other' }), /Audiences/],
    ['unlisted issuer', await sign(rsa, 'RS256', {}, { iss: 'https://evil' }), /issuer https:\/\/evil is not configured/],
    ['bad signature', await sign(other, 'RS256'), /verification fails/],
    ['alg none', new UnsecuredJWT({ sub: 'alice', aud: 'api' }).setIssuer(ISS).setExpirationTime('5m').encode(), /algorithm is not allowed/],
    ['garbage', 'not.a.jwt', /form/],
  ];
  for (const [name, token, reason] of cases) {
    const r = await v.verify(bearer(token));
    assert.equal(r.kind, 'invalid', name);
    if (r.kind === 'invalid') assert.match(r.reason, reason, name);
  }
});

test('clock skew tolerates a just-expired token; audience lists match any entry', async () => {
  const v = verifier([{ issuer: ISS, audiences: ['web'], jwks: inline(rsa) }]);
  assert.equal((await v.verify(bearer(await sign(rsa, 'RS256', { aud: 'web' }, { exp: now() - 20 })))).kind, 'ok');
  assert.equal((await v.verify(bearer(await sign(rsa, 'RS256', { aud: ['x', 'web'] })))).kind, 'ok');
});

test('token in a custom header with a prefix; a header without the prefix counts as no token', async () => {
  const v = verifier([{ issuer: ISS, jwks: inline(rsa), fromHeaders: [{ name: 'X-Jwt-Assertion', prefix: 'Token ' }] }]);
  const token = await sign(rsa, 'RS256');
  const r = await v.verify({ headers: { 'x-jwt-assertion': `Token ${token}` }, query: '' });
  assert.equal(r.kind, 'ok');
  if (r.kind === 'ok') assert.equal(r.removeHeader, 'x-jwt-assertion');
  assert.equal((await v.verify({ headers: { 'x-jwt-assertion': token }, query: '' })).kind, 'none');
  // Authorization is not a configured location for this rule any more.
  assert.equal((await v.verify(bearer(token))).kind, 'none');
});

test('token in a query parameter, and the default access_token parameter', async () => {
  const token = await sign(rsa, 'RS256');
  const custom = verifier([{ issuer: ISS, jwks: inline(rsa), fromParams: ['token'] }]);
  const r = await custom.verify({ headers: {}, query: `?a=1&token=${token}` });
  assert.equal(r.kind, 'ok');
  if (r.kind === 'ok') assert.equal(r.removeHeader, undefined);
  const dflt = verifier([{ issuer: ISS, jwks: inline(rsa) }]);
  assert.equal((await dflt.verify({ headers: {}, query: `access_token=${token}` })).kind, 'ok');
  assert.equal((await dflt.verify({ headers: {}, query: `access_token=bogus` })).kind, 'invalid');
});

test('a request without a token passes authentication and authorization decides', async () => {
  const v = verifier([{ issuer: ISS, jwks: inline(rsa) }]);
  assert.deepEqual(await v.verify({ headers: {}, query: '' }), { kind: 'none' });
  const { decide } = pipeline([{ name: 'need-token', spec: { rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }] } }]);
  assert.equal(decide({ jwt: undefined }).allowed, false);
  const r = await v.verify(bearer(await sign(rsa, 'RS256', { groups: ['admin'] })));
  assert.equal(r.kind, 'ok');
  if (r.kind === 'ok') assert.equal(decide({ jwt: { payload: r.payload, principal: r.principal } }).allowed, true);
});

test('outputClaimToHeaders, outputPayloadToHeader and forwardOriginalToken', async () => {
  const v = verifier([{
    issuer: ISS, jwks: inline(rsa), forwardOriginalToken: true, outputPayloadToHeader: 'X-Jwt-Payload',
    outputClaimToHeaders: [{ header: 'X-Sub', claim: 'sub' }, { header: 'x-tier', claim: 'tier' }, { header: 'x-missing', claim: 'nope' }],
  }]);
  assert.deepEqual([...v.outputHeaders].sort(), ['x-jwt-payload', 'x-missing', 'x-sub', 'x-tier']);
  const token = await sign(rsa, 'RS256', { tier: 3 });
  const r = await v.verify(bearer(token));
  assert.equal(r.kind, 'ok');
  if (r.kind !== 'ok') return;
  assert.equal(r.removeHeader, undefined);
  const h = Object.fromEntries(r.headersToAdd);
  assert.equal(h['x-sub'], 'alice');
  assert.equal(h['x-tier'], '3');
  assert.equal(h['x-missing'], undefined);
  assert.equal(JSON.parse(Buffer.from(h['x-jwt-payload'], 'base64url').toString()).sub, 'alice');
});

test('two issuers: each token verifies against its own keys', async () => {
  const v = verifier([{ issuer: ISS, jwks: inline(rsa) }, { issuer: 'https://other', jwks: inline(ec) }]);
  assert.equal((await v.verify(bearer(await sign(ec, 'ES256', {}, { iss: 'https://other' })))).kind, 'ok');
  assert.equal((await v.verify(bearer(await sign(ec, 'ES256', {}, { iss: ISS })))).kind, 'invalid');
});

test('a rule without any key set rejects its tokens (fail closed) and warns at compile time', async () => {
  const warnings: string[] = [];
  const f = compileJwtAuthn([ra([{ issuer: ISS }]) as never], workload(), MESH, warnings)!;
  assert.ok(warnings.some((w) => /jwksUri/.test(w)));
  const v = compileJwt(unpackAny(f.typed_config));
  assert.equal((await v.verify(bearer(await sign(rsa, 'RS256')))).kind, 'invalid');
});

let server: Server;
let jwksUri = '';
let served: { keys: JWK[] } = { keys: [] };
let hits = 0;

before(async () => {
  server = createServer((req, res) => {
    hits++;
    if (req.url !== '/jwks') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(served));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

test('remote JWKS is fetched over HTTP once, cached, and refetched when a new key id appears', async () => {
  served = { keys: [rsa.jwk] };
  hits = 0;
  let clock = 1_000_000;
  const v = verifier([{ issuer: ISS, jwksUri }], httpFetchJwks, { now: () => clock, minJwksRefetchMs: 1000 });
  const t1 = await sign(rsa, 'RS256');
  const [a, b] = await Promise.all([v.verify(bearer(t1)), v.verify(bearer(t1))]);
  assert.equal(a.kind, 'ok');
  assert.equal(b.kind, 'ok');
  assert.equal((await v.verify(bearer(t1))).kind, 'ok');
  assert.equal(hits, 1, 'one fetch for concurrent and repeated verifications');
  // Key rotation: a token signed by a key the cached set lacks triggers one refetch (after the minimum gap).
  served = { keys: [rsa.jwk, ec.jwk] };
  clock += 2000;
  assert.equal((await v.verify(bearer(await sign(ec, 'ES256')))).kind, 'ok');
  assert.equal(hits, 2);
  // An unknown kid right after a fetch does not refetch (no fetch storms driven by tokens).
  const stranger = await key('ES256', 'nobody');
  assert.equal((await v.verify(bearer(await sign(stranger, 'ES256')))).kind, 'invalid');
  assert.equal(hits, 2);
});

test('an unreachable JWKS rejects tokens with a clear reason', async () => {
  const v = verifier([{ issuer: ISS, jwksUri: jwksUri.replace('/jwks', '/missing') }]);
  const r = await v.verify(bearer(await sign(rsa, 'RS256')));
  assert.equal(r.kind, 'invalid');
  if (r.kind === 'invalid') assert.match(r.reason, /Jwks remote fetch is failed.*404/);
});
