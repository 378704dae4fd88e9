import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority, CaError } from '../../src/identity/ca.js';
import { generateKeyAndCsr, buildCsr } from '../../src/identity/keys.js';
import { verifySvid, TrustBundle } from '../../src/identity/verify.js';
import { pemToDers } from '../../src/identity/pem.js';
import { parseCertificate } from '../../src/identity/x509.js';
import { CsrError } from '../../src/identity/csr.js';
import { makeRoot, makeIntermediate } from './forge.js';
import { generateKeyPairSync } from 'node:crypto';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'trellis-ca-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const ID = 'spiffe://cluster.local/ns/default/sa/web';

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

test('first start creates a P-256 root for 10 years, key file 0600, and reloads the same root', async () => {
  const dir = tmp();
  const ca = await CertificateAuthority.loadOrCreate({ stateDir: dir, trustDomain: 'cluster.local' });
  const [root] = ca.roots();
  const years = (root.notAfter.getTime() - Date.now()) / (365.25 * 86400_000);
  assert.ok(years > 9.9 && years < 10.1, `root lifetime ${years} years`);
  const keyFile = readdirSync(join(dir, 'ca')).find((f) => f.endsWith('.key'))!;
  assert.equal(statSync(join(dir, 'ca', keyFile)).mode & 0o777, 0o600);
  const text = openssl(['x509', '-noout', '-text', '-in', join(dir, 'ca', keyFile.replace('.key', '.pem'))]);
  assert.match(text, /NIST CURVE: P-256/);
  assert.match(text, /CA:TRUE/);
  assert.match(text, /Certificate Sign, CRL Sign/);
  const again = await CertificateAuthority.loadOrCreate({ stateDir: dir, trustDomain: 'cluster.local' });
  assert.equal(again.roots()[0].fingerprint, root.fingerprint);
  assert.equal(again.trustBundlePem(), ca.trustBundlePem());
});

test('issued leaves pass `openssl verify` and carry the SVID profile', async () => {
  const dir = tmp();
  const ca = await CertificateAuthority.loadOrCreate({ stateDir: dir, trustDomain: 'cluster.local' });
  const { csrPem } = await generateKeyAndCsr(ID);
  const before = Date.now();
  const { certChainPem, notAfter } = await ca.signCsr(csrPem, { spiffeId: ID, ttlSeconds: 3600 });
  assert.equal(certChainPem.length, 1);
  writeFileSync(join(dir, 'leaf.pem'), certChainPem[0]);
  writeFileSync(join(dir, 'bundle.pem'), ca.trustBundlePem());
  assert.match(openssl(['verify', '-CAfile', join(dir, 'bundle.pem'), join(dir, 'leaf.pem')]), /leaf.pem: OK/);
  const text = openssl(['x509', '-noout', '-text', '-in', join(dir, 'leaf.pem')]);
  assert.match(text, /X509v3 Subject Alternative Name: *\n\s*URI:spiffe:\/\/cluster.local\/ns\/default\/sa\/web\s*\n/);
  assert.match(text, /X509v3 Basic Constraints: critical\s*\n\s*CA:FALSE/);
  assert.match(text, /X509v3 Key Usage: critical\s*\n\s*Digital Signature\s*\n/);
  assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
  assert.match(text, /Subject: O = trellis\n/);
  const info = parseCertificate(pemToDers(certChainPem[0])[0]);
  assert.deepEqual(info.uriSans, [ID]);
  assert.deepEqual(info.dnsSans, []);
  assert.ok(Math.abs(info.notBefore.getTime() - (before - 300_000)) < 3000, 'notBefore back-dated 5 minutes');
  assert.ok(Math.abs(notAfter.getTime() - (before + 3600_000)) < 3000);
  assert.equal(info.notAfter.getTime(), notAfter.getTime());
  const other = parseCertificate(pemToDers((await ca.signCsr(csrPem, { spiffeId: ID, ttlSeconds: 60 })).certChainPem[0])[0]);
  assert.notEqual(other.serialHex, info.serialHex, 'random serials');
  const bundle = TrustBundle.fromPem('cluster.local', ca.trustBundlePem());
  assert.deepEqual(verifySvid(pemToDers(certChainPem[0]), bundle), { ok: true, spiffeId: ID, trustDomain: 'cluster.local' });
});

test('the CA issues exactly the granted identity, ignoring what the CSR asks for; defaults to 24h', async () => {
  const ca = await CertificateAuthority.loadOrCreate({ stateDir: tmp(), trustDomain: 'cluster.local' });
  const { csrPem } = await generateKeyAndCsr('spiffe://cluster.local/ns/kube-system/sa/admin');
  const { certChainPem, notAfter } = await ca.signCsr(csrPem, { spiffeId: ID });
  assert.deepEqual(parseCertificate(pemToDers(certChainPem[0])[0]).uriSans, [ID]);
  assert.ok(Math.abs(notAfter.getTime() - Date.now() - 86400_000) < 5000);
  await assert.rejects(ca.signCsr(csrPem, { spiffeId: 'spiffe://other.td/ns/a/sa/b' }), CaError);
  await assert.rejects(ca.signCsr(csrPem, { spiffeId: 'not-an-id' }));
});

test('an invalid trust domain is refused at start', async () => {
  for (const td of ['', 'Cluster.local', 'a/b', 'td:80']) {
    await assert.rejects(CertificateAuthority.loadOrCreate({ stateDir: tmp(), trustDomain: td }), /cannot start the CA: .*trust domain/, td);
  }
});

test('CSRs with a bad signature, garbage or weak keys are refused', async () => {
  const ca = await CertificateAuthority.loadOrCreate({ stateDir: tmp(), trustDomain: 'cluster.local' });
  const a = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const b = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const mismatched = buildCsr(ID, a.privateKey, b.publicKey);
  await assert.rejects(ca.signCsr(mismatched, { spiffeId: ID }), (e: Error) => e instanceof CsrError && /signature does not verify/.test(e.message));
  await assert.rejects(ca.signCsr('hello', { spiffeId: ID }), CsrError);
  const junk = '-----BEGIN CERTIFICATE REQUEST-----\nMIIBAAAA\n-----END CERTIFICATE REQUEST-----\n';
  await assert.rejects(ca.signCsr(junk, { spiffeId: ID }), /malformed CSR/);
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
  await assert.rejects(ca.signCsr(buildCsrRsa(weak.privateKey, weak.publicKey), { spiffeId: ID }), /not accepted/);
});

// An RSA CSR via openssl-compatible encoding: reuse buildCsr but it signs with sha256 + ECDSA OID, so build with openssl instead.
function buildCsrRsa(priv: import('node:crypto').KeyObject, _pub: import('node:crypto').KeyObject): string {
  const dir = tmp();
  writeFileSync(join(dir, 'k.pem'), priv.export({ format: 'pem', type: 'pkcs8' }));
  return openssl(['req', '-new', '-key', join(dir, 'k.pem'), '-subj', '/O=x', '-sha256']);
}

test('an operator-provided intermediate signs, and issued chains include it', async () => {
  const dir = tmp();
  const root = await makeRoot('CN=operator root');
  const mid = await makeIntermediate(root, 'CN=operator intermediate');
  writeFileSync(join(dir, 'chain.pem'), mid.certPem + root.certPem);
  writeFileSync(join(dir, 'mid.key'), mid.keyPem);
  writeFileSync(join(dir, 'root.pem'), root.certPem);
  const ca = await CertificateAuthority.loadOrCreate({
    stateDir: dir,
    trustDomain: 'cluster.local',
    caCertFile: join(dir, 'chain.pem'),
    caKeyFile: join(dir, 'mid.key'),
  });
  assert.equal(ca.roots().length, 1);
  assert.equal(ca.intermediates().length, 1);
  assert.equal(pemToDers(ca.trustBundlePem())[0].equals(root.der), true);
  const { csrPem } = await generateKeyAndCsr(ID);
  const { certChainPem } = await ca.signCsr(csrPem, { spiffeId: ID, ttlSeconds: 600 });
  assert.equal(certChainPem.length, 2);
  writeFileSync(join(dir, 'leaf.pem'), certChainPem[0]);
  writeFileSync(join(dir, 'untrusted.pem'), certChainPem[1]);
  assert.match(openssl(['verify', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'untrusted.pem'), join(dir, 'leaf.pem')]), /OK/);
  const bundle = TrustBundle.fromPem('cluster.local', ca.trustBundlePem());
  const chain = certChainPem.flatMap((p) => pemToDers(p));
  assert.equal(verifySvid(chain, bundle).ok, true);
  await assert.rejects(ca.addRoot(), /operator/);
});

test('an operator-provided RSA root signs directly (openssl-made)', async () => {
  const dir = tmp();
  openssl([
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'root.key'), '-out', join(dir, 'root.pem'),
    '-subj', '/O=operator/CN=rsa root', '-days', '2',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const ca = await CertificateAuthority.loadOrCreate({
    stateDir: dir,
    trustDomain: 'cluster.local',
    caCertFile: join(dir, 'root.pem'),
    caKeyFile: join(dir, 'root.key'),
  });
  assert.deepEqual(ca.intermediates(), []);
  const { csrPem } = await generateKeyAndCsr(ID);
  const { certChainPem, notAfter } = await ca.signCsr(csrPem, { spiffeId: ID, ttlSeconds: 10 * 86400 });
  assert.equal(certChainPem.length, 1);
  assert.ok(notAfter.getTime() <= ca.roots()[0].notAfter.getTime(), 'a leaf never outlives its CA');
  writeFileSync(join(dir, 'leaf.pem'), certChainPem[0]);
  assert.match(openssl(['verify', '-CAfile', join(dir, 'root.pem'), join(dir, 'leaf.pem')]), /OK/);
  assert.match(openssl(['x509', '-noout', '-text', '-in', join(dir, 'leaf.pem')]), /Signature Algorithm: sha256WithRSAEncryption/);
  assert.equal(verifySvid(pemToDers(certChainPem[0]), TrustBundle.fromPem('cluster.local', ca.trustBundlePem())).ok, true);
});

test('operator CA files that do not fit are refused with the file named', async () => {
  const dir = tmp();
  const root = await makeRoot('CN=r');
  const mid = await makeIntermediate(root, 'CN=m');
  writeFileSync(join(dir, 'mid-only.pem'), mid.certPem);
  writeFileSync(join(dir, 'mid.key'), mid.keyPem);
  writeFileSync(join(dir, 'root.key'), root.keyPem);
  writeFileSync(join(dir, 'chain.pem'), mid.certPem + root.certPem);
  const load = (cert: string, key: string) =>
    CertificateAuthority.loadOrCreate({ stateDir: dir, trustDomain: 'cluster.local', caCertFile: join(dir, cert), caKeyFile: join(dir, key) });
  await assert.rejects(load('mid-only.pem', 'mid.key'), /mid-only.pem: the chain must end with its self-signed root/);
  await assert.rejects(load('chain.pem', 'root.key'), /root.key: the key does not belong/);
  await assert.rejects(load('missing.pem', 'mid.key'), /missing.pem: cannot read/);
  await assert.rejects(load('chain.pem', 'missing.key'), /missing.key: cannot read the CA private key \(no such file\)/);
  await assert.rejects(
    CertificateAuthority.loadOrCreate({ stateDir: dir, trustDomain: 'cluster.local', caCertFile: join(dir, 'chain.pem') }),
    /both/,
  );
});

test('root rotation: add, switch signing root, retire; persisted', async () => {
  const dir = tmp();
  const ca = await CertificateAuthority.loadOrCreate({ stateDir: dir, trustDomain: 'cluster.local' });
  const oldFp = ca.roots()[0].fingerprint;
  const { csrPem } = await generateKeyAndCsr(ID);
  const oldLeaf = pemToDers((await ca.signCsr(csrPem, { spiffeId: ID, ttlSeconds: 600 })).certChainPem[0]);
  let changed = 0;
  ca.on('changed', () => changed++);

  const added = await ca.addRoot();
  assert.equal(ca.roots().length, 2);
  assert.equal(pemToDers(ca.trustBundlePem()).length, 2, 'bundle holds both roots');
  assert.equal(ca.roots().find((r) => r.signing)!.fingerprint, oldFp, 'adding does not switch signing');
  await ca.setSigningRoot(added.fingerprint.slice(0, 12));
  const newLeaf = pemToDers((await ca.signCsr(csrPem, { spiffeId: ID, ttlSeconds: 600 })).certChainPem[0]);
  let bundle = TrustBundle.fromPem('cluster.local', ca.trustBundlePem());
  assert.equal(verifySvid(oldLeaf, bundle).ok, true, 'old root still trusted');
  assert.equal(verifySvid(newLeaf, bundle).ok, true, 'new root trusted');
  await assert.rejects(ca.retireRoot(added.fingerprint), /still signs/);
  await assert.rejects(ca.setSigningRoot('zzzz'), /no trusted root/);

  const reloaded = await CertificateAuthority.loadOrCreate({ stateDir: dir, trustDomain: 'cluster.local' });
  assert.equal(reloaded.roots().length, 2);
  assert.equal(reloaded.roots().find((r) => r.signing)!.fingerprint, added.fingerprint);

  await ca.retireRoot(oldFp);
  assert.equal(changed, 3);
  bundle = TrustBundle.fromPem('cluster.local', ca.trustBundlePem());
  const r = verifySvid(oldLeaf, bundle);
  assert.equal(!r.ok && r.reason, 'untrusted_chain');
  assert.equal(verifySvid(newLeaf, bundle).ok, true);
  assert.equal(readdirSync(join(dir, 'ca')).filter((f) => f.endsWith('.key')).length, 1, 'retired key deleted');
  const third = await CertificateAuthority.loadOrCreate({ stateDir: dir, trustDomain: 'cluster.local' });
  assert.deepEqual(third.roots().map((x) => x.fingerprint), [added.fingerprint]);
});
