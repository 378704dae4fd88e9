// Benchmark: a two-hop mTLS chain of Trellis proxies vs the same chain built from nginx vs direct traffic (latency at a fixed rate, proxy CPU, saturation, memory, node-mode cost per workload).
// Usage: npm run build && node --import tsx bench/proxy-vs-nginx.ts [--seconds 15] [--rate 1000] [--rounds 3] [--sat-seconds 10]
//        [--trellis-flags 'SET|SET...']: extra Trellis variants in the same run, each SET space-separated node flags and/or
//        KEY=VALUE environment variables for both proxies (e.g. 'TRELLIS_PROXY_NODE_FLAGS=|--max-semi-space-size=2'), or bin=PATH: another build's bin/trellis.js.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createTestCa } from '../test/proxy/helpers/ca.js';
import * as x from '../test/proxy/helpers/xds.js';
import { installCleanup, noteDescendants, start, stop, stopAll, type Tracked } from './children.js';
import { NGINX, appConfig, inboundConfig, outboundConfig, startNginx, type TlsFiles } from './nginx-chain.js';
import { loadAverage, median, memorySum, totalCpuSeconds, type Memory } from './proc-stats.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string' },
    rate: { type: 'string' },
    rounds: { type: 'string' },
    'sat-seconds': { type: 'string' },
    'sat-connections': { type: 'string' },
    'fortio-connections': { type: 'string' },
    warmup: { type: 'string' },
    variants: { type: 'string' },
    'node-workloads': { type: 'string' },
    'inbound-l7': { type: 'string' },
    json: { type: 'string' },
    'trellis-flags': { type: 'string' },
  },
});
const SECONDS = Number(values.seconds ?? 15);
const RATE = Number(values.rate ?? 1000);
const ROUNDS = Number(values.rounds ?? 3);
const SAT_SECONDS = Number(values['sat-seconds'] ?? 10);
const SAT_CONNS = Number(values['sat-connections'] ?? 32);
const FORTIO_CONNS = Number(values['fortio-connections'] ?? 8);
const WARMUP = Number(values.warmup ?? 3);
const NODE_WORKLOADS = Number(values['node-workloads'] ?? 10);
const INBOUND_L7 = values['inbound-l7'] ?? 'auto';
const BASE_VARIANTS = (values.variants ?? 'direct,nginx,trellis').split(',');
/** Extra Trellis variants: `trellis[SET]`, SET = node flags and KEY=VALUE env entries. */
const FLAG_SETS = values['trellis-flags'] === undefined ? [] : values['trellis-flags'].split('|').map((x) => x.trim());
const VARIANTS: Variant[] = [...BASE_VARIANTS, ...FLAG_SETS.map((f) => `trellis[${f}]`)];
const BODY_BYTES = 1024;
const SETTLE_MS = 2000;
const FORTIO = process.env.FORTIO ?? 'fortio';
const WRK = process.env.WRK ?? 'wrk';
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TRELLIS = join(ROOT, 'bin', 'trellis.js');

/** direct, nginx, trellis, or trellis[SET] (see --trellis-flags). */
type Variant = string;

/** A Trellis variant's extra node flags and environment; `bin=PATH` runs another build's bin/trellis.js (before/after comparisons). */
function variantLaunch(v: Variant): { flags: string[]; env: Record<string, string>; bin: string } {
  const set = v.startsWith('trellis[') ? v.slice('trellis['.length, -1) : '';
  const flags: string[] = [];
  const env: Record<string, string> = {};
  let bin = TRELLIS;
  for (const tok of set.split(' ').filter(Boolean)) {
    const eq = tok.indexOf('=');
    if (tok.startsWith('bin=')) bin = tok.slice(4);
    else if (!tok.startsWith('-') && eq > 0) env[tok.slice(0, eq)] = tok.slice(eq + 1);
    else flags.push(tok);
  }
  return { flags, env, bin };
}

for (const v of BASE_VARIANTS) if (!['direct', 'nginx', 'trellis'].includes(v)) throw new Error(`--variants: unknown variant "${v}" (direct, nginx, trellis)`);
if (!VARIANTS.includes('direct')) throw new Error('--variants must include direct (added latency is measured against it)');
for (const [k, n] of Object.entries({ SECONDS, RATE, ROUNDS, SAT_SECONDS, SAT_CONNS, FORTIO_CONNS, NODE_WORKLOADS })) {
  if (!Number.isFinite(n) || n < 0) throw new Error(`${k}: not a number`);
}

function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => r(p));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One GET with the benchmark's Host header: the chain must answer 200 with the app's body before anything is measured. */
function checkChain(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get({ port, host: '127.0.0.1', path: '/', headers: { host: 'b' }, agent: false, timeout: 5000 }, (res) => {
      let n = 0;
      res.on('data', (d: Buffer) => (n += d.length));
      res.on('end', () =>
        res.statusCode === 200 && n === BODY_BYTES ? resolve() : reject(new Error(`chain on ${port}: status ${res.statusCode}, ${n} body bytes (want 200, ${BODY_BYTES})`)),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`chain on ${port}: no answer in 5 s`)));
    req.on('error', reject);
  });
}

/** Runs a tool to completion with a hard time limit; stdout and stderr come back as text. */
async function runTool(name: string, cmd: string, args: string[], limitMs: number): Promise<{ code: number | null; out: string; err: string }> {
  const t = start(name, cmd, args);
  let out = '';
  let err = '';
  t.proc.stdout!.on('data', (d) => (out += d));
  t.proc.stderr!.on('data', (d) => (err += d));
  const timer = setTimeout(() => void stop(t, 1000), limitMs);
  await t.exited;
  clearTimeout(timer);
  if (t.spawnError) throw new Error(`cannot run ${cmd} (${t.spawnError.message}): install it or set ${name.toUpperCase()}`);
  return { code: t.proc.exitCode, out, err };
}

interface FixedResult {
  qps: number;
  count: number;
  errors: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
}

async function fortio(port: number, qps: number, seconds: number, jsonPath: string): Promise<FixedResult> {
  const args = ['load', '-quiet', '-qps', String(qps), '-t', `${seconds}s`, '-c', String(FORTIO_CONNS), '-uniform', '-r', '0.00001', '-p', '50,90,99,99.9', '-json', jsonPath, '-H', 'Host: b', `http://127.0.0.1:${port}/`];
  const r = await runTool('fortio', FORTIO, args, (seconds + 30) * 1000);
  if (r.code !== 0) throw new Error(`fortio exited ${r.code}: ${(r.err || r.out).trim().split('\n').slice(-3).join(' | ')}`);
  const j = JSON.parse(readFileSync(jsonPath, 'utf8'));
  const pct = (p: number) => 1000 * Number(j.DurationHistogram.Percentiles.find((x: { Percentile: number }) => x.Percentile === p)?.Value ?? NaN);
  const codes = (j.RetCodes ?? {}) as Record<string, number>;
  const count = Number(j.DurationHistogram.Count);
  return { qps: Number(j.ActualQPS), count, errors: count - (codes['200'] ?? 0), p50: pct(50), p90: pct(90), p99: pct(99), p999: pct(99.9) };
}

async function wrk(port: number, seconds: number): Promise<{ rps: number; errors: number }> {
  const args = ['-t1', `-c${SAT_CONNS}`, `-d${seconds}s`, '-H', 'Host: b', `http://127.0.0.1:${port}/`];
  const r = await runTool('wrk', WRK, args, (seconds + 30) * 1000);
  if (r.code !== 0) throw new Error(`wrk exited ${r.code}: ${r.err.trim()}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.out)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(r.out);
  const errors = non2xx + (sock ? Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]) : 0);
  return { rps, errors };
}

/** Idle memory: SETTLE_MS after start, the median of three samples half a second apart (a GC in between moves one sample a lot). */
async function idleMemory(groups: number[][]): Promise<Memory[]> {
  await sleep(SETTLE_MS);
  const samples: Memory[][] = [];
  for (let i = 0; i < 3; i++) {
    if (i) await sleep(500);
    samples.push(groups.map(memorySum));
  }
  return groups.map((_, g) => ({
    ussKb: median(samples.map((s) => s[g].ussKb)),
    rssKb: median(samples.map((s) => s[g].rssKb)),
    pssKb: median(samples.map((s) => s[g].pssKb)),
  }));
}

/** Samples memory of each proxy every second; keeps each field's peak. */
function memorySampler(groups: number[][]): { stop(): Memory[] } {
  const peak: Memory[] = groups.map(() => ({ ussKb: 0, rssKb: 0, pssKb: 0 }));
  const sample = () =>
    groups.forEach((g, i) => {
      const m = memorySum(g);
      peak[i] = { ussKb: Math.max(peak[i].ussKb, m.ussKb), rssKb: Math.max(peak[i].rssKb, m.rssKb), pssKb: Math.max(peak[i].pssKb, m.pssKb) };
    });
  const timer = setInterval(sample, 1000);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}

interface Chain {
  port: number;
  /** Per proxy (outbound, inbound): its pids (nginx: master + worker). */
  proxies: number[][];
  processes: Tracked[];
}

interface Env {
  dir: string;
  appPort: number;
  tlsA: TlsFiles;
  tlsB: TlsFiles;
  idA: Awaited<ReturnType<Awaited<ReturnType<typeof createTestCa>>['issue']>>;
  idB: Awaited<ReturnType<Awaited<ReturnType<typeof createTestCa>>['issue']>>;
}

async function startNginxChain(env: Env, tag: string): Promise<Chain> {
  const [outPort, inPort] = [await freePort(), await freePort()];
  const inb = await startNginx({ dir: env.dir, name: `in-${tag}` }, inboundConfig({ dir: env.dir, name: `in-${tag}` }, inPort, env.appPort, env.tlsB), inPort);
  const out = await startNginx({ dir: env.dir, name: `out-${tag}` }, outboundConfig({ dir: env.dir, name: `out-${tag}` }, outPort, inPort, env.tlsA), outPort);
  return { port: outPort, proxies: [out.pids, inb.pids], processes: [out.tracked, inb.tracked] };
}

/** Starts `trellis proxy` from the compiled CLI (not under tsx) and waits for its ready line. */
async function startTrellis(env: Env, name: string, workloads: string[], cfg: object, tls: TlsFiles, mode?: 'node', variant: Variant = 'trellis'): Promise<Tracked> {
  const cfgPath = join(env.dir, `${name}.json`);
  writeFileSync(cfgPath, JSON.stringify(cfg));
  const launch = variantLaunch(variant);
  const args = [...NODE_FLAGS, ...launch.flags, launch.bin, 'proxy', ...workloads.flatMap((w) => ['--workload', w]), '--static-config', cfgPath, '--cert', tls.cert, '--key', tls.key, '--ca', tls.ca, '--metrics-port', '0', '--admin-port', '0', '--drain-timeout', '1s'];
  if (mode) args.push('--mode', mode);
  if (INBOUND_L7 !== 'auto') args.push('--inbound-l7', INBOUND_L7);
  // Without node flags, run bin/trellis.js as a program, as an installed `trellis` runs (its shell line adds the proxy's V8 flags).
  const asProgram = NODE_FLAGS.length + launch.flags.length === 0;
  const t = start(`trellis ${name}`, asProgram ? launch.bin : process.execPath, asProgram ? args.slice(1) : args, { env: { ...process.env, ...launch.env } });
  let err = '';
  t.proc.stderr!.on('data', (d) => (err = (err + d).slice(-4000)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`trellis ${name}: not ready after 30 s: ${err.trim()}`)), 30_000);
    let out = '';
    t.proc.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('trellis proxy ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    t.proc.once('exit', (c) => {
      clearTimeout(timer);
      reject(new Error(`trellis ${name} exited ${c}: ${err.trim()}`));
    });
  });
  return t;
}

/** A proxy's processes: `trellis proxy` may run in a child node with its V8 flags (bin/trellis.js); both count. */
function proxyPids(t: Tracked): number[] {
  return [t.proc.pid!, ...noteDescendants(t)];
}

async function startTrellisChain(env: Env, variant: Variant): Promise<Chain> {
  const [outPort, inPort] = [await freePort(), await freePort()];
  const inb = await startTrellis(env, 'b', ['default/b'], { listeners: [x.inboundListener('default/b', inPort, [{ appPort: env.appPort }])], clusters: [x.inboundCluster('default/b', env.appPort)] }, env.tlsB, undefined, variant);
  const c = x.outboundCluster('b', 80);
  const out = await startTrellis(
    env,
    'a',
    ['default/a'],
    {
      listeners: [x.outboundHttpListener('default/a', outPort)],
      clusters: [c],
      endpoints: [x.loadAssignment(c.name, [{ port: inPort, workload: 'default/b', identity: env.idB.spiffeId, targetPort: env.appPort }])],
      routes: [x.routeConfiguration('outbound|default/a', [{ name: 'b', domains: x.domainsFor('b', 80), routes: [{ name: 'default/b#0', cluster: c.name }] }])],
    },
    env.tlsA,
    undefined,
    variant,
  );
  return { port: outPort, proxies: [proxyPids(out), proxyPids(inb)], processes: [out, inb] };
}

interface RunResult {
  variant: Variant;
  round: number;
  load: string;
  idle: Memory[];
  fixed: FixedResult & { vcpu: number; mem: Memory[] };
  sat: { rps: number; errors: number; vcpu: number; mem: Memory[] };
}

async function runVariant(env: Env, variant: Variant, round: number): Promise<RunResult> {
  const chain: Chain =
    variant === 'direct' ? { port: env.appPort, proxies: [], processes: [] } : variant === 'nginx' ? await startNginxChain(env, `r${round}`) : await startTrellisChain(env, variant);
  try {
    await checkChain(chain.port);
    const idle = await idleMemory(chain.proxies);
    const load0 = loadAverage();
    if (WARMUP > 0) await fortio(chain.port, RATE, WARMUP, join(env.dir, 'warmup.json'));
    const pids = chain.proxies.flat();
    let sampler = memorySampler(chain.proxies);
    let cpu0 = totalCpuSeconds(pids);
    let t0 = process.hrtime.bigint();
    const fixed = await fortio(chain.port, RATE, SECONDS, join(env.dir, `${variant.replace(/[^\w.-]+/g, '_')}-${round}.json`));
    const fixedVcpu = (totalCpuSeconds(pids) - cpu0) / (Number(process.hrtime.bigint() - t0) / 1e9);
    const fixedMem = sampler.stop();
    let sat = { rps: NaN, errors: 0, vcpu: NaN, mem: [] as Memory[] };
    if (SAT_SECONDS > 0) {
      sampler = memorySampler(chain.proxies);
      cpu0 = totalCpuSeconds(pids);
      t0 = process.hrtime.bigint();
      const w = await wrk(chain.port, SAT_SECONDS);
      sat = { ...w, vcpu: (totalCpuSeconds(pids) - cpu0) / (Number(process.hrtime.bigint() - t0) / 1e9), mem: sampler.stop() };
    }
    return { variant, round, load: `${load0} -> ${loadAverage()}`, idle, fixed: { ...fixed, vcpu: fixedVcpu, mem: fixedMem }, sat };
  } finally {
    for (const p of chain.processes) await stop(p);
  }
}

/** Node mode: one proxy hosting k workloads (each with outbound and inbound listeners, its own identity and inbound cluster), idle. */
async function nodeModeUss(env: Env, k: number): Promise<Memory> {
  const c = x.outboundCluster('b', 80);
  const ws = Array.from({ length: k }, (_, i) => `default/w${i}`);
  const cfg = {
    listeners: ws.flatMap((w) => [x.outboundHttpListener(w, 0), x.inboundListener(w, 0, [{ appPort: env.appPort }])]),
    clusters: [c, ...ws.map((w) => x.inboundCluster(w, env.appPort))],
    endpoints: [x.loadAssignment(c.name, [{ port: env.appPort, workload: 'default/b', identity: env.idB.spiffeId, targetPort: env.appPort }])],
    routes: ws.map((w) => x.routeConfiguration(`outbound|${w}`, [{ name: 'b', domains: x.domainsFor('b', 80), routes: [{ name: 'default/b#0', cluster: c.name }] }])),
  };
  const t = await startTrellis(env, `node${k}`, ws, cfg, env.tlsA, 'node');
  try {
    return (await idleMemory([proxyPids(t)]))[0];
  } finally {
    await stop(t);
  }
}

/** What an idle Node.js process costs before any proxy code loads: the floor under the USS targets. */
async function bareNodeUss(): Promise<Memory> {
  const t = start('bare node', process.execPath, ['-e', 'setInterval(() => {}, 1e6)']);
  try {
    await sleep(SETTLE_MS);
    return memorySum([t.proc.pid!]);
  } finally {
    await stop(t);
  }
}

/** First line a tool prints about its version (nginx and wrk print it on stderr or exit non-zero). */
function tool(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  if (r.error) return `${cmd} unavailable (${r.error.message})`;
  return `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim().split('\n')[0].trim();
}

const mb = (kb: number) => (kb / 1024).toFixed(1);
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');
const f3 = (n: number) => (Number.isFinite(n) ? n.toFixed(3) : 'n/a');

function verdictMax(value: number, limit: number, unit = ''): string {
  if (!Number.isFinite(value)) return 'not measured';
  return value <= limit ? 'met' : `missed by ${f2(value - limit)}${unit} (${f2(value / limit)}x the limit)`;
}
function verdictMin(value: number, floor: number): string {
  if (!Number.isFinite(value)) return 'not measured';
  return value >= floor ? 'met' : `missed by ${f2(floor - value)} (${f2(value / floor)}x the floor)`;
}

function report(results: RunResult[], node: { one: Memory; many: Memory }[], bare: Memory, notes: string[]): string {
  const lines: string[] = [...notes, ''];
  const of = (v: Variant) => results.filter((r) => r.variant === v);
  const rounds = [...new Set(results.map((r) => r.round))];
  const direct = (round: number) => results.find((r) => r.variant === 'direct' && r.round === round)!;
  const added = (v: Variant, p: 'p50' | 'p99') => median(of(v).map((r) => r.fixed[p] - direct(r.round).fixed[p]));
  const med = (v: Variant, f: (r: RunResult) => number) => median(of(v).map(f));

  lines.push(`Medians of ${rounds.length} round(s). Latency at a fixed ${RATE} req/s (fortio, ${FORTIO_CONNS} connections, ${SECONDS} s); added = variant minus direct in the same round.`);
  lines.push('');
  lines.push('| variant | achieved req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | added p50 ms | added p99 ms | proxy CPU @ rate (vCPU, both hops) | saturation req/s (wrk) | proxy CPU at saturation (vCPU) | errors |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const v of VARIANTS) {
    const rs = of(v);
    const errs = rs.reduce((s, r) => s + r.fixed.errors + r.sat.errors, 0);
    lines.push(
      `| ${v} | ${med(v, (r) => r.fixed.qps).toFixed(0)} | ${f3(med(v, (r) => r.fixed.p50))} | ${f3(med(v, (r) => r.fixed.p90))} | ${f3(med(v, (r) => r.fixed.p99))} | ${f3(med(v, (r) => r.fixed.p999))} | ${v === 'direct' ? '—' : f3(added(v, 'p50'))} | ${v === 'direct' ? '—' : f3(added(v, 'p99'))} | ${v === 'direct' ? '—' : f3(med(v, (r) => r.fixed.vcpu))} | ${med(v, (r) => r.sat.rps).toFixed(0)} | ${v === 'direct' ? '—' : f3(med(v, (r) => r.sat.vcpu))} | ${errs} |`,
    );
  }
  lines.push('');
  lines.push('Memory per proxy in MB (nginx: master + worker; USS = Private_Clean + Private_Dirty, PSS and USS add up across processes, RSS counts shared pages in each). Idle = 2 s after start, before traffic; @ rate = peak of 1 s samples during the fixed-rate run; saturation = peak during wrk.');
  lines.push('');
  lines.push('| proxy | USS idle | USS @ rate | USS saturation | RSS idle | RSS @ rate | PSS idle | PSS @ rate |');
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const v of VARIANTS.filter((y) => y !== 'direct')) {
    ['outbound', 'inbound'].forEach((hop, i) => {
      const m = (f: (r: RunResult) => number) => mb(med(v, f));
      lines.push(
        `| ${v} ${hop} | ${m((r) => r.idle[i].ussKb)} | ${m((r) => r.fixed.mem[i].ussKb)} | ${SAT_SECONDS > 0 ? m((r) => r.sat.mem[i].ussKb) : 'n/a'} | ${m((r) => r.idle[i].rssKb)} | ${m((r) => r.fixed.mem[i].rssKb)} | ${m((r) => r.idle[i].pssKb)} | ${m((r) => r.fixed.mem[i].pssKb)} |`,
      );
    });
  }
  const perExtra = median(node.map((n) => (n.many.ussKb - n.one.ussKb) / Math.max(1, NODE_WORKLOADS - 1)));
  lines.push('');
  if (node.length) lines.push(
    `Node mode, idle USS: 1 workload ${mb(median(node.map((n) => n.one.ussKb)))} MB, ${NODE_WORKLOADS} workloads ${mb(median(node.map((n) => n.many.ussKb)))} MB -> ${mb(perExtra)} MB per extra workload (RSS ${mb(median(node.map((n) => n.one.rssKb)))} -> ${mb(median(node.map((n) => n.many.rssKb)))} MB).`,
  );
  lines.push(`A bare idle \`node\` process on this machine (the floor under Trellis's USS; the node binary's pages are shared with other node processes): USS ${mb(bare.ussKb)} MB, RSS ${mb(bare.rssKb)} MB, PSS ${mb(bare.pssKb)} MB.`);

  if (VARIANTS.includes('trellis')) {
    const tr = (f: (r: RunResult) => number) => med('trellis', f);
    const hasNginx = VARIANTS.includes('nginx');
    const byRound = (f: (t: RunResult, n: RunResult) => number) =>
      median(rounds.map((rd) => {
        const t = results.find((r) => r.variant === 'trellis' && r.round === rd);
        const n = results.find((r) => r.variant === 'nginx' && r.round === rd);
        return t && n ? f(t, n) : NaN;
      }));
    const thr = byRound((t, n) => t.sat.rps / n.sat.rps);
    const a50 = added('trellis', 'p50') / added('nginx', 'p50');
    const a99 = added('trellis', 'p99') / added('nginx', 'p99');
    const ussIdle = Math.max(tr((r) => r.idle[0].ussKb), tr((r) => r.idle[1].ussKb)) / 1024;
    const ussRate = Math.max(tr((r) => r.fixed.mem[0].ussKb), tr((r) => r.fixed.mem[1].ussKb)) / 1024;
    const cpu = tr((r) => r.fixed.vcpu);
    lines.push('');
    lines.push('| target | measured | verdict |');
    lines.push('|---|---|---|');
    lines.push(`| proxy CPU, both hops, at ${RATE} req/s <= 0.15 vCPU | ${f3(cpu)} vCPU (nginx ${hasNginx ? f3(med('nginx', (r) => r.fixed.vcpu)) : 'n/a'}) | ${verdictMax(cpu, 0.15, ' vCPU')} |`);
    lines.push(`| saturation throughput >= 0.6x nginx chain | ${f2(thr)}x (median of per-round ratios) | ${hasNginx ? verdictMin(thr, 0.6) : 'not measured'} |`);
    lines.push(`| added latency p50 <= 1.5x nginx's | ${f2(a50)}x (${f3(added('trellis', 'p50'))} vs ${f3(added('nginx', 'p50'))} ms) | ${hasNginx ? verdictMax(a50, 1.5, 'x') : 'not measured'} |`);
    lines.push(`| added latency p99 <= 2x nginx's | ${f2(a99)}x (${f3(added('trellis', 'p99'))} vs ${f3(added('nginx', 'p99'))} ms) | ${hasNginx ? verdictMax(a99, 2, 'x') : 'not measured'} |`);
    lines.push(`| USS per proxy idle <= 12 MB | ${ussIdle.toFixed(1)} MB (larger hop) | ${verdictMax(ussIdle, 12, ' MB')} |`);
    lines.push(`| USS per proxy at ${RATE} req/s <= 25 MB | ${ussRate.toFixed(1)} MB (larger hop, peak) | ${verdictMax(ussRate, 25, ' MB')} |`);
    lines.push(`| node mode: each extra workload <= 2 MB | ${(perExtra / 1024).toFixed(2)} MB | ${verdictMax(perExtra / 1024, 2, ' MB')} |`);
  }
  lines.push('');
  lines.push('Per round (order, load average before -> after each variant):');
  for (const rd of rounds) {
    const rs = results.filter((r) => r.round === rd);
    lines.push(
      `- round ${rd + 1}: ` +
        rs
          .map((r) => `${r.variant} [load ${r.load}] p50 ${f3(r.fixed.p50)} p99 ${f3(r.fixed.p99)} ms, ${r.variant === 'direct' ? '' : `${f3(r.fixed.vcpu)} vCPU, `}${r.sat.rps.toFixed(0)} req/s sat`)
          .join('; '),
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  installCleanup();
  try {
    statSync(join(ROOT, 'dist', 'cli', 'main.js'));
  } catch {
    throw new Error('dist/ is missing: run `npm run build` first (the proxies run from the compiled CLI)');
  }
  const perRound = (SETTLE_MS / 1000 + WARMUP + SECONDS + SAT_SECONDS + 15) * VARIANTS.length + 30;
  const watchdog = setTimeout(() => {
    console.error(`benchmark still running after its time limit (${Math.round(perRound * ROUNDS + 120)} s): stopping`);
    stopAll().finally(() => process.exit(2));
  }, (perRound * ROUNDS + 120) * 1000);
  watchdog.unref();

  const dir = mkdtempSync(join(tmpdir(), 'trellis-vs-nginx-'));
  const ca = await createTestCa();
  // A signal ends the process without reaching the finally below: remove the temp files on exit too.
  process.once('exit', () => {
    ca.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  let app: Tracked | undefined;
  try {
    const idA = await ca.issue('default', 'a');
    const idB = await ca.issue('default', 'b');
    const tlsFiles = (n: string, id: typeof idA): TlsFiles => {
      const t = { cert: join(dir, `${n}.crt`), key: join(dir, `${n}.key`), ca: join(dir, `${n}.ca`) };
      writeFileSync(t.cert, ([] as string[]).concat(id.certChainPem).join('\n'));
      writeFileSync(t.key, id.keyPem, { mode: 0o600 });
      writeFileSync(t.ca, id.trustBundlePem);
      return t;
    };
    const appPort = await freePort();
    const appInst = await startNginx({ dir, name: 'app' }, appConfig({ dir, name: 'app' }, appPort, BODY_BYTES), appPort);
    app = appInst.tracked;
    const env: Env = { dir, appPort, tlsA: tlsFiles('a', idA), tlsB: tlsFiles('b', idB), idA, idB };

    const notes = [
      `Command: node --import tsx bench/proxy-vs-nginx.ts ${process.argv.slice(2).join(' ')}`.trim() + (NODE_FLAGS.length ? ` (BENCH_NODE_FLAGS="${NODE_FLAGS.join(' ')}")` : ''),
      `Machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; Node ${process.version}; ${tool(NGINX, ['-v'])}; fortio ${tool(FORTIO, ['version'])}; ${tool(WRK, ['-v'])}`,
      `Code: commit ${tool('git', ['-C', ROOT, 'describe', '--always', '--dirty'])}, dist/ built ${statSync(join(ROOT, 'dist', 'proxy', 'proxy.js')).mtime.toISOString()}.`,
      `Load average at start: ${loadAverage()}. Load generators (fortio, wrk) not pinned; nothing pinned (shared cores).`,
      `Trellis: \`trellis proxy --static-config\` from dist/, default telemetry, inbound ${INBOUND_L7 === 'auto' ? 'auto (L4 pipe after mTLS: no HTTP policy)' : 'always L7'}. nginx: one worker per instance, access_log off, TLS 1.2/1.3, upstream keepalive 32. App: nginx, one worker, ${BODY_BYTES}-byte body. Saturation: wrk -t1 -c${SAT_CONNS} -d${SAT_SECONDS}s.`,
    ];
    console.error(notes.join('\n'));

    const results: RunResult[] = [];
    const node: { one: Memory; many: Memory }[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
      for (const v of order) {
        console.error(`round ${round + 1}/${ROUNDS}: ${v} (load ${loadAverage()})`);
        const r = await runVariant(env, v, round);
        console.error(`  p50 ${f3(r.fixed.p50)} p99 ${f3(r.fixed.p99)} ms @ ${r.fixed.qps.toFixed(0)} req/s, proxy ${f3(r.fixed.vcpu)} vCPU; saturation ${r.sat.rps.toFixed(0)} req/s; errors ${r.fixed.errors + r.sat.errors}`);
        results.push(r);
      }
      if (VARIANTS.includes('trellis') && NODE_WORKLOADS > 1) {
        const ks = round % 2 === 0 ? [1, NODE_WORKLOADS] : [NODE_WORKLOADS, 1];
        const m: Record<number, Memory> = {};
        for (const k of ks) m[k] = await nodeModeUss(env, k);
        node.push({ one: m[1], many: m[NODE_WORKLOADS] });
        console.error(`  node mode idle USS: 1 workload ${mb(m[1].ussKb)} MB, ${NODE_WORKLOADS} workloads ${mb(m[NODE_WORKLOADS].ussKb)} MB`);
      }
    }
    const bare = await bareNodeUss();
    notes.push(`Load average at end: ${loadAverage()}.`);
    const text = report(results, node, bare, notes);
    console.log(text);
    if (values.json) writeFileSync(values.json, JSON.stringify({ results, node, bare }, null, 2));
  } finally {
    if (app) await stop(app);
    await stopAll();
    ca.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  async (err) => {
    console.error(err instanceof Error ? err.message : err);
    await stopAll();
    process.exit(1);
  },
);
