import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';

import { TokenIssuer } from '../../src/identity/token.js';
import { requestCertificate, caMetrics, CaRequestError } from '../../src/identity/ca-service.js';
import { generateKeyAndCsr } from '../../src/identity/keys.js';
import { pemToDers } from '../../src/identity/pem.js';
import { parseCertificate } from '../../src/identity/x509.js';
import { verifySvid, TrustBundle } from '../../src/identity/verify.js';
import { startCa, type TestCa } from './ca-server.js';

let srv: TestCa;
before(async () => {
  srv = await startCa();
});
after(() => srv.close());

const ID = 'spiffe://cluster.local/ns/default/sa/web';

async function refusal(p: Promise<unknown>, code: grpc.status, msg: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CaRequestError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, msg);
    return true;
  });
}

test('the granted identity is signed and returned with the trust bundle', async () => {
  const token = await srv.tokens.create({ namespace: 'default', serviceAccount: 'web' });
  const { csrPem } = await generateKeyAndCsr(ID);
  const signedBefore = caMetrics.signed;
  const res = await requestCertificate(srv.address, token, csrPem, 120);
  assert.equal(res.certChainPem.length, 1);
  assert.equal(res.trustBundlePem, srv.ca.trustBundlePem());
  const leaf = parseCertificate(pemToDers(res.certChainPem[0])[0]);
  assert.deepEqual(leaf.uriSans, [ID]);
  assert.ok(Math.abs(leaf.notAfter.getTime() - Date.now() - 120_000) < 3000);
  assert.equal(verifySvid(pemToDers(res.certChainPem[0]), TrustBundle.fromPem('cluster.local', res.trustBundlePem)).ok, true);
  assert.equal(caMetrics.signed, signedBefore + 1);
  assert.deepEqual(srv.signed.at(-1), ID);
});

test('each signature reports the proxy that asked, the validity and the signing root', async () => {
  const token = await srv.tokens.create({ namespace: 'default', serviceAccount: 'web' });
  const { csrPem } = await generateKeyAndCsr(ID);
  const res = await requestCertificate(srv.address, token, csrPem, 120, 5000, 'node~127.0.0.1~proxy-7');
  const info = srv.signedInfo.at(-1)!;
  assert.equal(info.proxyId, 'node~127.0.0.1~proxy-7');
  const leaf = parseCertificate(pemToDers(res.certChainPem[0])[0]);
  assert.equal(info.notAfter.getTime(), leaf.notAfter.getTime());
  assert.equal(info.notBefore.getTime(), leaf.notBefore.getTime());
  const signing = srv.ca.roots().find((r) => r.signing)!;
  assert.equal(info.rootFingerprint, signing.fingerprint);
  // Without the metadata the proxy is unknown, not guessed.
  await requestCertificate(srv.address, token, csrPem, 120);
  assert.equal(srv.signedInfo.at(-1)!.proxyId, undefined);
});

test('a lifetime above the maximum is shortened; zero gets the default', async () => {
  const token = await srv.tokens.create({ namespace: 'default', serviceAccount: 'web' });
  const { csrPem } = await generateKeyAndCsr(ID);
  const long = await requestCertificate(srv.address, token, csrPem, 10 * 86400);
  const na = parseCertificate(pemToDers(long.certChainPem[0])[0]).notAfter.getTime();
  assert.ok(Math.abs(na - Date.now() - 3600_000) < 3000, 'clamped to maxTtlSeconds (1h in this server)');
});

test('a CSR for another identity is refused with PERMISSION_DENIED', async () => {
  const token = await srv.tokens.create({ namespace: 'default', serviceAccount: 'web' });
  const before = caMetrics.refused.get('permission_denied') ?? 0;
  const { csrPem } = await generateKeyAndCsr('spiffe://cluster.local/ns/default/sa/admin');
  await refusal(
    requestCertificate(srv.address, token, csrPem, 60),
    grpc.status.PERMISSION_DENIED,
    /grants spiffe:\/\/cluster.local\/ns\/default\/sa\/web but the CSR asks for spiffe:\/\/cluster.local\/ns\/default\/sa\/admin/,
  );
  const { csrPem: otherTd } = await generateKeyAndCsr('spiffe://evil.org/ns/default/sa/web');
  await refusal(requestCertificate(srv.address, token, otherTd, 60), grpc.status.PERMISSION_DENIED, /evil.org/);
  assert.equal(caMetrics.refused.get('permission_denied'), before + 2);
  assert.equal(srv.refused.at(-1), 'permission_denied');
});

test('a CSR whose CN names another identity is refused', async () => {
  const { execFileSync } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'trellis-cn-'));
  try {
    const csr = execFileSync(
      'openssl',
      ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-subj', '/CN=spiffe:\\/\\/cluster.local\\/ns\\/default\\/sa\\/admin'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const token = await srv.tokens.create({ namespace: 'default', serviceAccount: 'web' });
    await refusal(requestCertificate(srv.address, token, csr, 60), grpc.status.PERMISSION_DENIED, /CSR asks for spiffe:\/\/cluster.local\/ns\/default\/sa\/admin/);
    const plain = execFileSync(
      'openssl',
      ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k2.pem'), '-subj', '/O=acme'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const ok = await requestCertificate(srv.address, token, plain, 60);
    assert.deepEqual(parseCertificate(pemToDers(ok.certChainPem[0])[0]).uriSans, [ID], 'a CSR asking nothing gets the granted identity');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad, expired, foreign or missing tokens get UNAUTHENTICATED; bad CSRs INVALID_ARGUMENT', async () => {
  const { csrPem } = await generateKeyAndCsr(ID);
  const before = caMetrics.refused.get('unauthenticated') ?? 0;
  await refusal(requestCertificate(srv.address, 'garbage', csrPem, 60), grpc.status.UNAUTHENTICATED, /not a JWT/);
  await refusal(requestCertificate(srv.address, '', csrPem, 60), grpc.status.UNAUTHENTICATED, /missing join token/);
  const foreignDir = mkdtempSync(join(tmpdir(), 'trellis-foreign-'));
  try {
    const foreign = await (await TokenIssuer.loadOrCreate(foreignDir)).create({ namespace: 'default', serviceAccount: 'web' });
    await refusal(requestCertificate(srv.address, foreign, csrPem, 60), grpc.status.UNAUTHENTICATED, /another control plane/);
  } finally {
    rmSync(foreignDir, { recursive: true, force: true });
  }
  const short = await srv.tokens.create({ namespace: 'default', serviceAccount: 'web', ttlSeconds: 1 });
  await new Promise((r) => setTimeout(r, 2100));
  await refusal(requestCertificate(srv.address, short, csrPem, 60), grpc.status.UNAUTHENTICATED, /expired/);
  assert.equal(caMetrics.refused.get('unauthenticated'), before + 4);
  const token = await srv.tokens.create({ namespace: 'default', serviceAccount: 'web' });
  await refusal(requestCertificate(srv.address, token, 'not a csr', 60), grpc.status.INVALID_ARGUMENT, /CERTIFICATE REQUEST/);
});

test('a CA that is not there is reported as unreachable', async () => {
  const { csrPem } = await generateKeyAndCsr(ID);
  await refusal(requestCertificate('127.0.0.1:1', 'x', csrPem, 60, 1000), grpc.status.UNAVAILABLE, /cannot reach the CA at 127.0.0.1:1 \(connect ECONNREFUSED 127.0.0.1:1\)$/);
});

