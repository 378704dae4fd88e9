// `trellis demo`: the embedded default — a bookinfo-like mesh with traffic and a live view of its edges.
import { fileURLToPath } from 'node:url';
import { CliError, parseVerbArgs, printTable } from './common.js';
import { loadFiles } from '../api/load.js';
import type { Resource, WorkloadSpec } from '../api/types.js';
import { startLocalMesh, LocalMeshError } from '../local/local-mesh.js';
import { freePorts, isListening } from '../local/ports.js';
import { emptyTally, startTraffic, checkTally } from '../local/demo-traffic.js';
import { edgeTotals, edgeDelta, scrape, type EdgeStat } from '../local/edge-stats.js';

const HELP = `
Usage: trellis demo [--duration S] [--state-dir DIR] [--rps N] [--mode node|sidecar]

Runs the built-in demo: a bookinfo-like app (productpage -> details, reviews v1/v2/v3 -> ratings)
behind Trellis proxies with STRICT mTLS, reviews split 90/10 between v1 and v2, requests with
header "user: test-user" routed to v2, an AuthorizationPolicy letting only productpage call reviews
(an intruder workload is refused), and retries on ratings. A load generator sends traffic and a live
view shows every edge: requests per second, success rate, p99 latency and mTLS.

Options:
  --duration S     run S seconds without the live view, print a summary, exit 0 if the expected
                   traffic pattern was seen (for tests and CI)
  --state-dir DIR  CA material and tokens; default .trellis/demo
  --rps N          load generator rate; default 20
  --mode MODE      node (default) or sidecar
`;

const DEMO_FILE = fileURLToPath(new URL('../../examples/demo/mesh.yaml', import.meta.url));

function fmtPct(v: number | undefined): string {
  return v === undefined ? '-' : `${(v * 100).toFixed(1)}%`;
}

function edgeRows(edges: EdgeStat[]): (string | number)[][] {
  return edges
    .filter((e) => e.requests > 0)
    .map((e) => [
      e.source,
      e.destination,
      e.rps.toFixed(1),
      fmtPct(e.successRate),
      e.p99Ms === undefined ? '-' : `${e.p99Ms.toFixed(1)} ms`,
      e.mtls ? 'yes' : 'NO',
      Object.entries(e.errors)
        .map(([c, n]) => `${c}:${n}`)
        .join(' '),
    ]);
}

export default async function demo(argv: string[]): Promise<number> {
  const args = parseVerbArgs(
    argv,
    { duration: { type: 'string' }, 'state-dir': { type: 'string' }, rps: { type: 'string' }, mode: { type: 'string' } },
    HELP,
    false,
  );
  if (!args) return 0;
  const duration = args.values.duration === undefined ? undefined : Number(args.values.duration);
  if (duration !== undefined && !(duration > 0)) throw new CliError(`--duration must be a positive number of seconds, not "${args.values.duration}"`);
  const rps = args.values.rps === undefined ? 20 : Number(args.values.rps);
  if (!(rps > 0 && rps <= 1000)) throw new CliError(`--rps must be between 1 and 1000, not "${args.values.rps}"`);
  const mode = (args.values.mode as string | undefined) ?? 'node';
  if (mode !== 'node' && mode !== 'sidecar') throw new CliError(`--mode must be node or sidecar, not "${mode}"`);

  const loaded = await loadFiles([DEMO_FILE]);
  if (loaded.diagnostics.some((d) => d.severity === 'error')) throw new CliError(`the demo's own config is invalid: ${loaded.diagnostics[0].message}`);
  const resources: Resource[] = loaded.resources;
  // The demo must start on a busy machine: give every app a free port instead of the file's fixed ones.
  const workloads = resources.filter((r) => r.kind === 'Workload');
  const ports = await freePorts(workloads.length + 2);
  for (const r of workloads) (r.spec as WorkloadSpec).ports![0].port = ports.pop()!;
  resources.push({
    apiVersion: 'trellis.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name: 'loadgen', namespace: 'default', labels: { app: 'loadgen' } },
    spec: { service: 'loadgen', serviceAccount: 'loadgen', ports: [{ name: 'http', port: ports.pop()!, protocol: 'HTTP' }] },
  } as Resource);
  const grpcPort = (await isListening(15010)) ? ports.pop()! : 15010;
  const httpPort = (await isListening(15014)) ? 0 : 15014;

  const live = duration === undefined && process.stdout.isTTY;
  const recent: string[] = [];
  console.log('starting the demo mesh: control plane, proxies, 8 workloads...');
  let mesh;
  try {
    mesh = await startLocalMesh({
      resources,
      mode: mode as 'node' | 'sidecar',
      stateDir: (args.values['state-dir'] as string | undefined) ?? '.trellis/demo',
      grpcPort,
      httpPort,
      showLogs: !live && duration === undefined,
      accessLog: false,
      onLog: (name, line) => {
        recent.push(`${name}: ${line}`);
        if (recent.length > 5) recent.shift();
      },
    });
  } catch (err) {
    if (err instanceof LocalMeshError) throw new CliError(err.message);
    throw err;
  }
  const byName = new Map(mesh.workloads.map((w) => [w.name, w]));
  const tally = emptyTally();
  const stopTraffic = startTraffic(
    { outboundPort: byName.get('loadgen')!.outboundPort, intruderPort: byName.get('intruder')?.appPort, rps, testUserShare: 0.1 },
    tally,
  );
  const metricsPorts = mesh.workloads.map((w) => w.metricsPort);
  const started = Date.now();
  let base = edgeTotals(await scrape(metricsPorts));
  let prev = base;
  let prevAt = Date.now();
  let last: EdgeStat[] = [];

  const finish = async (): Promise<number> => {
    stopTraffic();
    await new Promise((r) => setTimeout(r, 500));
    const totals = edgeTotals(await scrape(metricsPorts));
    const elapsed = (Date.now() - started) / 1000;
    const window = edgeDelta(base, totals, elapsed);
    await mesh.stop();
    console.log('');
    console.log(`Edges over ${elapsed.toFixed(0)} s:`);
    printTable(['SOURCE', 'DESTINATION', 'RPS', 'SUCCESS', 'P99', 'MTLS', 'ERRORS'], edgeRows(window));
    console.log('');
    const checks = checkTally(tally, window);
    for (const c of checks) console.log(`${c.ok ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`);
    const ok = checks.every((c) => c.ok);
    console.log(ok ? '\ndemo: every expected traffic pattern was seen' : '\ndemo: some expected traffic patterns were NOT seen');
    return ok ? 0 : 1;
  };

  return new Promise<number>((resolve) => {
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      clearInterval(tick);
      finish().then(resolve, (err) => {
        console.error(`error: ${(err as Error).message}`);
        resolve(1);
      });
    };
    const tick = setInterval(async () => {
      const cur = edgeTotals(await scrape(metricsPorts));
      const now = Date.now();
      last = edgeDelta(prev, cur, (now - prevAt) / 1000);
      prev = cur;
      prevAt = now;
      if (live) render(last, tally, recent, now - started);
      if (duration !== undefined && now - started >= duration * 1000) end();
    }, 1000);
    if (duration === undefined && !live) {
      console.log('demo running; Ctrl-C stops it');
    }
    process.once('SIGINT', end);
    process.once('SIGTERM', end);
  });
}

function render(edges: EdgeStat[], t: ReturnType<typeof emptyTally>, recent: string[], elapsedMs: number): void {
  const out: string[] = [];
  out.push('\x1b[2J\x1b[H' + `Trellis demo — ${Math.round(elapsedMs / 1000)} s — Ctrl-C to stop`);
  out.push('');
  const rows = edgeRows(edges);
  const headers = ['SOURCE', 'DESTINATION', 'RPS', 'SUCCESS', 'P99', 'MTLS', 'ERRORS'];
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  out.push(headers.map((h, i) => h.padEnd(widths[i])).join('  '));
  for (const r of rows) out.push(r.map((c, i) => String(c).padEnd(widths[i])).join('  '));
  const n = Object.values(t.normal).reduce((a, b) => a + b, 0);
  out.push('');
  out.push(`canary: reviews v1 ${t.normal.v1 ?? 0} / v2 ${t.normal.v2 ?? 0} of ${n} (v2 ${n ? (((t.normal.v2 ?? 0) / n) * 100).toFixed(1) : '0'}%, target 10%)`);
  out.push(`test-user: ${t.testUser.v2 ?? 0} of ${Object.values(t.testUser).reduce((a, b) => a + b, 0)} routed to reviews v2`);
  out.push(`intruder -> reviews: ${t.intruder.denied} denied, ${t.intruder.allowed} allowed`);
  if (recent.length) {
    out.push('', 'recent log lines:');
    out.push(...recent);
  }
  process.stdout.write(out.join('\n') + '\n');
}
