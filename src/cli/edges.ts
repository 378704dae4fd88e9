// `trellis edges`: who calls whom, with both identities, whether the calls use mTLS, and their golden signals.
import { CONTROL_OPTION, OUTPUT_OPTION, parseVerbArgs, printTable, wantsJson } from './common.js';
import { fetchStats, ms, pct, rate, unreachable } from './stat.js';

const HELP = `
Usage: trellis edges [--window S] [-o json] [--control ADDR]

Every caller -> destination pair with traffic in the last S seconds (default 10), as the
callers' proxies saw it: source and destination workloads and their SPIFFE identities, the
service called, whether the calls used mutual TLS (yes, no, or the share), rate, success
rate and p99 latency.

Options:
      --window S       window in seconds (default 10, at most 300)
  -o, --output json    print the edges as JSON
      --control ADDR   control plane HTTP API (default $TRELLIS_CONTROL or 127.0.0.1:15014)
  -h, --help           show this help
`;

export function mtlsText(share: number | undefined): string {
  if (share === undefined) return '-';
  if (share >= 1) return 'yes';
  if (share <= 0) return 'no';
  return `partly (${pct(share)})`;
}

export default async function edges(argv: string[]): Promise<number> {
  const args = parseVerbArgs(argv, { ...OUTPUT_OPTION, ...CONTROL_OPTION, window: { type: 'string' } }, HELP, false);
  if (!args) return 0;
  const json = wantsJson(args.values);
  const r = await fetchStats(args.values);
  if (json) {
    console.log(JSON.stringify({ windowSeconds: r.windowSeconds, at: r.at, edges: r.edges.map((e) => ({ ...e.dims, mtls: mtlsText(e.mtlsShare), ...e, dims: undefined })) }, null, 2));
    return 0;
  }
  if (!r.edges.length) console.log(`no calls between workloads in the last ${r.windowSeconds}s`);
  else
    printTable(
      ['SOURCE', 'DESTINATION', 'SERVICE', 'MTLS', 'RPS', 'SUCCESS', 'P99', 'SOURCE IDENTITY', 'DESTINATION IDENTITY'],
      r.edges.map((e) => [e.dims.source, e.dims.destination, e.dims.service, mtlsText(e.mtlsShare), rate(e.rps), pct(e.successRate), ms(e.p99Ms), e.dims.sourcePrincipal, e.dims.destinationPrincipal]),
    );
  for (const l of unreachable(r)) console.log(l);
  return 0;
}
