// End to end: root rotation and short-lived certificates under steady traffic through two mTLS proxies lose no request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Resource } from '../../src/api/types.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.js';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { freePorts } from '../../src/local/ports.js';
import { pemToDers } from '../../src/identity/pem.js';
import { fingerprintOf } from '../../src/identity/ca.js';
import { eventually } from './helpers.js';

interface Mesh {
  cp: ControlPlane;
  /** Stops the control plane (xDS and CA); the proxies keep running. */
  stopControl(): Promise<void>;
  /** Starts it again on the same ports and state dir. */
  startControl(): Promise<void>;
  front: Proxy;
  back: Proxy;
  outboundPort: number;
  close(): Promise<void>;
}

function workload(name: string, appPort: number, inboundPort: number, outboundPort: number): Resource {
  return {
    apiVersion: 'trellis.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name, namespace: 'default', labels: { app: name } },
    spec: { service: name, ports: [{ name: 'http', port: appPort, protocol: 'HTTP' }], proxy: { inboundPort, outboundPort } },
  } as Resource;
}

/** Control plane in process, two sidecar proxies (frontend -> backend over mTLS), a backend app answering 200. */
/** Sidecar: one proxy per workload; node: one proxy hosting both, each workload with its own token and certificate. */
async function startMesh(extra: Resource[] = [], mode: 'sidecar' | 'node' = 'sidecar'): Promise<Mesh> {
  const stateDir = mkdtempSync(join(tmpdir(), 'trellis-rotate-'));
  const app = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  const appPort = (app.address() as AddressInfo).port;
  const [fIn, fOut, bIn, bOut, frontApp] = await freePorts(5, new Set([appPort]));
  const resources = [workload('frontend', frontApp, fIn, fOut), workload('backend', appPort, bIn, bOut), ...extra];
  const [grpcPort, httpPort] = await freePorts(2, new Set([appPort, fIn, fOut, bIn, bOut, frontApp]));
  const control = async () => {
    const store = new MemoryStore();
    await store.apply(resources);
    return startControlPlane({ stateDir, store, grpcListen: `127.0.0.1:${grpcPort}`, httpListen: `127.0.0.1:${httpPort}`, debounceMs: 20 });
  };
  let cp = await control();
  let cpUp = true;
  const proxyFor = async (name: string, port: number, inboundPort: number, outboundPort: number) =>
    startProxy({
      controlAddress: cp.grpcAddress,
      token: await cp.tokens.create({ namespace: 'default', serviceAccount: name }),
      workloads: [{ namespace: 'default', name, service: name, serviceAccount: name, ports: [{ name: 'http', port, protocol: 'HTTP' }], inboundPort, outboundPort }],
      metricsPort: 0,
      adminPort: -1,
      logLevel: (process.env.TRELLIS_TEST_LOG as 'debug') ?? 'error',
    });
  const nodeProxy = async () => {
    const w = async (name: string, port: number, inboundPort: number, outboundPort: number) => ({
      namespace: 'default',
      name,
      service: name,
      serviceAccount: name,
      token: await cp.tokens.create({ namespace: 'default', serviceAccount: name }),
      ports: [{ name: 'http', port, protocol: 'HTTP' }],
      inboundPort,
      outboundPort,
    });
    const workloads = [await w('frontend', frontApp, fIn, fOut), await w('backend', appPort, bIn, bOut)];
    const p = await startProxy({ controlAddress: cp.grpcAddress, token: workloads[0].token, mode: 'node', workloads, metricsPort: 0, adminPort: -1, logLevel: 'error' });
    return [p, p];
  };
  const [front, back] =
    mode === 'node' ? await nodeProxy() : await Promise.all([proxyFor('frontend', frontApp, fIn, fOut), proxyFor('backend', appPort, bIn, bOut)]);
  await Promise.all([front.ready, back.ready]);
  return {
    get cp() {
      return cp;
    },
    async stopControl() {
      cpUp = false;
      await cp.close();
    },
    async startControl() {
      cp = await control();
      cpUp = true;
    },
    front,
    back,
    outboundPort: fOut,
    async close() {
      await Promise.all([...new Set([front, back])].map((p) => p.close()));
      if (cpUp) await cp.close();
      await new Promise<void>((r) => app.close(() => r()));
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** ~rate req/s through frontend's outbound listener to backend, on keep-alive connections; counts failures with their cause. */
function startLoad(port: number, rate = 200) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const stats = { sent: 0, ok: 0, failed: 0, causes: new Map<string, number>() };
  const fail = (cause: string) => {
    stats.failed++;
    stats.causes.set(cause, (stats.causes.get(cause) ?? 0) + 1);
  };
  const one = () => {
    stats.sent++;
    const req = http.request({ host: '127.0.0.1', port, path: '/r', headers: { host: 'backend' }, agent, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => (res.statusCode === 200 && body === 'ok' ? stats.ok++ : fail(`${res.statusCode} ${res.headers['x-trellis-error'] ?? ''} ${body.slice(0, 80)}`)));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => fail(e.message));
    req.end();
  };
  const tickMs = 20;
  const perTick = (rate * tickMs) / 1000;
  let due = 0;
  const timer = setInterval(() => {
    due += perTick;
    for (; due >= 1; due--) one();
  }, tickMs);
  return {
    stats,
    async stop() {
      clearInterval(timer);
      await eventually(async () => (stats.ok + stats.failed >= stats.sent ? true : undefined), 10_000, 'in-flight requests to finish');
      agent.destroy();
    },
    describe: () => `${stats.ok}/${stats.sent} ok, ${stats.failed} failed: ${JSON.stringify([...stats.causes])}`,
  };
}

function chainsTo(certPem: string, rootDer: Buffer): boolean {
  const leaf = new X509Certificate(certPem);
  const root = new X509Certificate(rootDer);
  return leaf.checkIssued(root) && leaf.verify(root.publicKey);
}

for (const mode of ['sidecar', 'node'] as const) test(`root rotation under ~200 req/s (${mode} mode: ${mode === 'node' ? 'one proxy, two identities' : 'two proxies'}): zero failed requests, every certificate from the new root, old root gone`, { timeout: 90_000 }, async () => {
  const mesh = await startMesh([], mode);
  const load = startLoad(mesh.outboundPort);
  try {
    await eventually(async () => (load.stats.ok >= 100 ? true : undefined), 10_000, `traffic to flow (${load.describe()})`);
    const oldRoot = mesh.cp.ca.roots()[0].fingerprint;
    const res = await fetch(`http://${mesh.cp.httpAddress}/api/v1/ca/rotate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ timeoutSeconds: 40 }),
    });
    const report = (await res.json()) as { ok: boolean; newRoot: string; retired: string[]; error?: string; steps: { step: string }[]; progress: string[] };
    assert.equal(res.status, 200, JSON.stringify(report));
    assert.equal(report.ok, true);
    assert.deepEqual(report.retired, [oldRoot]);
    assert.deepEqual(report.steps.map((s) => s.step), ['trust', 'switch', 'retire']);
    // Keep the load on a little after the retirement: connections made now use only the new root.
    await new Promise((r) => setTimeout(r, 1500));
    await load.stop();
    assert.equal(load.stats.failed, 0, load.describe());
    assert.ok(load.stats.ok > 300, load.describe());

    const newRootDer = pemToDers(mesh.cp.ca.trustBundlePem())[0];
    assert.equal(fingerprintOf(newRootDer), report.newRoot);
    assert.equal(pemToDers(mesh.cp.ca.trustBundlePem()).length, 1, 'the old root left the bundle');
    for (const [p, w] of [[mesh.front, 'default/frontend'], [mesh.back, 'default/backend']] as const) {
      const id = p.identity(w)!;
      const material = (id.source as unknown as { current(): { certChainPem: string[] } }).current();
      assert.ok(chainsTo(material.certChainPem[0], newRootDer), `${w}'s certificate chains to the new root`);
      const bundleFps = pemToDers(id.bundlePem()).map((d) => fingerprintOf(d));
      assert.deepEqual(bundleFps, [report.newRoot], `${w}'s proxy trusts only the new root`);
    }
    // The API agrees: every certificate it tracks for a connected proxy is from the new root.
    const { proxies } = (await (await fetch(`http://${mesh.cp.httpAddress}/api/v1/proxies`)).json()) as { proxies: { certExpiry?: string; certificates: { rootFingerprint: string }[] }[] };
    assert.equal(proxies.length, mode === 'node' ? 1 : 2);
    assert.equal(proxies.flatMap((p) => p.certificates).length, 2, 'one certificate per identity');
    for (const p of proxies) {
      assert.ok(p.certExpiry && Date.parse(p.certExpiry) > Date.now());
      assert.ok(p.certificates.every((c) => c.rootFingerprint === report.newRoot));
    }
    // A second rotation is refused while one runs.
    const first = fetch(`http://${mesh.cp.httpAddress}/api/v1/ca/rotate`, { method: 'POST', body: '{"timeoutSeconds": 20}' });
    await eventually(async () => (mesh.cp.rotator.busy ? true : undefined), 2000, 'the rotation to start');
    const second = await fetch(`http://${mesh.cp.httpAddress}/api/v1/ca/rotate`, { method: 'POST' });
    assert.equal(second.status, 409);
    assert.match(((await second.json()) as { error: string }).error, /already running/);
    assert.equal((await first).status, 200);
  } finally {
    await load.stop().catch(() => undefined);
    await mesh.close();
  }
});

test('certificateTTL 4s from the Mesh: ~20 s of traffic, several renewals per proxy, zero failed requests', { timeout: 90_000 }, async () => {
  const meshRes = { apiVersion: 'trellis.dev/v1alpha1', kind: 'Mesh', metadata: { name: 'default', namespace: 'trellis-system' }, spec: { certificateTTL: '4s' } } as Resource;
  const mesh = await startMesh([meshRes]);
  const serials = new Map<string, Set<string>>();
  const watch = setInterval(() => {
    for (const p of mesh.cp.certs.all()) {
      const k = `${p.proxyId}|${p.spiffeId}`;
      if (!serials.has(k)) serials.set(k, new Set());
      serials.get(k)!.add(p.serial);
    }
  }, 100);
  const load = startLoad(mesh.outboundPort);
  try {
    const lifetime = mesh.front.identity('default/frontend')!.notAfter().getTime() - Date.now();
    assert.ok(lifetime <= 4000 && lifetime > 1000, `the Mesh caps the lifetime at 4s (got ${lifetime} ms left)`);
    await new Promise((r) => setTimeout(r, 20_000));
    await load.stop();
    assert.equal(load.stats.failed, 0, load.describe());
    assert.ok(load.stats.ok > 2000, load.describe());
    assert.equal(serials.size, 2, [...serials.keys()].join(', '));
    for (const [k, s] of serials) assert.ok(s.size >= 6, `${k}: ${s.size} certificates in 20 s (renewal at half of 4 s)`);
  } finally {
    clearInterval(watch);
    await load.stop().catch(() => undefined);
    await mesh.close();
  }
});

test('CA down for longer than half the certificate lifetime (10s TTL, 6s outage): traffic unaffected, renewal resumes without restarts', { timeout: 90_000 }, async () => {
  const meshRes = { apiVersion: 'trellis.dev/v1alpha1', kind: 'Mesh', metadata: { name: 'default', namespace: 'trellis-system' }, spec: { certificateTTL: '10s' } } as Resource;
  const mesh = await startMesh([meshRes]);
  const load = startLoad(mesh.outboundPort);
  type Source = { renewNow(): void; on(e: string, cb: (x: unknown) => void): void; current(): { certChainPem: string[]; notAfter: Date } };
  const sources = [mesh.front.identity('default/frontend')!.source, mesh.back.identity('default/backend')!.source] as unknown as Source[];
  try {
    await eventually(async () => (load.stats.ok >= 100 ? true : undefined), 10_000, `traffic to flow (${load.describe()})`);
    // Start the outage right after both renewed, so each has its whole lifetime ahead.
    await Promise.all(sources.map((s) => new Promise<void>((resolve) => (s.on('rotated', () => resolve()), s.renewNow()))));
    const before = sources.map((s) => s.current().certChainPem[0]);
    const failures = [0, 0];
    sources.forEach((s, i) => s.on('renewFailed', () => failures[i]++));
    await mesh.stopControl();
    await new Promise((r) => setTimeout(r, 6000));
    assert.ok(failures.every((f) => f > 0), `both proxies tried to renew during the outage (${failures})`);
    assert.deepEqual(sources.map((s) => s.current().certChainPem[0]), before, 'still serving with the certificates from before');
    await mesh.startControl();
    await eventually(async () => (sources.every((s, i) => s.current().certChainPem[0] !== before[i]) ? true : undefined), 8000, 'renewal after the CA came back');
    await new Promise((r) => setTimeout(r, 1000));
    await load.stop();
    assert.equal(load.stats.failed, 0, load.describe());
    for (const s of sources) assert.ok(new Date(s.current().notAfter).getTime() - Date.now() > 5000, 'a fresh certificate');
  } finally {
    await load.stop().catch(() => undefined);
    await mesh.close();
  }
});
