// End to end: `trellis cost` for proxies running as their own processes agrees with what ps and /proc say about them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryStore } from '../../src/store/memory-store.js';
import { startControlPlane } from '../../src/control/control-plane.js';
import { freePorts } from '../../src/local/ports.js';
import type { CostReport } from '../../src/telemetry/cost.js';
import { cli, workloadResource } from '../telemetry/mesh.js';
import { eventually } from './helpers.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime + stime of a process in seconds, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICKS;
}

function psRssBytes(pid: number): number {
  return Number(spawnSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim()) * 1024;
}

test('cost per proxy matches ps (RSS) and /proc (CPU time) for proxy processes; projections are given for both modes', { timeout: 90_000 }, async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'trellis-cost-'));
  const app = http.createServer((req, res) => req.resume().on('end', () => res.end('ok')));
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  const appPort = (app.address() as AddressInfo).port;
  const [fIn, fOut, bIn, bOut, fApp, grpcPort, httpPort] = await freePorts(7, new Set([appPort]));
  const store = new MemoryStore();
  await store.apply([workloadResource('frontend', fApp, fIn, fOut), workloadResource('backend', appPort, bIn, bOut)]);
  const cp = await startControlPlane({ stateDir, store, grpcListen: `127.0.0.1:${grpcPort}`, httpListen: `127.0.0.1:${httpPort}`, debounceMs: 20 });
  const control = `127.0.0.1:${httpPort}`;
  const children: ChildProcess[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  try {
    for (const [name, port, inb, outb] of [['frontend', fApp, fIn, fOut], ['backend', appPort, bIn, bOut]] as const) {
      const token = await cp.tokens.create({ namespace: 'default', serviceAccount: name });
      const c = spawn(
        process.execPath,
        ['--import', 'tsx', MAIN, 'proxy', '--control', cp.grpcAddress, '--token', token, '--workload', `default/${name},service=${name},port=http:${port}/HTTP,inbound=${inb},outbound=${outb}`, '--metrics-port', '0', '--admin-port', '0', '--log-level', 'warn'],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      );
      children.push(c);
    }
    // Ready once the control plane lists both and each answers /ready on the port it advertised.
    await eventually(
      async () => {
        const t = (await (await fetch(`http://${control}/api/v1/prometheus/targets`)).json()) as { targets: string[] }[];
        if (t.length !== 2) return undefined;
        const ready = await Promise.all(t.map(async (x) => (await fetch(`http://${x.targets[0]}/ready`)).status === 200));
        return ready.every(Boolean) ? true : undefined;
      },
      40_000,
      'both proxy processes ready',
    );
    const cpuBefore = new Map(children.map((c) => [c.pid!, cpuSeconds(c.pid!)]));
    await cli(['cost', '--control', control]); // opens the window
    // ~100 requests/s from frontend to backend for 3 s.
    let ok = 0;
    const end = Date.now() + 3000;
    while (Date.now() < end) {
      await Promise.all(
        Array.from({ length: 10 }, () =>
          new Promise<void>((resolve) =>
            http
              .get({ host: '127.0.0.1', port: fOut, path: '/', headers: { host: 'backend' }, agent }, (res) => {
                if (res.statusCode === 200) ok++;
                res.resume().on('end', resolve);
              })
              .on('error', () => resolve()),
          ),
        ),
      );
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(ok > 100, `only ${ok} requests succeeded`);
    const r = await cli(['cost', '--window', '30', '--workloads', '400', '-o', 'json', '--control', control]);
    assert.equal(r.code, 0, r.stderr);
    const cost = JSON.parse(r.stdout) as CostReport;
    assert.equal(cost.proxies.length, 2);
    for (const row of cost.proxies) {
      const pid = row.pid!;
      assert.ok(cpuBefore.has(pid), `cost names pid ${pid}, not one of the proxy processes ${[...cpuBefore.keys()]}`);
      const ps = psRssBytes(pid);
      assert.ok(Math.abs(row.rssBytes - ps) / ps < 0.25, `pid ${pid}: cost says RSS ${row.rssBytes}, ps says ${ps}`);
      // The CPU the proxy measured over the window cannot exceed what the kernel counted for it since before the window.
      const kernel = cpuSeconds(pid) - cpuBefore.get(pid)!;
      const measured = (row.cpuCores ?? 0) * cost.windowSeconds;
      assert.ok(measured > 0, `pid ${pid}: no CPU measured`);
      assert.ok(measured <= kernel + 0.1, `pid ${pid}: cost says ${measured}s of CPU, the kernel counted ${kernel}s`);
    }
    // The caller's proxy counts every request (the backend's inbound pipes bytes at L4 by default and counts none).
    const front = cost.proxies.find((p) => (p.rps ?? 0) > 10);
    assert.ok(front, JSON.stringify(cost.proxies));
    assert.ok(front.cpuSecondsPer1kRequests !== undefined && front.cpuSecondsPer1kRequests > 0);
    assert.ok(front.addedLatencyMs.p50 !== undefined && front.addedLatencyMs.p50 >= 0 && front.addedLatencyMs.p50 < 50);
    assert.ok(cost.total.cpuSecondsPer1kRequests !== undefined && cost.total.cpuSecondsPer1kRequests > 0);
    // Only the backend accepts mTLS handshakes.
    assert.ok(cost.proxies.some((p) => (p.handshakesPerSecond ?? 0) > 0));
    assert.equal(cost.projections[0].workloads, 400);
    assert.ok(cost.projections[0].sidecar.memoryGiB > 0 && cost.projections[0].node.memoryGiB > 0);
    const text = await cli(['cost', '--workloads', '400', '--control', control]);
    assert.match(text.stdout, /at 400 workloads: sidecar [\d.]+ GiB and [\d.]+ vCPU for proxies; node mode [\d.]+ GiB and [\d.]+ vCPU/);
  } finally {
    agent.destroy();
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    await cp.close();
    app.closeAllConnections();
    app.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
});
