// `trellis config PROXY [TYPE]`: the xDS config a proxy holds (last acknowledged, else last sent).
import { CONTROL_OPTION, CliError, OUTPUT_OPTION, controlAddress, controlApi, parseVerbArgs, printTable, wantsJson } from './common.js';

const TYPES = ['listeners', 'routes', 'clusters', 'endpoints', 'secrets'];

const HELP = `
Usage: trellis config PROXY [listeners|routes|clusters|endpoints|secrets] [-o json] [--control ADDR]

The xDS config a connected proxy holds: what it last acknowledged (or, before its first
ACK, what was last sent). PROXY is the proxy's id as \`trellis status\` shows it.
Without -o json, prints one line per resource; -o json prints the decoded resources.

Options:
  -o, --output json    print the full decoded config as JSON
      --control ADDR   control plane HTTP API (default $TRELLIS_CONTROL or 127.0.0.1:15014)
  -h, --help           show this help
`;

function summary(type: string, r: Record<string, any>): string {
  switch (type) {
    case 'listeners': {
      const a = r.address?.socket_address;
      return a ? `${a.address}:${a.port_value}` : r.api_listener ? 'api_listener' : '';
    }
    case 'routes':
      return `${(r.virtual_hosts ?? []).length} virtual host(s)`;
    case 'clusters':
      return `${r.type ?? ''} ${r.lb_policy ?? ''}`.trim();
    case 'endpoints': {
      const eps = (r.endpoints ?? []).flatMap((l: any) => l.lb_endpoints ?? []);
      return eps
        .map((e: any) => {
          const a = e.endpoint?.address?.socket_address;
          return a ? `${a.address}:${a.port_value}${e.health_status && e.health_status !== 'HEALTHY' ? `(${e.health_status})` : ''}` : '?';
        })
        .join(' ');
    }
    default:
      return '';
  }
}

export default async function config(argv: string[]): Promise<number> {
  const args = parseVerbArgs(argv, { ...OUTPUT_OPTION, ...CONTROL_OPTION }, HELP);
  if (!args) return 0;
  const json = wantsJson(args.values);
  const [proxy, type, extra] = args.positionals;
  if (!proxy) throw new CliError('config needs a PROXY id (see `trellis status`)');
  if (type && !TYPES.includes(type)) throw new CliError(`unknown type "${type}" (one of ${TYPES.join(', ')})`);
  if (extra) throw new CliError(`unexpected argument "${extra}"`);
  const addr = controlAddress(args.values.control);
  const cfg = await controlApi<Record<string, Record<string, any>[]>>(
    addr,
    `/api/v1/proxies/${encodeURIComponent(proxy)}/config${type ? `?type=${type}` : ''}`,
  );
  if (json) {
    console.log(JSON.stringify(type ? (cfg[type] ?? []) : cfg, null, 2));
    return 0;
  }
  const rows: string[][] = [];
  for (const t of TYPES) for (const r of cfg[t] ?? []) rows.push([t, String(r.name ?? r.cluster_name ?? ''), summary(t, r)]);
  if (!rows.length) console.log(`proxy ${proxy} holds no ${type ?? 'config'} yet`);
  else printTable(['TYPE', 'NAME', 'DETAIL'], rows);
  return 0;
}
