// `trellis status`: every connected proxy with its workloads and xDS sync state per type.
import { CONTROL_OPTION, OUTPUT_OPTION, controlAddress, controlApi, parseVerbArgs, printTable, wantsJson } from './common.js';

const HELP = `
Usage: trellis status [-o json] [--control ADDR]

Every proxy connected to the control plane: its workloads, how long it has been connected,
the xDS sync state per type (SYNCED, STALE = sent but not yet acknowledged, NACKED = rejected,
with the proxy's reason), when its earliest workload certificate expires (CERT EXPIRY, from
the certificates this control plane signed for it; EXPIRED when past), and its version. -o json also lists every known workload with its
proxy's ports.

Options:
  -o, --output json    print {proxies, workloads} as JSON
      --control ADDR   control plane HTTP API (default $TRELLIS_CONTROL or 127.0.0.1:15014)
  -h, --help           show this help
`;

export interface TypeStatus {
  state: 'SYNCED' | 'STALE' | 'NACKED';
  sentVersion?: string;
  ackedVersion?: string;
  nackReason?: string;
  sentAt?: string;
}
export interface ProxyStatus {
  id: string;
  kind: string;
  connectedSince: string;
  version?: string;
  certExpiry?: string;
  certificates?: { spiffeId: string; issuedAt: string; notAfter: string; rootFingerprint?: string }[];
  workloads: { name: string; namespace: string; health: string; proxy?: { inboundPort: number; outboundPort: number; adminPort?: number } }[];
  types: Record<string, TypeStatus>;
}

export const TYPE_COLUMNS: [string, string][] = [
  ['listeners', 'LDS'],
  ['routes', 'RDS'],
  ['clusters', 'CDS'],
  ['endpoints', 'EDS'],
  ['secrets', 'SDS'],
];

export function since(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

/** How long until an ISO time, in the largest sensible unit; EXPIRED when past. */
export function expiresIn(iso: string, now = Date.now()): string {
  const s = (Date.parse(iso) - now) / 1000;
  if (!Number.isFinite(s)) return '-';
  if (s <= 0) return 'EXPIRED';
  if (s < 120) return `${Math.floor(s)}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export default async function status(argv: string[]): Promise<number> {
  const args = parseVerbArgs(argv, { ...OUTPUT_OPTION, ...CONTROL_OPTION }, HELP, false);
  if (!args) return 0;
  const json = wantsJson(args.values);
  const addr = controlAddress(args.values.control);
  const { proxies } = await controlApi<{ proxies: ProxyStatus[] }>(addr, '/api/v1/proxies');
  if (json) {
    const reg = await controlApi<{ workloads: unknown[] }>(addr, '/api/v1/registry');
    console.log(JSON.stringify({ proxies, workloads: reg.workloads }, null, 2));
    return 0;
  }
  if (!proxies.length) {
    console.log(`no proxies connected to the control plane at ${addr}`);
    return 0;
  }
  const rows = proxies.map((p) => [
    p.id,
    p.workloads.map((w) => `${w.namespace}/${w.name}`).join(',') || (p.kind === 'proxyless' ? '(proxyless)' : '-'),
    since(p.connectedSince),
    ...TYPE_COLUMNS.map(([t]) => p.types[t]?.state ?? '-'),
    p.certExpiry ? expiresIn(p.certExpiry) : '-',
    p.version ?? '-',
  ]);
  printTable(['PROXY', 'WORKLOADS', 'CONNECTED', ...TYPE_COLUMNS.map(([, c]) => c), 'CERT EXPIRY', 'VERSION'], rows);
  for (const p of proxies)
    for (const [t, s] of Object.entries(p.types))
      if (s.state === 'NACKED') console.log(`${p.id}: ${t} NACKED (version ${s.sentVersion}): ${s.nackReason ?? 'no reason given'}`);
  const off = proxies.flatMap((p) => p.workloads.filter((w) => w.health !== 'HEALTHY' || Object.values(p.types).some((s) => s.state === 'NACKED')));
  if (off.length) console.log(`see \`trellis describe workload ${off[0].namespace}/${off[0].name}\` for what applies to it, and \`trellis check\` for every problem`);
  return 0;
}
