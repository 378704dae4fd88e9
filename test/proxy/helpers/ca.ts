// A throwaway CA for tests: the identity module's CA in a temp dir, issuing SVIDs as static identities.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../../src/identity/ca.js';
import { generateKeyAndCsr } from '../../../src/identity/keys.js';
import type { StaticIdentity } from '../../../src/proxy/tls/identity.js';

export interface TestCa {
  trustDomain: string;
  authority: CertificateAuthority;
  dir: string;
  bundlePem: string;
  issue(namespace: string, serviceAccount: string, ttlSeconds?: number): Promise<StaticIdentity & { spiffeId: string }>;
  cleanup(): void;
}

export async function createTestCa(trustDomain = 'cluster.local'): Promise<TestCa> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-proxy-ca-'));
  const ca = await CertificateAuthority.loadOrCreate({ stateDir: dir, trustDomain });
  return {
    trustDomain,
    authority: ca,
    dir,
    bundlePem: ca.trustBundlePem(),
    async issue(ns, sa, ttlSeconds = 3600) {
      const spiffeId = `spiffe://${trustDomain}/ns/${ns}/sa/${sa}`;
      const { keyPem, csrPem } = await generateKeyAndCsr(spiffeId);
      const { certChainPem } = await ca.signCsr(csrPem, { spiffeId, ttlSeconds });
      return { spiffeId, keyPem, certChainPem, trustBundlePem: ca.trustBundlePem() };
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
