import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { CertificateAuthority } from '../../src/identity/ca.js';
import { generateKeyAndCsr } from '../../src/identity/keys.js';
import { verifySvid, TrustBundle, tlsOptionsForBundle, peerChainDer, type VerifyResult } from '../../src/identity/verify.js';
import { makeRoot, makeLeaf, type Issued } from './forge.js';

const TD = 'cluster.local';
let dir: string;
let ca: CertificateAuthority;
let forger: Issued;
let bundle: TrustBundle;
let server: tls.Server;
let port: number;
const serverSeen: VerifyResult[] = [];

async function svid(id: string): Promise<{ key: string; cert: string }> {
  const { keyPem, csrPem } = await generateKeyAndCsr(id);
  const { certChainPem } = await ca.signCsr(csrPem, { spiffeId: id, ttlSeconds: 600 });
  return { key: keyPem, cert: certChainPem.join('') };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-tls-'));
  ca = await CertificateAuthority.loadOrCreate({ stateDir: dir, trustDomain: TD });
  // A second root trusted for the same domain, used to sign SVIDs that break the SPIFFE rules
  // while still passing OpenSSL's own chain validation.
  forger = await makeRoot('CN=forger root');
  bundle = new TrustBundle({ [TD]: [ca.trustBundlePem(), forger.certPem] });
  const serverSvid = await svid('spiffe://cluster.local/ns/default/sa/server');
  server = tls.createServer(
    { ...tlsOptionsForBundle(bundle), key: serverSvid.key, cert: serverSvid.cert, requestCert: true, rejectUnauthorized: true },
    (socket) => {
      const r = verifySvid(peerChainDer(socket), bundle);
      serverSeen.push(r);
      if (!r.ok) {
        socket.destroy();
        return;
      }
      socket.end(`hello ${r.spiffeId}\n`);
    },
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

/** Connects with a client certificate; resolves with what the server said, or the error. */
function connect(client: { key: string; cert: string }): Promise<{ data: string; serverId?: string; error?: string }> {
  return new Promise((resolve) => {
    let data = '';
    let serverId: string | undefined;
    const s = tls.connect({ host: '127.0.0.1', port, ...tlsOptionsForBundle(bundle), key: client.key, cert: client.cert });
    s.setTimeout(3000, () => s.destroy(new Error('timeout')));
    s.on('secureConnect', () => {
      const r = verifySvid(peerChainDer(s), bundle);
      serverId = r.ok ? r.spiffeId : undefined;
    });
    s.on('data', (d) => (data += d));
    s.on('error', (e) => resolve({ data, serverId, error: e.message }));
    s.on('close', () => resolve({ data, serverId }));
  });
}

test('a good SVID passes mutual TLS and both sides read each other\'s SPIFFE ID', async () => {
  const r = await connect(await svid('spiffe://cluster.local/ns/default/sa/client'));
  assert.equal(r.data, 'hello spiffe://cluster.local/ns/default/sa/client\n');
  assert.equal(r.serverId, 'spiffe://cluster.local/ns/default/sa/server');
});

test('forged client SVIDs are refused (by OpenSSL or by verifySvid after the handshake)', async () => {
  const cases: [string, () => Promise<Issued>, string | undefined][] = [
    ['two URI SANs', () => makeLeaf(forger, { uris: ['spiffe://cluster.local/ns/a/sa/a', 'spiffe://cluster.local/ns/b/sa/b'] }), 'multiple_uri_sans'],
    ['no URI SAN', () => makeLeaf(forger, { uris: [] }), 'no_uri_san'],
    ['non-critical key usage', () => makeLeaf(forger, { uris: ['spiffe://cluster.local/ns/a/sa/a'], keyUsageCritical: false }), 'key_usage_not_critical'],
    ['wrong trust domain', () => makeLeaf(forger, { uris: ['spiffe://evil.org/ns/a/sa/a'] }), 'trust_domain_mismatch'],
    ['untrusted root', async () => makeLeaf(await makeRoot('CN=stranger'), { uris: ['spiffe://cluster.local/ns/a/sa/a'] }), undefined],
  ];
  for (const [name, make, reason] of cases) {
    const leaf = await make();
    const seen = serverSeen.length;
    const r = await connect({ key: leaf.keyPem, cert: leaf.certPem });
    assert.equal(r.data, '', `${name}: the server must not answer`);
    if (reason) {
      assert.equal(serverSeen.length, seen + 1, `${name}: handshake completes, verifySvid decides`);
      const v = serverSeen[seen];
      assert.equal(!v.ok && v.reason, reason, name);
    } else {
      assert.equal(serverSeen.length, seen, `${name}: OpenSSL refuses the handshake`);
    }
  }
});
