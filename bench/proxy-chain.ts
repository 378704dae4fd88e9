// Benchmark: HTTP/1.1 through a two-proxy mTLS chain vs direct to the app. Saturation (closed loop) and fixed rate with proxy CPU from /proc.
// Usage: node --import tsx bench/proxy-chain.ts [--seconds 5] [--concurrency 32] [--rate 1000] [--inbound-l7 auto|always]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createTestCa } from '../test/proxy/helpers/ca.js';
import * as x from '../test/proxy/helpers/xds.js';

const { values } = parseArgs({ options: { seconds: { type: 'string' }, concurrency: { type: 'string' }, rate: { type: 'string' }, 'inbound-l7': { type: 'string' } } });
const INBOUND_L7 = values['inbound-l7'] ?? 'auto';
const SECONDS = Number(values.seconds ?? 5);
const CONC = Number(values.concurrency ?? 32);
const RATE = Number(values.rate ?? 1000);
const MAIN = join(process.cwd(), 'src', 'cli', 'main.ts');
const CLK_TCK = 100;

function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => r(p));
    });
  });
}

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

function startProxyProcess(dir: string, name: string, workload: string, cfg: object, id: { keyPem: string; certChainPem: string[] | string; trustBundlePem: string }): Promise<ChildProcess> {
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(cfg));
  writeFileSync(join(dir, `${name}.crt`), ([] as string[]).concat(id.certChainPem).join('\n'));
  writeFileSync(join(dir, `${name}.key`), id.keyPem);
  writeFileSync(join(dir, `${name}.ca`), id.trustBundlePem);
  const p = spawn(
    process.execPath,
    [...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean), '--import', 'tsx', MAIN, 'proxy', '--workload', workload, '--static-config', join(dir, `${name}.json`), '--cert', join(dir, `${name}.crt`), '--key', join(dir, `${name}.key`), '--ca', join(dir, `${name}.ca`), '--metrics-port', '0', '--admin-port', '0', '--log-level', 'error', '--inbound-l7', INBOUND_L7],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    p.stdout!.once('data', () => resolve(p));
    p.once('exit', (c) => reject(new Error(`${name} exited ${c}`)));
  });
}

function once(agent: http.Agent, port: number, host: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ agent, port, host: '127.0.0.1', path: '/', headers: { host } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(-1));
  });
}

async function saturate(port: number, host: string): Promise<{ rps: number; errors: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONC });
  const end = Date.now() + SECONDS * 1000;
  let ok = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (Date.now() < end) ((await once(agent, port, host)) === 200 ? ok++ : errors++);
    }),
  );
  agent.destroy();
  return { rps: ok / SECONDS, errors };
}

async function fixedRate(port: number, host: string, pids: number[]): Promise<{ vcpu: number; p50: number; p99: number; errors: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const cpu0 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
  const t0 = process.hrtime.bigint();
  const lat: number[] = [];
  let errors = 0;
  const total = RATE * SECONDS;
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = Number(t0) / 1e6 + (i * 1000) / RATE;
    const wait = due - Number(process.hrtime.bigint()) / 1e6;
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const s = process.hrtime.bigint();
    inflight.push(
      once(agent, port, host).then((st) => {
        if (st !== 200) errors++;
        lat.push(Number(process.hrtime.bigint() - s) / 1e6);
      }),
    );
  }
  await Promise.all(inflight);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = pids.reduce((s, p) => s + cpuSeconds(p), 0) - cpu0;
  agent.destroy();
  lat.sort((a, b) => a - b);
  return { vcpu: cpu / wall, p50: lat[Math.floor(lat.length * 0.5)], p99: lat[Math.floor(lat.length * 0.99)], errors };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-bench-'));
  const ca = await createTestCa();
  const body = Buffer.alloc(64, 'x');
  const app = http.createServer((_req, res) => {
    res.setHeader('content-length', body.length);
    res.end(body);
  });
  app.keepAliveTimeout = 65_000;
  const appPort = await new Promise<number>((r) => app.listen(0, '127.0.0.1', () => r((app.address() as net.AddressInfo).port)));
  const [inPort, outPort] = [await freePort(), await freePort()];
  const procs: ChildProcess[] = [];
  try {
    const idB = await ca.issue('default', 'b');
    const idA = await ca.issue('default', 'a');
    procs.push(
      await startProxyProcess(dir, 'b', 'default/b', {
        listeners: [x.inboundListener('default/b', inPort, [{ appPort }])],
        clusters: [x.inboundCluster('default/b', appPort)],
      }, idB),
    );
    const c = x.outboundCluster('b', 80);
    procs.push(
      await startProxyProcess(dir, 'a', 'default/a', {
        listeners: [x.outboundHttpListener('default/a', outPort)],
        clusters: [c],
        endpoints: [x.loadAssignment(c.name, [{ port: inPort, workload: 'default/b', identity: idB.spiffeId, targetPort: appPort }])],
        routes: [x.routeConfiguration('outbound|default/a', [{ name: 'b', domains: x.domainsFor('b', 80), routes: [{ name: 'default/b#0', cluster: c.name }] }])],
      }, idA),
    );
    const pids = procs.map((p) => p.pid!);
    await saturate(outPort, 'b'); // warm-up (JIT, pools)
    const direct = await saturate(appPort, 'b');
    const chain = await saturate(outPort, 'b');
    const fixed = await fixedRate(outPort, 'b', pids);
    const out = {
      inbound: INBOUND_L7 === 'always' ? 'L7' : 'L4 (TLS terminate + pipe)',
      seconds: SECONDS,
      concurrency: CONC,
      direct_rps: Math.round(direct.rps),
      chain_rps: Math.round(chain.rps),
      chain_vs_direct: +(chain.rps / direct.rps).toFixed(2),
      chain_errors: chain.errors,
      fixed_rate: RATE,
      proxies_vcpu: +fixed.vcpu.toFixed(3),
      p50_ms: +fixed.p50.toFixed(2),
      p99_ms: +fixed.p99.toFixed(2),
      fixed_errors: fixed.errors,
    };
    console.log(JSON.stringify(out, null, 2));
  } finally {
    // SIGTERM lets the proxies drain and exit normally (so --cpu-prof can write its profile).
    for (const p of procs) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)))));
    app.closeAllConnections();
    app.close();
    ca.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
