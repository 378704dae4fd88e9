// The proxy's half of root rotation: a certificate that does not chain to the bundle's first root is re-issued (spread, retried, never for static sources).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/identity/ca.js';
import { generateKeyAndCsr } from '../../src/identity/keys.js';
import { chainsToFirstRoot, WorkloadTls, REISSUE_SPREAD_MS } from '../../src/proxy/tls/identity.js';

const ID = 'spiffe://cluster.local/ns/default/sa/a';

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-rotp-'));
  const ca = await CertificateAuthority.loadOrCreate({ stateDir: dir, trustDomain: 'cluster.local' });
  const { keyPem, csrPem } = await generateKeyAndCsr(ID);
  const issue = async () => {
    const s = await ca.signCsr(csrPem, { spiffeId: ID, ttlSeconds: 600 });
    return { keyPem, certChainPem: s.certChainPem, trustBundlePem: ca.trustBundlePem(), notAfter: s.notAfter, notBefore: s.notBefore };
  };
  return { ca, issue, done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A certificate source like CertificateManager: renewNow() re-issues from the CA after a short delay. */
class FakeManager extends EventEmitter {
  renewals = 0;
  constructor(
    public material: Awaited<ReturnType<Awaited<ReturnType<typeof setup>>['issue']>>,
    private readonly issue: () => Promise<FakeManager['material']>,
  ) {
    super();
  }
  current() {
    return this.material;
  }
  renewNow() {
    this.renewals++;
    void this.issue().then((m) => {
      this.material = m;
      this.emit('rotated', m);
    });
  }
}

test('chainsToFirstRoot follows the bundle order', async () => {
  const { ca, issue, done } = await setup();
  try {
    const oldLeaf = (await issue()).certChainPem;
    const added = await ca.addRoot();
    const bundleOldFirst = ca.trustBundlePem();
    assert.equal(chainsToFirstRoot(oldLeaf, bundleOldFirst), true);
    await ca.setSigningRoot(added.fingerprint);
    const bundleNewFirst = ca.trustBundlePem();
    assert.equal(chainsToFirstRoot(oldLeaf, bundleNewFirst), false);
    assert.equal(chainsToFirstRoot((await issue()).certChainPem, bundleNewFirst), true);
    assert.equal(chainsToFirstRoot(oldLeaf, 'not pem'), undefined);
    assert.equal(chainsToFirstRoot([], bundleNewFirst), undefined);
  } finally {
    done();
  }
});

test('a bundle whose first root is not the certificate\'s: one re-issue within the spread; then quiet', async () => {
  const { ca, issue, done } = await setup();
  try {
    const src = new FakeManager(await issue(), issue);
    const tls = new WorkloadTls(ID, 'cluster.local', src as never);
    const added = await ca.addRoot();
    tls.setTrustBundle(ca.trustBundlePem()); // old root still first: nothing to do
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(src.renewals, 0);
    await ca.setSigningRoot(added.fingerprint);
    const t0 = Date.now();
    const keepAlive = setInterval(() => undefined, 1000); // the re-issue timer is unref'd, as in a proxy
    tls.setTrustBundle(ca.trustBundlePem());
    tls.setTrustBundle(ca.trustBundlePem() + '\n'); // a second push before the timer fires: still one request
    await new Promise<void>((resolve) => src.once('rotated', () => resolve()));
    clearInterval(keepAlive);
    assert.ok(Date.now() - t0 <= REISSUE_SPREAD_MS + 500);
    assert.equal(src.renewals, 1);
    assert.equal(tls.reissues, 1);
    assert.equal(chainsToFirstRoot(src.current().certChainPem, ca.trustBundlePem()), true);
    const gen = tls.generation;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(src.renewals, 1, 'the new certificate matches: no more requests');
    assert.ok(tls.generation >= gen);
    tls.close();
  } finally {
    done();
  }
});

test('a re-issue that raced the switch and came back from the old root is asked again, spaced', async () => {
  const { ca, issue, done } = await setup();
  const saved = [WorkloadTls.reissueSpreadMs, WorkloadTls.reissueRetryMs];
  WorkloadTls.reissueSpreadMs = 20;
  WorkloadTls.reissueRetryMs = 200;
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    const stale = await issue(); // signed by the old root, handed out by the first renewal
    let first = true;
    const src = new FakeManager(await issue(), async () => (first ? ((first = false), stale) : issue()));
    const tls = new WorkloadTls(ID, 'cluster.local', src as never);
    await ca.setSigningRoot((await ca.addRoot()).fingerprint);
    const t0 = Date.now();
    tls.setTrustBundle(ca.trustBundlePem());
    await new Promise<void>((resolve) => src.on('rotated', () => src.renewals === 2 && resolve()));
    assert.ok(Date.now() - t0 >= 200, 'the second request waited for the retry spacing');
    assert.equal(chainsToFirstRoot(src.current().certChainPem, ca.trustBundlePem()), true);
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(src.renewals, 2);
    tls.close();
  } finally {
    clearInterval(keepAlive);
    [WorkloadTls.reissueSpreadMs, WorkloadTls.reissueRetryMs] = saved;
    done();
  }
});

test('a static certificate source (no renewNow) is left alone', async () => {
  const { ca, issue, done } = await setup();
  try {
    const m = await issue();
    const src = Object.assign(new EventEmitter(), { current: () => m });
    const tls = new WorkloadTls(ID, 'cluster.local', src as never);
    const added = await ca.addRoot();
    await ca.setSigningRoot(added.fingerprint);
    tls.setTrustBundle(ca.trustBundlePem());
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(tls.reissues, 0);
    tls.close();
  } finally {
    done();
  }
});
