import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { TokenIssuer, TokenError, parseDuration, peekTokenClaims } from '../../src/identity/token.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'trellis-tok-'));
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function rejectsWith(p: Promise<unknown>, reason: string, msg?: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof TokenError, `not a TokenError: ${e}`);
    assert.equal(e.reason, reason, e.message);
    if (msg) assert.match(e.message, msg);
    return true;
  });
}

test('parseDuration', () => {
  const ok: [string, number][] = [['24h', 86400], ['30m', 1800], ['90s', 90], ['7d', 604800], ['1h30m', 5400], ['45', 45], ['1w', 604800], ['500ms', 0.5]];
  for (const [s, n] of ok) assert.equal(parseDuration(s), n, s);
  for (const s of ['', 'h', '10x', '1h 30m', '-5s', '1.5.5h', 'abc']) assert.throws(() => parseDuration(s), /invalid duration/, s);
});

test('a created token verifies and grants its namespace and service account; key file is 0600 and reused', async () => {
  const dir = tmp();
  const issuer = await TokenIssuer.loadOrCreate(dir);
  assert.equal(statSync(join(dir, 'token-key.pem')).mode & 0o777, 0o600);
  const token = await issuer.create({ namespace: 'default', serviceAccount: 'web', ttlSeconds: 600, trustDomain: 'cluster.local' });
  const same = await TokenIssuer.loadOrCreate(dir);
  const grant = await same.verify(token);
  assert.equal(grant.namespace, 'default');
  assert.equal(grant.serviceAccount, 'web');
  assert.equal(grant.trustDomain, 'cluster.local');
  assert.ok(Math.abs(grant.expiresAt.getTime() - Date.now() - 600_000) < 2000);
  assert.deepEqual(peekTokenClaims(token).serviceAccount, 'web');
  const dflt = await issuer.verify(await issuer.create({ namespace: 'a', serviceAccount: 'b' }));
  assert.ok(Math.abs(dflt.expiresAt.getTime() - Date.now() - 86400_000) < 2000, 'default 24h');
});

test('bad tokens are refused with a clear reason', async () => {
  const dir = tmp();
  const issuer = await TokenIssuer.loadOrCreate(dir);
  const other = await TokenIssuer.loadOrCreate(tmp());
  const good = await issuer.create({ namespace: 'default', serviceAccount: 'web' });

  await rejectsWith(issuer.verify('not-a-token'), 'malformed');
  await rejectsWith(issuer.verify('a.b.c'), 'malformed');

  const [h, p, s] = good.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  claims.sa = 'admin';
  const tampered = [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), s].join('.');
  await rejectsWith(issuer.verify(tampered), 'bad_signature', /does not verify/);

  await rejectsWith(issuer.verify(await other.create({ namespace: 'default', serviceAccount: 'web' })), 'wrong_issuer', /another control plane/);

  // Signed with our key but with an expiry in the past / another issuer claim.
  const key = (await import('node:crypto')).createPrivateKey((await import('node:fs')).readFileSync(join(dir, 'token-key.pem'), 'utf8'));
  const now = Math.floor(Date.now() / 1000);
  const expired = await new SignJWT({ ns: 'default', sa: 'web' })
    .setProtectedHeader({ alg: 'ES256', kid: issuer.keyId })
    .setIssuer('trellis')
    .setAudience('trellis-ca')
    .setIssuedAt(now - 7200)
    .setExpirationTime(now - 3600)
    .sign(key);
  await rejectsWith(issuer.verify(expired), 'expired', /expired at .*`trellis token create`/);
  const foreign = await new SignJWT({ ns: 'default', sa: 'web' })
    .setProtectedHeader({ alg: 'ES256', kid: issuer.keyId })
    .setIssuer('someone-else')
    .setAudience('trellis-ca')
    .setExpirationTime(now + 3600)
    .sign(key);
  await rejectsWith(issuer.verify(foreign), 'wrong_issuer', /"iss"/);
  const noClaims = await new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: issuer.keyId })
    .setIssuer('trellis')
    .setAudience('trellis-ca')
    .setExpirationTime(now + 3600)
    .sign(key);
  await rejectsWith(issuer.verify(noClaims), 'invalid_claims');
  const hs = await new SignJWT({ ns: 'default', sa: 'web' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('trellis')
    .setAudience('trellis-ca')
    .setExpirationTime(now + 3600)
    .sign(new Uint8Array(32));
  await assert.rejects(issuer.verify(hs), TokenError);
});

test('invalid grants and missing keys are refused', async () => {
  const dir = tmp();
  const issuer = await TokenIssuer.loadOrCreate(dir);
  await assert.rejects(issuer.create({ namespace: 'a/b', serviceAccount: 'web' }), /invalid namespace/);
  await assert.rejects(issuer.create({ namespace: 'a', serviceAccount: '' }), /invalid service account/);
  await assert.rejects(issuer.create({ namespace: 'a', serviceAccount: 'b', ttlSeconds: -1 }), /positive/);
  await assert.rejects(TokenIssuer.load(tmp()), /no token signing key/);
});
