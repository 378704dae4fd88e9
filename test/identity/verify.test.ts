import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { makeRoot, makeLeaf, makeIntermediate, EKU, KUF, type Issued, type LeafSpec } from './forge.js';
import { verifySvid, TrustBundle, verifyFailures, type VerifyFailure } from '../../src/identity/verify.js';

const TD = 'example.org';
let root: Issued;
let other: Issued;
let bundle: TrustBundle;

before(async () => {
  root = await makeRoot('CN=trusted root');
  other = await makeRoot('CN=untrusted root');
  bundle = new TrustBundle({ [TD]: [root.certPem], 'other.org': [other.certPem] });
});

const hour = 3600_000;

test('a well-formed SVID from a trusted root is accepted, with and without the root in the chain', async () => {
  const leaf = await makeLeaf(root);
  assert.deepEqual(verifySvid([leaf.der], bundle), { ok: true, spiffeId: 'spiffe://example.org/ns/default/sa/web', trustDomain: TD });
  assert.equal(verifySvid([leaf.der, root.der], bundle).ok, true);
  assert.equal(verifySvid([leaf.der], bundle, { expectedTrustDomain: TD }).ok, true);
});

test('an SVID through an intermediate is accepted only with the intermediate', async () => {
  const mid = await makeIntermediate(root);
  const leaf = await makeLeaf(mid);
  assert.equal(verifySvid([leaf.der, mid.der], bundle).ok, true);
  const r = verifySvid([leaf.der], bundle);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.reason, 'untrusted_chain');
});

test('forged and broken certificates are each rejected with their reason', async () => {
  type Row = [VerifyFailure, () => Promise<Buffer[]>, { expectedTrustDomain?: string }?];
  const leafChain = (spec: LeafSpec, issuer: () => Issued = () => root) => async () => [(await makeLeaf(issuer(), spec)).der];
  const rows: Row[] = [
    ['no_certificate', async () => []],
    ['multiple_uri_sans', leafChain({ uris: ['spiffe://example.org/ns/a/sa/a', 'spiffe://example.org/ns/b/sa/b'] })],
    ['no_uri_san', leafChain({ uris: [] })],
    ['invalid_spiffe_id', leafChain({ uris: ['https://example.org/ns/a/sa/b'] })],
    ['invalid_spiffe_id', leafChain({ uris: ['spiffe://example.org/ns/../sa/b'] })],
    ['invalid_spiffe_id', leafChain({ uris: ['spiffe://Example.org/ns/a/sa/b'] })],
    ['invalid_spiffe_id', leafChain({ uris: ['spiffe://example.org'] })],
    ['leaf_is_ca', leafChain({ ca: true })],
    ['leaf_key_cert_sign', leafChain({ keyUsage: KUF.digitalSignature | KUF.keyCertSign })],
    ['leaf_key_cert_sign', leafChain({ keyUsage: KUF.digitalSignature | KUF.cRLSign })],
    ['key_usage_missing', leafChain({ keyUsage: null })],
    ['key_usage_missing', leafChain({ keyUsage: KUF.keyEncipherment })],
    ['key_usage_not_critical', leafChain({ keyUsageCritical: false })],
    ['eku_missing_auth', leafChain({ eku: [EKU.server] })],
    ['eku_missing_auth', leafChain({ eku: [EKU.client] })],
    ['expired', leafChain({ notBefore: new Date(Date.now() - 3 * hour), notAfter: new Date(Date.now() - hour) })],
    ['not_yet_valid', leafChain({ notBefore: new Date(Date.now() + hour), notAfter: new Date(Date.now() + 3 * hour) })],
    ['untrusted_chain', leafChain({}, () => other)],
    ['untrusted_chain', async () => [(await makeLeaf(await makeRoot('CN=trusted root'))).der]],
    ['trust_domain_mismatch', leafChain({ uris: ['spiffe://unknown.org/ns/a/sa/b'] })],
    ['trust_domain_mismatch', leafChain({}), { expectedTrustDomain: 'other.org' }],
  ];
  for (const [reason, make, opts] of rows) {
    const chain = await make();
    const before = verifyFailures.get(reason) ?? 0;
    const r = verifySvid(chain, bundle, opts);
    assert.equal(r.ok, false, `${reason}: accepted`);
    if (!r.ok) {
      assert.equal(r.reason, reason, `expected ${reason}, got ${r.reason}: ${r.detail}`);
      assert.ok(r.detail.length > 0);
    }
    assert.equal(verifyFailures.get(reason), before + 1, `${reason} counted`);
  }
});

test('a leaf from another trust domain\'s root is refused even though that root is trusted for its own domain', async () => {
  // Signed by other.org's root but claiming example.org: the trust domain is chosen from the leaf first.
  const leaf = await makeLeaf(other, { uris: ['spiffe://example.org/ns/a/sa/b'] });
  const r = verifySvid([leaf.der], bundle);
  assert.equal(!r.ok && r.reason, 'untrusted_chain');
  const ok = await makeLeaf(other, { uris: ['spiffe://other.org/ns/a/sa/b'] });
  assert.equal(verifySvid([ok.der], bundle).ok, true);
});

test('an EKU-less SVID is accepted (SPIFFE allows omitting it); garbage DER is refused, not thrown', async () => {
  const leaf = await makeLeaf(root, { eku: null });
  assert.equal(verifySvid([leaf.der], bundle).ok, true);
  const r = verifySvid([Buffer.from([0x30, 0x82, 0xff, 0xff, 0x01])], bundle);
  assert.equal(!r.ok && r.reason, 'untrusted_chain');
});

test('the `now` option moves the validity check, also on the cached path', async () => {
  const leaf = await makeLeaf(root);
  assert.equal(verifySvid([leaf.der], bundle).ok, true);
  const r = verifySvid([leaf.der], bundle, { now: new Date(Date.now() + 2 * hour) });
  assert.equal(!r.ok && r.reason, 'expired');
});

test('TrustBundle exposes roots per trust domain', () => {
  assert.equal(bundle.rootsFor(TD).length, 1);
  assert.deepEqual(bundle.rootsFor('nope'), []);
  assert.deepEqual(bundle.trustDomains().sort(), ['example.org', 'other.org']);
  assert.equal(TrustBundle.fromPem(TD, root.certPem + other.certPem).rootsFor(TD).length, 2);
});
