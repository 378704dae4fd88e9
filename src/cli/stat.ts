// `trellis stat`: live golden signals per service and workload (rate, success, latency percentiles, mTLS share).
import { CONTROL_OPTION, OUTPUT_OPTION, CliError, controlAddress, controlApi, parseVerbArgs, printTable, wantsJson } from './common.js';
import type { StatsReport } from '../control/stats.js';
import type { Golden } from '../telemetry/golden.js';

const HELP = `
Usage: trellis stat [services|workloads] [--window S] [-o json] [--control ADDR]

Golden signals measured by the proxies over the last S seconds (default 10), read live from
their /metrics through the control plane (no Prometheus needed): requests per second, success
rate (no 5xx and an answer sent), p50/p95/p99 latency, and the share of traffic over mTLS.
Services are seen by their callers' proxies; a workload's row counts the requests it served.

Options:
      --window S       averaging window in seconds (default 10, at most 300)
  -o, --output json    print the report as JSON
      --control ADDR   control plane HTTP API (default $TRELLIS_CONTROL or 127.0.0.1:15014)
  -h, --help           show this help
`;

export const pct = (v: number | undefined) => (v === undefined ? '-' : `${(v * 100).toFixed(v === 1 ? 0 : 1)}%`);
export const ms = (v: number | undefined) => (v === undefined ? '-' : v < 1 ? `${v.toFixed(2)}ms` : v < 100 ? `${v.toFixed(1)}ms` : `${Math.round(v)}ms`);
export const rate = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(v >= 10 ? 1 : 2));

export function goldenRow(g: Golden): (string | number)[] {
  return [rate(g.rps), pct(g.successRate), ms(g.p50Ms), ms(g.p95Ms), ms(g.p99Ms), pct(g.mtlsShare), g.requests];
}
export const GOLDEN_HEADERS = ['RPS', 'SUCCESS', 'P50', 'P95', 'P99', 'MTLS', 'REQUESTS'];

export function windowOption(values: Record<string, unknown>): number {
  const w = values.window;
  if (w === undefined) return 10;
  const n = Number(w);
  if (!Number.isFinite(n) || n <= 0 || n > 300) throw new CliError(`--window must be a number of seconds between 0 and 300 (got "${String(w)}")`);
  return n;
}

export async function fetchStats(values: Record<string, unknown>): Promise<StatsReport> {
  return controlApi<StatsReport>(controlAddress(values.control), `/api/v1/stats?window=${windowOption(values)}`);
}

/** One line per proxy that could not be scraped (its figures are missing, not zero). */
export function unreachable(r: StatsReport): string[] {
  return r.targets.filter((t) => !t.ok).map((t) => `note: proxy ${t.proxy} could not be scraped at ${t.url}${t.error ? ` (${t.error})` : ''}`);
}

export default async function stat(argv: string[]): Promise<number> {
  const args = parseVerbArgs(argv, { ...OUTPUT_OPTION, ...CONTROL_OPTION, window: { type: 'string' } }, HELP);
  if (!args) return 0;
  const [what, ...rest] = args.positionals;
  if (rest.length || (what !== undefined && what !== 'services' && what !== 'workloads')) throw new CliError(`stat shows "services" or "workloads" (got "${args.positionals.join(' ')}"; see --help)`);
  const json = wantsJson(args.values);
  const r = await fetchStats(args.values);
  if (json) {
    console.log(JSON.stringify(what ? { windowSeconds: r.windowSeconds, at: r.at, targets: r.targets, [what]: r[what] } : { windowSeconds: r.windowSeconds, at: r.at, targets: r.targets, services: r.services, workloads: r.workloads }, null, 2));
    return 0;
  }
  if (!r.targets.length) {
    console.log('no proxies to read from (none connected, or none advertised a metrics port)');
    return 0;
  }
  if (what !== 'workloads') {
    printTable(['SERVICE', ...GOLDEN_HEADERS], r.services.map((g) => [g.dims.service, ...goldenRow(g)]));
    if (!r.services.length) console.log('(no requests to services in the window)');
  }
  if (!what) console.log('');
  if (what !== 'services') {
    printTable(['WORKLOAD', ...GOLDEN_HEADERS], r.workloads.map((g) => [g.dims.workload, ...goldenRow(g)]));
    if (!r.workloads.length) console.log('(no requests to workloads in the window)');
  }
  console.log(`\nover the last ${r.windowSeconds}s`);
  for (const l of unreachable(r)) console.log(l);
  return 0;
}
