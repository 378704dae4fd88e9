// `trellis get KIND [NAME]`: reads config from the running control plane as a table, JSON or YAML.
import { stringify } from 'yaml';
import type { Resource } from '../api/types.js';
import { resolveKind } from '../control/kinds.js';
import { CONTROL_OPTION, CliError, OUTPUT_OPTION, controlAddress, controlApi, parseVerbArgs, printTable } from './common.js';

const HELP = `
Usage: trellis get KIND [NAME] [-n NAMESPACE] [-o json|yaml] [--control ADDR]

Reads config from a running control plane. KIND is a kind name, its plural or a short
name (vs, dr, se, we, pa, ap, ra, svc, ts, wl, rlp); "all" lists every kind.
Without NAME every namespace is listed unless -n is given.

Options:
  -n, --namespace NS   namespace (default for NAME: default)
  -o, --output FORMAT  json or yaml (default: a table)
      --control ADDR   control plane HTTP API (default $TRELLIS_CONTROL or 127.0.0.1:15014)
  -h, --help           show this help
`;

/** A short, kind-specific description for the table. */
function detail(r: Resource): string {
  const s = (r.spec ?? {}) as Record<string, any>;
  const join = (v: unknown) => (Array.isArray(v) ? v.join(',') : '');
  const labels = (v: unknown) =>
    v && typeof v === 'object' ? Object.entries(v as Record<string, string>).map(([k, x]) => `${k}=${x}`).join(',') : '';
  switch (r.kind) {
    case 'VirtualService':
    case 'ServiceEntry':
      return `hosts=${join(s.hosts)}`;
    case 'DestinationRule':
      return `host=${s.host ?? ''}${s.subsets ? ` subsets=${s.subsets.map((x: any) => x?.name).join(',')}` : ''}`;
    case 'Service':
      return `ports=${(s.ports ?? []).map((p: any) => p?.port).join(',')}${s.selector ? ` selector=${labels(s.selector)}` : ''}`;
    case 'Workload':
      return `service=${s.service ?? ''} ports=${(s.ports ?? []).map((p: any) => p?.port).join(',')}`;
    case 'WorkloadEntry':
      return `address=${s.address ?? ''}`;
    case 'HTTPRoute':
    case 'GRPCRoute':
      return `parents=${(s.parentRefs ?? []).map((p: any) => p?.name).join(',')}`;
    case 'TrafficSplit':
      return `service=${s.service ?? ''}`;
    default: {
      const sel = s.selector?.matchLabels ?? s.selector;
      return sel ? `selector=${labels(sel)}` : '';
    }
  }
}

export default async function get(argv: string[]): Promise<number> {
  const args = parseVerbArgs(argv, { namespace: { type: 'string', short: 'n' }, ...OUTPUT_OPTION, ...CONTROL_OPTION }, HELP);
  if (!args) return 0;
  const out = args.values.output as string | undefined;
  if (out !== undefined && out !== 'json' && out !== 'yaml') throw new CliError(`unsupported output format "${out}" (json or yaml)`);
  const [kindArg, name, ...extra] = args.positionals;
  if (!kindArg) throw new CliError('get needs a KIND (see --help)');
  if (extra.length) throw new CliError(`unexpected argument "${extra[0]}"`);
  const all = kindArg.toLowerCase() === 'all';
  const kind = all ? undefined : resolveKind(kindArg);
  if (!all && !kind) throw new CliError(`unknown kind "${kindArg}"`);
  if (all && name) throw new CliError('"get all" takes no NAME');
  const addr = controlAddress(args.values.control);
  const ns = args.values.namespace as string | undefined;

  let items: Resource[];
  if (name) {
    const path = `/api/v1/resources/${encodeURIComponent(kind!)}/${encodeURIComponent(ns ?? 'default')}/${encodeURIComponent(name)}`;
    items = [await controlApi<Resource>(addr, path)];
  } else {
    const body = await controlApi<{ resources: Resource[] }>(addr, `/api/v1/resources${kind ? `?kind=${encodeURIComponent(kind)}` : ''}`);
    items = body.resources.filter((r) => !ns || (r.metadata.namespace ?? 'default') === ns);
  }
  const clean = items.map(({ source: _source, ...r }) => r);
  if (out === 'json') console.log(JSON.stringify(name ? clean[0] : clean, null, 2));
  else if (out === 'yaml') console.log(clean.map((r) => stringify(r).trimEnd()).join('\n---\n'));
  else if (!items.length) console.log(`no ${kind ?? 'resources'} found${ns ? ` in namespace ${ns}` : ''}`);
  else {
    const rows = items
      .map((r) => [...(all ? [r.kind] : []), r.metadata.namespace ?? 'default', r.metadata.name, detail(r)])
      .sort((a, b) => a.join('/').localeCompare(b.join('/')));
    printTable([...(all ? ['KIND'] : []), 'NAMESPACE', 'NAME', 'DETAIL'], rows);
  }
  return 0;
}
