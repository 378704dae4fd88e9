// Benchmark: what resilience policies and telemetry cost on the Trellis two-hop mTLS chain, as saturation throughput of variants run side by side, interleaved.
// Usage: npm run build && node --import tsx bench/policy-overhead.ts [--rounds 6] [--sat-seconds 10] [--variants base,l7,policies,telemetry]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Resource } from '../src/api/types.js';
import { createTestCa } from '../test/proxy/helpers/ca.js';
import { chainConfigs, type ChainPorts } from './chain-config.js';
import { installCleanup, start, stop, stopAll, type Tracked } from './children.js';
import { appConfig, startNginx } from './nginx-chain.js';
import { loadAverage, median, totalCpuSeconds } from './proc-stats.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string' },
    'sat-seconds': { type: 'string' },
    'sat-connections': { type: 'string' },
    warmup: { type: 'string' },
    variants: { type: 'string' },
    json: { type: 'string' },
  },
});

const VARIANT_NAMES = ['base', 'l7', 'resilience', 'policies', 'telemetry'] as const;
type Variant = (typeof VARIANT_NAMES)[number];
const ROUNDS = Number(values.rounds ?? 6);
const SAT_SECONDS = Number(values['sat-seconds'] ?? 10);
const SAT_CONNS = Number(values['sat-connections'] ?? 32);
const WARMUP = Number(values.warmup ?? 3);
const VARIANTS = (values.variants ?? VARIANT_NAMES.join(',')).split(',') as Variant[];
const BODY_BYTES = 1024;
const WRK = process.env.WRK ?? 'wrk';
const NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The compiled CLI; TRELLIS_DIST points at another build of dist/ (e.g. a private copy while others rebuild the shared one). */
const DIST = process.env.TRELLIS_DIST ?? join(ROOT, 'dist');
const CLI = join(DIST, 'cli', 'main.js');
/** High enough never to trip at this machine's few thousand requests per second. */
const HIGH = 1_000_000;

for (const v of VARIANTS) if (!VARIANT_NAMES.includes(v)) throw new Error(`--variants: unknown variant "${v}" (${VARIANT_NAMES.join(', ')})`);
if (!VARIANTS.includes('base')) throw new Error('--variants must include base (every ratio is against it)');
for (const [k, n] of Object.entries({ ROUNDS, SAT_SECONDS, SAT_CONNS, WARMUP })) if (!Number.isFinite(n) || n < 0) throw new Error(`${k}: not a number`);
if (SAT_SECONDS <= 0 || ROUNDS < 1) throw new Error('--sat-seconds and --rounds must be at least 1');

const res = (apiVersion: string, kind: string, name: string, spec: unknown, namespace = 'default'): Resource =>
  ({ apiVersion, kind, metadata: { name, namespace }, spec }) as Resource;

/** Retries, circuit breaker, outlier detection on the route to b; a local rate limit on b's inbound. None can trip here. */
function policyResources(): Resource[] {
  return [
    res('networking.istio.io/v1', 'VirtualService', 'b', {
      hosts: ['b'],
      http: [{ name: 'bench', route: [{ destination: { host: 'b' } }], retries: { attempts: 3, retryOn: '5xx,reset,connect-failure' } }],
    }),
    res('networking.istio.io/v1', 'DestinationRule', 'b', {
      host: 'b',
      trafficPolicy: {
        connectionPool: { tcp: { maxConnections: HIGH }, http: { http1MaxPendingRequests: HIGH, http2MaxRequests: HIGH, maxRetries: HIGH } },
        outlierDetection: { consecutive5xxErrors: 5, consecutiveGatewayErrors: 5, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 100 },
      },
    }),
    rateLimit(HIGH, '1s'),
  ];
}

function rateLimit(requests: number, per: string): Resource {
  return res('trellis.dev/v1alpha1', 'RateLimitPolicy', 'b', {
    selector: { matchLabels: { app: 'b' } },
    limits: { total: { requests, per }, perCaller: { requests, per } },
  });
}

/** Mesh telemetry as the issue states it: metrics (always on), access logs off, tracing at 1% of new traces. */
function telemetryResources(otlpPort: number): Resource[] {
  return [
    res('trellis.dev/v1alpha1', 'Mesh', 'default', {
      accessLog: { enabled: false },
      tracing: { endpoint: `http://127.0.0.1:${otlpPort}/v1/traces`, sampling: 1 },
    }, 'trellis-system'),
  ];
}

/** n distinct free ports: all held open at once, so none repeats (ports picked one by one can come back twice). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Server>((r) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => r(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function get(port: number, path: string, host = '127.0.0.1'): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ port, host: '127.0.0.1', path, headers: { host }, agent: false, timeout: 5000 }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (d) => (body += d));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body, headers: r.headers }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} on ${port}: no answer in 5 s`)));
    req.on('error', reject);
  });
}

/** A minimal OTLP/HTTP receiver in this process: counts the spans the proxies export (proof that tracing ran). */
async function otlpReceiver(): Promise<{ port: number; spans: () => number; close(): void }> {
  let spans = 0;
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      try {
        const msg = JSON.parse(body) as { resourceSpans?: { scopeSpans?: { spans?: unknown[] }[] }[] };
        for (const rs of msg.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans += ss.spans?.length ?? 0;
      } catch {
        /* counted as nothing */
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return { port: (srv.address() as net.AddressInfo).port, spans: () => spans, close: () => srv.close() };
}

interface Files {
  dir: string;
  cert: string;
  key: string;
  ca: string;
}

interface RunningProxy {
  tracked: Tracked;
  adminPort: number;
  metricsPort: number;
}

/** `trellis proxy --static-config` from the compiled CLI (not under tsx); resolves at its ready line. */
async function startProxy(name: string, workload: string, cfg: object, tls: Files, l7: boolean, adminPort: number): Promise<RunningProxy> {
  const cfgPath = join(tls.dir, `${name}.json`);
  writeFileSync(cfgPath, JSON.stringify(cfg));
  const args = [...NODE_FLAGS, CLI, 'proxy', '--workload', workload, '--static-config', cfgPath, '--cert', tls.cert, '--key', tls.key, '--ca', tls.ca, '--metrics-port', '0', '--admin-port', String(adminPort), '--drain-timeout', '1s', '--log-level', 'warn'];
  if (l7) args.push('--inbound-l7', 'always');
  const t = start(`trellis ${name}`, process.execPath, args);
  let err = '';
  t.proc.stderr!.on('data', (d) => (err = (err + d).slice(-4000)));
  const metricsPort = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`trellis ${name}: not ready after 30 s: ${err.trim()}`)), 30_000);
    let out = '';
    t.proc.stdout!.on('data', (d) => {
      out += d;
      const m = /trellis proxy ready:.*metrics (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    t.proc.once('exit', (c) => {
      clearTimeout(timer);
      reject(new Error(`trellis ${name} exited ${c}: ${err.trim()}`));
    });
  });
  return { tracked: t, adminPort, metricsPort };
}

interface Chain {
  a: RunningProxy;
  b: RunningProxy;
  outPort: number;
}

interface Env {
  dir: string;
  appPort: number;
  tlsA: Files;
  tlsB: Files;
  bundlePem: string;
  otlpPort: number;
}

/** Ports are free when picked, but another job on the machine may take one before the proxy binds it: try again. */
async function startChain(env: Env, resources: Resource[], l7: boolean): Promise<Chain> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startChainOnce(env, resources, l7);
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE/.test((err as Error).message)) throw err;
      console.error(`  (a port was taken before a proxy bound it; starting the chain again: ${(err as Error).message.split('\n')[0]})`);
    }
  }
}

async function startChainOnce(env: Env, resources: Resource[], l7: boolean): Promise<Chain> {
  const [outA, inA, outB, inB, appA, adminA, adminB] = await freePorts(7);
  const ports: ChainPorts = { app: env.appPort, outA, inA, outB, inB, appA };
  const cfg = chainConfigs(resources, ports, env.bundlePem);
  const b = await startProxy('b', 'default/b', cfg.b, env.tlsB, l7, adminB);
  try {
    const a = await startProxy('a', 'default/a', cfg.a, env.tlsA, l7, adminA);
    return { a, b, outPort: ports.outA };
  } catch (err) {
    await stop(b.tracked);
    throw err;
  }
}

async function stopChain(c: Chain): Promise<void> {
  await stop(c.a.tracked);
  await stop(c.b.tracked);
}

async function checkChain(port: number): Promise<void> {
  const r = await get(port, '/', 'b');
  if (r.status !== 200 || r.body.length !== BODY_BYTES) throw new Error(`chain on ${port}: status ${r.status}, ${r.body.length} body bytes (want 200, ${BODY_BYTES}): ${r.body.slice(0, 200)}`);
}

async function runTool(name: string, cmd: string, args: string[], limitMs: number): Promise<{ code: number | null; out: string; err: string }> {
  const t = start(name, cmd, args);
  let out = '';
  let err = '';
  t.proc.stdout!.on('data', (d) => (out += d));
  t.proc.stderr!.on('data', (d) => (err += d));
  const timer = setTimeout(() => void stop(t, 1000), limitMs);
  await t.exited;
  clearTimeout(timer);
  if (t.spawnError) throw new Error(`cannot run ${cmd} (${t.spawnError.message}): install it (apt-get install wrk) or set WRK`);
  return { code: t.proc.exitCode, out, err };
}

async function wrk(port: number, seconds: number): Promise<{ rps: number; requests: number; errors: number }> {
  const r = await runTool('wrk', WRK, ['-t1', `-c${SAT_CONNS}`, `-d${seconds}s`, '-H', 'Host: b', `http://127.0.0.1:${port}/`], (seconds + 30) * 1000);
  if (r.code !== 0) throw new Error(`wrk exited ${r.code}: ${r.err.trim()}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.out)?.[1] ?? NaN);
  const requests = Number(/(\d+) requests in/.exec(r.out)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(r.out);
  const errors = non2xx + (sock ? Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]) : 0);
  return { rps, requests, errors };
}

async function json(port: number, path: string): Promise<any> {
  const r = await get(port, path);
  if (r.status !== 200) throw new Error(`GET ${path} on ${port}: ${r.status} ${r.body.slice(0, 200)}`);
  return JSON.parse(r.body);
}

async function metricsText(port: number): Promise<string> {
  return (await get(port, '/metrics')).body;
}

/** Sum of a Prometheus counter's samples whose labels contain every `match` fragment. */
function counter(text: string, name: string, ...match: string[]): number {
  let n = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (match.every((m) => line.includes(m))) n += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
  }
  return n;
}

/** Every object under `v` (config dumps are nested). */
function* walk(v: unknown): Generator<Record<string, any>> {
  if (Array.isArray(v)) for (const x of v) yield* walk(x);
  else if (v && typeof v === 'object') {
    yield v as Record<string, any>;
    for (const x of Object.values(v)) yield* walk(x);
  }
}

interface Evidence {
  [k: string]: unknown;
}

/**
 * What the proxies say was active during a measured run, read after it: the benchmark must not be able to
 * measure nothing. Throws when a variant's mechanism is missing.
 */
async function evidence(variant: Variant, chain: Chain, requests: number, spansBefore: number, spans: () => number): Promise<Evidence> {
  const [dumpA, dumpB, resA, metA, metB] = await Promise.all([
    json(chain.a.adminPort, '/config_dump'),
    json(chain.b.adminPort, '/config_dump'),
    json(chain.a.adminPort, '/resilience'),
    metricsText(chain.a.metricsPort),
    metricsText(chain.b.metricsPort),
  ]);
  const objs = [...walk(dumpA)];
  const retry = objs.find((o) => o.retry_policy)?.retry_policy;
  const cluster = objs.find((o) => typeof o.name === 'string' && o.name.startsWith('outbound|80||b.') && (o.circuit_breakers || o.type === 'EDS'));
  const rlFilter = [...walk(dumpB)].find((o) => o.name === 'envoy.filters.http.local_ratelimit');
  const resilience = Object.entries(resA as Record<string, any>).find(([k]) => k.startsWith('outbound|80||b.'))?.[1];
  const e: Evidence = {
    sourceRequests: counter(metA, 'trellis_requests_total', 'reporter="source"'),
    destinationRequests: counter(metB, 'trellis_requests_total', 'reporter="destination"'),
    rateLimited: counter(metB, 'trellis_rate_limited_total'),
  };
  const fail = (why: string) => {
    throw new Error(`${variant}: ${why} (evidence: ${JSON.stringify(e)})`);
  };
  const withPolicies = variant === 'policies' || variant === 'resilience';
  if (withPolicies) {
    e.retryPolicy = retry ? { num_retries: retry.num_retries, retry_on: retry.retry_on } : undefined;
    e.circuitBreakers = cluster?.circuit_breakers?.thresholds?.[0];
    e.outlierDetection = cluster?.outlier_detection ? Object.keys(cluster.outlier_detection).length : 0;
    e.rateLimitFilter = Boolean(rlFilter);
    e.breaker = resilience?.breaker;
    e.outlier = resilience?.outlier;
    e.budgetWindow = resilience?.budget;
    if (!retry || Number(retry.num_retries?.value ?? retry.num_retries) !== 3) fail('route has no retry_policy with 3 retries in a\'s config dump');
    if (!cluster?.circuit_breakers) fail('cluster b has no circuit_breakers in a\'s config dump');
    if (!cluster?.outlier_detection) fail('cluster b has no outlier_detection in a\'s config dump');
    if (!resilience?.outlier) fail('a\'s /resilience shows no outlier detector for cluster b');
    // The retry budget counts every first try: it must have seen the measured requests (its window is 10 s).
    if (!(Number(resilience?.budget?.requests) > 0)) fail('a\'s retry budget counted no requests');
  }
  if (variant === 'policies') {
    if (!rlFilter) fail('b\'s inbound has no local_ratelimit filter in its config dump');
    // Every request crossed b's limiter (metered pipe or L7 stack, both report destination requests): ~ what wrk completed
    // (wrk does not count the requests still in flight when it stops).
    if (!(Number(e.destinationRequests) >= 0.99 * requests)) fail(`b counted ${e.destinationRequests} requests at its inbound, wrk completed ${requests}`);
    if (Number(e.rateLimited) !== 0) fail('the rate limit refused requests (the limit must not trip)');
  }
  if (variant === 'telemetry') {
    e.spansExported = spans() - spansBefore;
    e.tracingListener = objs.some((o) => o.tracing);
    if (!e.tracingListener) fail('a\'s listeners carry no HCM tracing block');
    // 1% of new traces, two spans (a's CLIENT span, b's... b is L4 here) per sampled request: at least a few.
    if (!(Number(e.spansExported) > 0)) fail('no spans reached the OTLP receiver');
  }
  if (variant !== 'policies' && rlFilter) fail('unexpected rate limit filter');
  return e;
}

/** Once per run: the same policy config with a small rate limit does refuse requests (so the high limit is live code, not ignored config). */
async function tripwire(env: Env): Promise<string> {
  const resources = policyResources().filter((r) => r.kind !== 'RateLimitPolicy');
  resources.push(rateLimit(20, '60s'));
  const chain = await startChain(env, resources, false);
  try {
    const statuses: number[] = [];
    let retryAfter = '';
    for (let i = 0; i < 30; i++) {
      const r = await get(chain.outPort, '/', 'b');
      statuses.push(r.status);
      if (r.status === 429) retryAfter = `${r.headers['x-trellis-error']}, retry-after ${r.headers['retry-after']}`;
    }
    const ok = statuses.filter((s) => s === 200).length;
    const limited = statuses.filter((s) => s === 429).length;
    if (ok !== 20 || limited !== 10) throw new Error(`tripwire: limit 20 per 60s let ${ok} of 30 through and refused ${limited} (want 20 and 10)`);
    return `limit 20/60s: 20 x 200 then 10 x 429 (${retryAfter})`;
  } finally {
    await stopChain(chain);
  }
}

interface RunResult {
  variant: Variant;
  round: number;
  load: string;
  rps: number;
  requests: number;
  errors: number;
  /** CPU seconds of both proxies per 1,000 requests during the measured run. */
  cpuPer1k: number;
  evidence: Evidence;
}

function resourcesOf(v: Variant, env: Env): Resource[] {
  if (v === 'resilience') return policyResources().filter((r) => r.kind !== 'RateLimitPolicy');
  return v === 'policies' ? policyResources() : v === 'telemetry' ? telemetryResources(env.otlpPort) : [];
}

async function runVariant(env: Env, v: Variant, round: number, spans: () => number): Promise<RunResult> {
  const chain = await startChain(env, resourcesOf(v, env), v === 'l7');
  try {
    await checkChain(chain.outPort);
    if (WARMUP > 0) await wrk(chain.outPort, WARMUP);
    const load0 = loadAverage();
    const pids = [chain.a.tracked.proc.pid!, chain.b.tracked.proc.pid!];
    const spans0 = spans();
    const cpu0 = totalCpuSeconds(pids);
    const w = await wrk(chain.outPort, SAT_SECONDS);
    const cpu = totalCpuSeconds(pids) - cpu0;
    // Spans are exported in batches once a second: give the last batch time to arrive.
    if (v === 'telemetry') await new Promise((r) => setTimeout(r, 1500));
    const ev = await evidence(v, chain, w.requests, spans0, spans);
    return { variant: v, round, load: `${load0} -> ${loadAverage()}`, rps: w.rps, requests: w.requests, errors: w.errors, cpuPer1k: (cpu / w.requests) * 1000, evidence: ev };
  } finally {
    await stopChain(chain);
  }
}

function tool(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  if (r.error) return `${cmd} unavailable (${r.error.message})`;
  return `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim().split('\n')[0].trim();
}

const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');
const f3 = (n: number) => (Number.isFinite(n) ? n.toFixed(3) : 'n/a');

const DESCRIBE: Record<Variant, string> = {
  base: 'no policies; minimal telemetry (metrics on: they cannot be turned off; tracing off; access log off); inbound auto (L4 pipe after mTLS)',
  resilience: 'policies without the RateLimitPolicy: retries, connectionPool limits and outlierDetection on the route to b; inbound auto (stays L4)',
  l7: 'base, with the inbound parsing HTTP (`--inbound-l7 always`): what any inbound HTTP policy, such as a rate limit, switches on',
  policies: 'retries (attempts 3, retryOn 5xx,reset,connect-failure) + DestinationRule connectionPool limits (1e6) + outlierDetection on the route to b; RateLimitPolicy on b (total and per caller, 1e6/s); inbound auto (a limit on every path: the metered mTLS pipe counts each request without the HTTP stack)',
  telemetry: 'no policies; Mesh tracing to an OTLP/HTTP receiver at 1% sampling; access log off; metrics on',
};

function report(results: RunResult[], notes: string[]): string {
  const lines = [...notes, ''];
  const rounds = [...new Set(results.map((r) => r.round))];
  const perRound = (v: Variant, against: Variant, f: (r: RunResult) => number) =>
    median(rounds.map((rd) => {
      const x = results.find((r) => r.variant === v && r.round === rd);
      const y = results.find((r) => r.variant === against && r.round === rd);
      return x && y ? f(x) / f(y) : NaN;
    }));
  const ratio = (v: Variant, against: Variant) => perRound(v, against, (r) => r.rps);
  const cpuRatio = (v: Variant, against: Variant) => perRound(v, against, (r) => r.cpuPer1k);
  const vsL7 = (v: Variant) => VARIANTS.includes('l7') && v === 'policies';
  lines.push('| variant | what | median req/s | throughput / base (median of per-round ratios) | throughput / l7 | CPU s per 1,000 req (both proxies) | CPU per req / base | CPU per req / l7 | errors |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const v of VARIANTS) {
    const rs = results.filter((r) => r.variant === v);
    lines.push(
      `| ${v} | ${DESCRIBE[v]} | ${median(rs.map((r) => r.rps)).toFixed(0)} | ${v === 'base' ? '1' : f3(ratio(v, 'base'))} | ${vsL7(v) ? f3(ratio(v, 'l7')) : '—'} | ${f3(median(rs.map((r) => r.cpuPer1k)))} | ${v === 'base' ? '1' : f3(cpuRatio(v, 'base'))} | ${vsL7(v) ? f3(cpuRatio(v, 'l7')) : '—'} | ${rs.reduce((s, r) => s + r.errors, 0)} |`,
    );
  }
  lines.push('');
  const verdict = (v: Variant, label: string) => {
    if (!VARIANTS.includes(v)) return;
    const r = ratio(v, 'base');
    lines.push(`- ${label}: ${f3(r)} of base, i.e. ${f2((1 - r) * 100)}% lost (target <= 10%): ${r >= 0.9 ? 'met' : 'MISSED'}; CPU per request ${f3(cpuRatio(v, 'base'))}x base`);
  };
  verdict('policies', 'Resilience policies (issue 5)');
  verdict('resilience', 'Retries + circuit breaker + outlier detection, no rate limit (inbound stays L4)');
  if (VARIANTS.includes('policies') && VARIANTS.includes('l7')) {
    const r = ratio('policies', 'l7');
    lines.push(`  - against base with the inbound at L7 (the same parsing the rate limit needs): ${f3(r)}, ${f2((1 - r) * 100)}% lost: ${r >= 0.9 ? 'met' : 'MISSED'}; CPU per request ${f3(cpuRatio('policies', 'l7'))}x l7`);
  }
  verdict('telemetry', 'Telemetry on (issue 7)');
  lines.push('');
  lines.push('Per round (req/s, CPU s per 1,000 req; load average before -> after the measured run):');
  for (const rd of rounds) lines.push(`- round ${rd + 1}: ${results.filter((r) => r.round === rd).map((r) => `${r.variant} ${r.rps.toFixed(0)}, ${f3(r.cpuPer1k)} [${r.load}]`).join('; ')}`);
  lines.push('');
  lines.push('Evidence, last round:');
  for (const v of VARIANTS) {
    const r = results.filter((x) => x.variant === v).at(-1);
    if (r) lines.push(`- ${v}: ${JSON.stringify(r.evidence)}`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  installCleanup();
  try {
    statSync(CLI);
  } catch {
    throw new Error(`${CLI} is missing: run \`npm run build\` first (the proxies run from the compiled CLI)`);
  }
  const perRun = WARMUP + SAT_SECONDS + 15;
  const limitS = perRun * VARIANTS.length * ROUNDS + 120;
  const watchdog = setTimeout(() => {
    console.error(`benchmark still running after its time limit (${limitS} s): stopping`);
    stopAll().finally(() => process.exit(2));
  }, limitS * 1000);
  watchdog.unref();

  const dir = mkdtempSync(join(tmpdir(), 'trellis-policy-bench-'));
  const ca = await createTestCa();
  process.once('exit', () => {
    ca.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });
  const otlp = await otlpReceiver();
  let app: Tracked | undefined;
  try {
    const files = (n: string, id: Awaited<ReturnType<typeof ca.issue>>): Files => {
      const f = { dir, cert: join(dir, `${n}.crt`), key: join(dir, `${n}.key`), ca: join(dir, `${n}.ca`) };
      writeFileSync(f.cert, ([] as string[]).concat(id.certChainPem).join('\n'));
      writeFileSync(f.key, id.keyPem, { mode: 0o600 });
      writeFileSync(f.ca, id.trustBundlePem);
      return f;
    };
    const idA = await ca.issue('default', 'a');
    const idB = await ca.issue('default', 'b');
    const [appPort] = await freePorts(1);
    app = (await startNginx({ dir, name: 'app' }, appConfig({ dir, name: 'app' }, appPort, BODY_BYTES), appPort)).tracked;
    const env: Env = { dir, appPort, tlsA: files('a', idA), tlsB: files('b', idB), bundlePem: idA.trustBundlePem, otlpPort: otlp.port };

    const notes = [
      `Command: node --import tsx bench/policy-overhead.ts ${process.argv.slice(2).join(' ')}`.trim() + (NODE_FLAGS.length ? ` (BENCH_NODE_FLAGS="${NODE_FLAGS.join(' ')}")` : ''),
      `Machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; Node ${process.version}; ${tool(WRK, ['-v'])}; app: nginx, one worker, ${BODY_BYTES}-byte body.`,
      `Code: commit ${tool('git', ['-C', ROOT, 'describe', '--always', '--dirty'])}, proxies from ${DIST === join(ROOT, 'dist') ? 'dist/' : 'TRELLIS_DIST'} built ${statSync(join(DIST, 'proxy', 'proxy.js')).mtime.toISOString()}.`,
      `Load average at start: ${loadAverage()}. Saturation: wrk -t1 -c${SAT_CONNS} -d${SAT_SECONDS}s after a ${WARMUP} s wrk warm-up, fresh proxies per run; rounds alternate the order of variants.`,
    ];
    console.error(notes.join('\n'));
    if (VARIANTS.includes('policies')) {
      const t = await tripwire(env);
      notes.push(`Rate-limit tripwire (same policies, small limit): ${t}.`);
      console.error(`tripwire: ${t}`);
    }
    const results: RunResult[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
      for (const v of order) {
        const r = await runVariant(env, v, round, otlp.spans);
        console.error(`round ${round + 1}/${ROUNDS} ${v}: ${r.rps.toFixed(0)} req/s, ${f3(r.cpuPer1k)} CPU s/1k req, errors ${r.errors} [load ${r.load}]`);
        results.push(r);
      }
    }
    notes.push(`Load average at end: ${loadAverage()}.`);
    console.log(report(results, notes));
    if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 2));
  } finally {
    if (app) await stop(app);
    await stopAll();
    otlp.close();
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
