// `trellis cost`: the mesh's own overhead as the proxies measure it, and what it comes to at N workloads.
import { CONTROL_OPTION, OUTPUT_OPTION, CliError, controlAddress, controlApi, parseVerbArgs, printTable, wantsJson } from './common.js';
import type { CostReport } from '../telemetry/cost.js';
import { windowOption } from './stat.js';

const HELP = `
Usage: trellis cost [--window S] [--workloads N[,N...]] [-o json] [--control ADDR]

What the proxies cost, measured by each proxy about itself over the last S seconds (default 10):
resident memory (RSS), CPU (cores busy, and CPU seconds per 1,000 requests), the latency a
request spends in the proxy (total minus upstream time: routing, policy, queuing), and mTLS
handshakes accepted per second. Then the mesh total, and a projection to N workloads side by
side for sidecar mode (one proxy per workload) and node mode (one proxy per node hosting
several workloads), at today's traffic per workload.

Options:
      --window S          measuring window in seconds (default 10, at most 300)
      --workloads N,...   workload counts to project to (default 100,400,1000)
  -o, --output json       print the report as JSON
      --control ADDR      control plane HTTP API (default $TRELLIS_CONTROL or 127.0.0.1:15014)
  -h, --help              show this help
`;

const MiB = 1024 * 1024;
const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
const opt = (v: number | undefined, digits = 3, unit = '') => (v === undefined ? '-' : `${Number(v.toFixed(digits))}${unit}`);

export function formatCost(r: CostReport): string[] {
  const out: string[] = [];
  const rows = r.proxies.map((p) => [
    p.proxy,
    p.pid ?? '-',
    p.mode,
    p.workloads,
    mib(p.rssBytes),
    opt(p.cpuCores, 3),
    opt(p.rps, 1),
    opt(p.cpuSecondsPer1kRequests, 3),
    opt(p.addedLatencyMs.p50, 3, 'ms'),
    opt(p.addedLatencyMs.p99, 3, 'ms'),
    opt(p.handshakesPerSecond, 2),
  ]);
  const headers = ['PROXY', 'PID', 'MODE', 'WORKLOADS', 'RSS', 'CPU CORES', 'REQ/S', 'CPU S/1K REQ', 'ADDED P50', 'ADDED P99', 'HANDSHAKES/S'];
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((x) => String(x[i]).length)));
  const line = (cells: (string | number)[]) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd();
  out.push(line(headers), ...rows.map(line));
  const t = r.total;
  out.push(
    '',
    `mesh: ${t.proxies} proxies for ${t.workloads} workloads use ${mib(t.rssBytes)} and ${t.cpuCores} CPU cores at ${t.rps} requests/s` +
      (t.cpuSecondsPer1kRequests !== undefined ? ` (${t.cpuSecondsPer1kRequests} CPU seconds per 1,000 requests)` : '') +
      ` over ${r.windowSeconds}s`,
    '',
  );
  for (const p of r.projections) {
    out.push(
      `at ${p.workloads} workloads: sidecar ${p.sidecar.memoryGiB} GiB and ${p.sidecar.vcpu} vCPU for proxies; node mode ${p.node.memoryGiB} GiB and ${p.node.vcpu} vCPU (${p.node.proxies} node proxies of ${r.basis.workloadsPerNode} workloads)`,
    );
  }
  out.push(
    '',
    `basis: sidecar ${mib(r.basis.sidecarRssBytes)} each; node proxy ${mib(r.basis.nodeBaseRssBytes)} + ${mib(r.basis.nodePerWorkloadRssBytes)} per workload; ${r.basis.cpuCoresPerWorkload} cores per workload at today's traffic`,
    ...r.basis.notes.map((n) => `note: ${n}`),
  );
  return out;
}

export default async function cost(argv: string[]): Promise<number> {
  const args = parseVerbArgs(argv, { ...OUTPUT_OPTION, ...CONTROL_OPTION, window: { type: 'string' }, workloads: { type: 'string' } }, HELP, false);
  if (!args) return 0;
  const json = wantsJson(args.values);
  const window = windowOption(args.values);
  const at = (args.values.workloads as string | undefined) ?? '100,400,1000';
  if (!/^\d+(,\d+)*$/.test(at)) throw new CliError(`--workloads must be whole numbers separated by commas, e.g. 100,400 (got "${at}")`);
  const r = await controlApi<CostReport>(controlAddress(args.values.control), `/api/v1/cost?window=${window}&workloads=${at}`);
  if (json) console.log(JSON.stringify(r, null, 2));
  else if (!r.proxies.length) console.log('no proxies to measure (none connected, or none advertised a metrics port)');
  else console.log(formatCost(r).join('\n'));
  return 0;
}
