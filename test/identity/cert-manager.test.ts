import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CertificateAuthority } from '../../src/identity/ca.js';
import { CertificateManager, certificateExpiry, type CertificateMaterial } from '../../src/identity/cert-manager.js';
import { CaRequestError, requestCertificate, type CertificateResponse } from '../../src/identity/ca-service.js';
import { parseCsr } from '../../src/identity/csr.js';
import { startCa } from './ca-server.js';

const ID = 'spiffe://cluster.local/ns/default/sa/web';
let dir: string;
let ca: CertificateAuthority;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-cm-'));
  ca = await CertificateAuthority.loadOrCreate({ stateDir: dir, trustDomain: 'cluster.local' });
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** An in-process CA the test can switch off and on; records when each request arrived. */
function fakeCa() {
  const state = { up: true, calls: [] as number[] };
  const request: typeof requestCertificate = async (_addr, token, csrPem, ttl): Promise<CertificateResponse> => {
    state.calls.push(Date.now());
    assert.equal(token, 'tok');
    if (!state.up) throw new CaRequestError(grpc.status.UNAVAILABLE, 'cannot reach the CA');
    const csr = parseCsr(csrPem);
    assert.deepEqual(csr.uriSans, [ID]);
    const { certChainPem } = await ca.signCsr(csr, { spiffeId: ID, ttlSeconds: ttl });
    return { certChainPem, trustBundlePem: ca.trustBundlePem() };
  };
  return { state, request };
}

test('renews at about half-life, keeps serving while the CA is down, recovers when it is back', async () => {
  const { state, request } = fakeCa();
  const m = new CertificateManager({
    caAddress: 'unused',
    token: 'tok',
    spiffeId: ID,
    ttlSeconds: 3,
    jitterFraction: 0,
    minBackoffMs: 100,
    maxBackoffMs: 200,
    request,
  });
  const rotated: CertificateMaterial[] = [];
  const failures: { attempt: number; retryInMs: number }[] = [];
  m.on('rotated', (x) => rotated.push(x));
  m.on('renewFailed', (f) => failures.push(f));
  try {
    await m.start();
    const received = Date.now();
    const first = m.current()!;
    assert.ok(first);
    assert.match(first.keyPem, /BEGIN PRIVATE KEY/);
    assert.ok(first.notAfter.getTime() - received <= 3000);
    // Renewal at half of the remaining lifetime (the CA rounds notAfter down to whole seconds).
    const halfLife = received + (first.notAfter.getTime() - received) / 2;
    await waitFor(() => rotated.length >= 2, 4000);
    const off = state.calls[1] - halfLife;
    assert.ok(Math.abs(off) < 300, `renewed ${off}ms away from half-life`);
    assert.notEqual(m.current()!.keyPem, first.keyPem, 'a fresh key every renewal');

    state.up = false;
    const beforeDown = m.current()!;
    await waitFor(() => failures.length >= 3, 4000);
    assert.equal(m.current(), beforeDown, 'keeps serving the last certificate');
    assert.deepEqual(failures.slice(0, 2).map((f) => f.attempt), [1, 2]);
    assert.ok(failures[1].retryInMs >= failures[0].retryInMs, 'backoff grows');

    state.up = true;
    const n = rotated.length;
    await waitFor(() => rotated.length > n, 2000);
    assert.notEqual(m.current(), beforeDown);
  } finally {
    m.stop();
  }
  const calls = state.calls.length;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(state.calls.length, calls, 'no requests after stop()');
});

test('start() retries until the CA answers', async () => {
  const { state, request } = fakeCa();
  state.up = false;
  const m = new CertificateManager({ caAddress: 'x', token: 'tok', spiffeId: ID, minBackoffMs: 50, maxBackoffMs: 100, request });
  let failed = 0;
  m.on('renewFailed', () => failed++);
  setTimeout(() => (state.up = true), 250);
  try {
    await m.start();
    assert.ok(failed >= 2, `failed ${failed} times first`);
    assert.ok(m.current());
  } finally {
    m.stop();
  }
});

test('stop() before the first certificate rejects start()', async () => {
  const { state, request } = fakeCa();
  state.up = false;
  const m = new CertificateManager({ caAddress: 'x', token: 'tok', spiffeId: ID, minBackoffMs: 50, request });
  m.on('renewFailed', () => undefined);
  const p = m.start();
  setTimeout(() => m.stop(), 100);
  await assert.rejects(p, /stopped/);
});

test('against the real gRPC service', async () => {
  const srv = await startCa();
  try {
    const token = await srv.tokens.create({ namespace: 'default', serviceAccount: 'web' });
    const m = new CertificateManager({ caAddress: srv.address, token, spiffeId: ID, ttlSeconds: 600 });
    await m.start();
    const cur = m.current()!;
    m.stop();
    assert.equal(cur.trustBundlePem, srv.ca.trustBundlePem());
    const exp = certificateExpiry(cur.certChainPem[0]);
    assert.equal(exp.notAfter.getTime(), cur.notAfter.getTime());
    assert.ok(exp.notBefore < new Date());
  } finally {
    await srv.close();
  }
});

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('renewNow during a slow renewal: only the newest answer is kept, even when the older one lands last', async () => {
  let call = 0;
  const request: typeof requestCertificate = async (_addr, _token, csrPem, ttl): Promise<CertificateResponse> => {
    const mine = ++call;
    const { certChainPem } = await ca.signCsr(parseCsr(csrPem), { spiffeId: ID, ttlSeconds: ttl });
    // The first (older) request answers after the second one.
    if (mine === 2) await new Promise((r) => setTimeout(r, 300));
    if (mine === 3) newest = certChainPem[0];
    return { certChainPem, trustBundlePem: ca.trustBundlePem() };
  };
  let newest = '';
  const m = new CertificateManager({ caAddress: 'unused', token: 'tok', spiffeId: ID, ttlSeconds: 3600, request });
  await m.start();
  const rotated: string[] = [];
  m.on('rotated', (mat: CertificateMaterial) => rotated.push(mat.certChainPem[0]));
  m.renewNow(); // call 2: slow
  await new Promise((r) => setTimeout(r, 50));
  m.renewNow(); // call 3: fast, and newest
  await new Promise((r) => setTimeout(r, 600));
  m.stop();
  assert.equal(call, 3);
  assert.deepEqual(rotated, [newest], 'the superseded answer is dropped');
  assert.equal(m.current()!.certChainPem[0], newest);
});
