// Benchmark: CertificateAuthority.signCsr throughput (CSR parse + signature check + leaf signing). Run: node --import tsx bench/ca-sign.ts [count] [runs]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../src/identity/ca.js';
import { generateKeyAndCsr } from '../src/identity/keys.js';

const count = Number(process.argv[2] ?? 5000);
const runs = Number(process.argv[3] ?? 5);
const dir = mkdtempSync(join(tmpdir(), 'trellis-bench-'));
try {
  const ca = await CertificateAuthority.loadOrCreate({ stateDir: dir, trustDomain: 'cluster.local' });
  const csrs: { id: string; csr: string }[] = [];
  for (let i = 0; i < 100; i++) {
    const id = `spiffe://cluster.local/ns/bench/sa/w${i}`;
    csrs.push({ id, csr: (await generateKeyAndCsr(id)).csrPem });
  }
  for (let i = 0; i < 200; i++) await ca.signCsr(csrs[i % 100].csr, { spiffeId: csrs[i % 100].id, ttlSeconds: 3600 });
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      const c = csrs[i % csrs.length];
      await ca.signCsr(c.csr, { spiffeId: c.id, ttlSeconds: 3600 });
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    rates.push(count / secs);
    console.log(`run ${r + 1}: ${Math.round(count / secs)} CSR/s`);
  }
  rates.sort((a, b) => a - b);
  console.log(`median: ${Math.round(rates[Math.floor(rates.length / 2)])} CSR/s (${count} signatures per run, ${runs} runs, node ${process.version})`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
