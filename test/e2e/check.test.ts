// `trellis check` and `trellis ca` as child processes against a control plane: healthy, a root near expiry, rotation, certificates not renewed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Resource } from '../../src/api/types.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { startControlPlane } from '../../src/control/control-plane.js';
import { startProxy } from '../../src/proxy/proxy.js';
import { freePorts } from '../../src/local/ports.js';
import { pemToDers } from '../../src/identity/pem.js';
import { findProblems } from '../../src/cli/check.js';

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/~]/g, '\\$&');
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs the CLI from source (no build needed) as a child: exit code and output. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A CA state dir whose only root (made by openssl) expires in `days`. */
function stateWithShortRoot(days: number): { dir: string; fingerprint: string } {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-check-'));
  const caDir = join(dir, 'ca');
  mkdirSync(caDir, { recursive: true });
  const cert = join(caDir, 'root.pem');
  const key = join(caDir, 'root.key');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', String(days),
    '-subj', '/O=trellis/CN=short-lived test root', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore' });
  const fingerprint = createHash('sha256').update(pemToDers(readFileSync(cert, 'utf8'))[0]).digest('hex');
  const state = { version: 1, trustDomain: 'cluster.local', signing: fingerprint, roots: [{ fingerprint, cert: 'root.pem', key: 'root.key' }] };
  writeFileSync(join(caDir, 'state.json'), JSON.stringify(state));
  return { dir, fingerprint };
}

test('check exits 1 naming a root that expires within 30 days; `ca rotate` replaces it; check then exits 0', { timeout: 60_000 }, async () => {
  const { dir, fingerprint } = stateWithShortRoot(10);
  const cp = await startControlPlane({ stateDir: dir, store: 'memory', grpcListen: '127.0.0.1:0', httpListen: '127.0.0.1:0', debounceMs: 20 });
  const ctl = ['--control', cp.httpAddress];
  try {
    assert.equal(cp.ca.roots()[0].fingerprint, fingerprint, 'the control plane uses the openssl root');
    const bad = await cli(['check', ...ctl]);
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout, new RegExp(`problem: CA root ${fingerprint.slice(0, 16)} expires in (9|10) day\\(s\\) .*trellis ca rotate`));
    const json = await cli(['check', '-o', 'json', ...ctl]);
    assert.equal(json.code, 1);
    assert.equal(JSON.parse(json.stdout).ok, false);

    const status = await cli(['ca', 'status', ...ctl]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`root\\s+${fingerprint}\\s+yes\\s+\\S+\\s+(9|10)d`));

    const rotate = await cli(['ca', 'rotate', '--timeout', '30s', ...ctl]);
    assert.equal(rotate.code, 0, rotate.stdout + rotate.stderr);
    assert.match(rotate.stdout, /step 1\/3[\s\S]*step 2\/3[\s\S]*step 3\/3[\s\S]*rotation done/);
    assert.equal(cp.ca.roots().length, 1);
    assert.notEqual(cp.ca.roots()[0].fingerprint, fingerprint);

    const good = await cli(['check', ...ctl]);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /^ok: control plane at .* reachable/);
  } finally {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('check with a connected proxy: healthy, then one line for a certificate past 75% of its lifetime', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-check-'));
  const [appPort, inboundPort, outboundPort] = await freePorts(3);
  const store = new MemoryStore();
  await store.apply([
    {
      apiVersion: 'trellis.dev/v1alpha1',
      kind: 'Workload',
      metadata: { name: 'web', namespace: 'default' },
      spec: { service: 'web', ports: [{ name: 'http', port: appPort, protocol: 'HTTP' }], proxy: { inboundPort, outboundPort } },
    } as Resource,
  ]);
  const cp = await startControlPlane({ stateDir: dir, store, grpcListen: '127.0.0.1:0', httpListen: '127.0.0.1:0', debounceMs: 20 });
  const proxy = await startProxy({
    controlAddress: cp.grpcAddress,
    token: await cp.tokens.create({ namespace: 'default', serviceAccount: 'web' }),
    workloads: [{ namespace: 'default', name: 'web', service: 'web', serviceAccount: 'web', ports: [{ name: 'http', port: appPort, protocol: 'HTTP' }], inboundPort, outboundPort }],
    metricsPort: 0,
    adminPort: -1,
    logLevel: 'error',
  });
  const ctl = ['--control', cp.httpAddress];
  try {
    await proxy.ready;
    const ok = await cli(['check', ...ctl]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /1 proxy\(ies\) in sync with fresh certificates/);
    const st = await cli(['status', ...ctl]);
    assert.match(st.stdout, /CERT EXPIRY/);
    assert.match(st.stdout, /default\/web\s+.*\s(23|24)h\s/, st.stdout);
    // Expiry gauges: the control plane's root, the proxy's workload certificate.
    const cpMetrics = await (await fetch(`http://${cp.httpAddress}/metrics`)).text();
    assert.match(cpMetrics, /trellis_certificate_expiry_seconds\{kind="root"\} \d{8,}/);
    const pMetrics = await (await fetch(`http://127.0.0.1:${proxy.metricsPort()}/metrics`)).text();
    const workload = /trellis_certificate_expiry_seconds\{kind="workload"\} (\d+)/.exec(pMetrics);
    assert.ok(workload && Number(workload[1]) > 86000 && Number(workload[1]) <= 86400, pMetrics.split('\n').filter((l) => l.includes('expiry')).join('\n'));

    // The CA records a certificate for that proxy that is 2 s long: 1.6 s later it is 80% through and not renewed,
    // (read in process: a CLI child's start-up time would blur it), and once past its end `trellis check` says expired.
    const spiffeId = 'spiffe://cluster.local/ns/default/sa/web';
    cp.certs.record(spiffeId, { proxyId: proxy.id, serial: 'ab', notBefore: new Date(Date.now() - 300_000), notAfter: new Date(Date.now() + 2000), rootFingerprint: cp.ca.roots()[0].fingerprint });
    await new Promise((r) => setTimeout(r, 1600));
    const [statusBody, proxiesBody] = await Promise.all(['status', 'proxies'].map(async (x) => (await fetch(`http://${cp.httpAddress}/api/v1/${x}`)).json()));
    const problems = findProblems(statusBody as never, (proxiesBody as { proxies: never[] }).proxies);
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0], new RegExp(`^proxy ${escape(proxy.id)}: certificate for ${escape(spiffeId)} is (7[6-9]|8\\d|9\\d)% through its lifetime and not renewed`));
    await new Promise((r) => setTimeout(r, 500));
    const late = await cli(['check', ...ctl]);
    assert.equal(late.code, 1, late.stdout);
    assert.match(late.stdout, new RegExp(`problem: proxy ${escape(proxy.id)}: certificate for ${escape(spiffeId)} expired at \\S+; its peers refuse it`));
  } finally {
    await proxy.close();
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('check decides certificate problems from a table', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  const iso = (ms: number) => new Date(now + ms).toISOString();
  const proxy = (certs: { issuedAt: string; notAfter: string }[]) => ({
    id: 'p',
    kind: 'trellis',
    connectedSince: iso(-1e6),
    workloads: [],
    types: {},
    certificates: certs.map((c) => ({ spiffeId: 'spiffe://cluster.local/ns/default/sa/a', ...c })),
  });
  const cases: [string, { issuedAt: string; notAfter: string }[], RegExp | null][] = [
    ['fresh', [{ issuedAt: iso(-10_000), notAfter: iso(90_000) }], null],
    ['half-way (renewal due, not late)', [{ issuedAt: iso(-50_000), notAfter: iso(50_000) }], null],
    ['80% through', [{ issuedAt: iso(-80_000), notAfter: iso(20_000) }], /is 80% through its lifetime and not renewed/],
    ['expired', [{ issuedAt: iso(-100_000), notAfter: iso(-1) }], /expired at/],
  ];
  for (const [name, certs, want] of cases) {
    const got = findProblems({}, [proxy(certs)] as never, now);
    if (want) assert.ok(got.length === 1 && want.test(got[0]), `${name}: ${got.join(' | ')}`);
    else assert.deepEqual(got, [], name);
  }
});
