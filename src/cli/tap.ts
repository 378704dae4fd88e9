// `trellis tap WORKLOAD`: live requests of one workload as its proxy handles them (every request, none sampled away).
import { CONTROL_OPTION, OUTPUT_OPTION, CliError, controlAddress, parseVerbArgs, wantsJson } from './common.js';
import type { TapEvent } from '../telemetry/tap.js';

const HELP = `
Usage: trellis tap WORKLOAD [--path P] [--method M] [--to SERVICE] [--count N] [--duration S]
                   [-o json] [--control ADDR]

Streams the requests WORKLOAD ("name" or "namespace/name") sends and receives, as its proxy
finishes them: time, direction, caller and destination identities, method, authority and path,
status, latency (and the part spent in the proxy), the x-trellis-error code and the rule that
decided a proxy-generated answer, and the route. Relayed by the control plane from the proxy's
admin port, so it runs on the proxy's host. Ctrl-C stops.

Options:
      --path P         only paths starting with P
      --method M       only this HTTP method
      --to SERVICE     only requests to SERVICE (name, name.namespace, FQDN) or workload ns/name
      --count N        stop after N requests
      --duration S     stop after S seconds
  -o, --output json    one JSON object per request (NDJSON)
      --control ADDR   control plane HTTP API (default $TRELLIS_CONTROL or 127.0.0.1:15014)
  -h, --help           show this help
`;

function shortId(p: string | undefined): string {
  if (!p) return '-';
  const m = /\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(p);
  return m ? `${m[1]}/${m[2]}` : p;
}

export function formatTap(e: TapEvent): string {
  const t = new Date(Date.parse(e.start_time) + e.duration_ms).toISOString().slice(11, 23);
  const arrow = e.direction === 'outbound' ? '->' : '<-';
  const peer = e.direction === 'outbound' ? (e.destination_workload ?? e.destination_service ?? '?') : (e.source_workload ?? shortId(e.source_principal));
  const parts = [
    t,
    `${e.workload} ${arrow} ${peer}`,
    `${e.method} ${e.authority}${e.path}`,
    String(e.status),
    `${e.duration_ms.toFixed(1)}ms (proxy ${e.proxy_ms.toFixed(2)}ms)`,
    e.mtls ? 'mtls' : 'plaintext',
    `src=${shortId(e.source_principal)} dst=${shortId(e.destination_principal)}`,
    `route=${e.route}`,
  ];
  if (e.error_code) parts.push(`error=${e.error_code}`);
  if (e.decided_by) parts.push(`decided_by=${e.decided_by}`);
  return parts.join('  ');
}

export default async function tap(argv: string[]): Promise<number> {
  const args = parseVerbArgs(
    argv,
    { ...OUTPUT_OPTION, ...CONTROL_OPTION, path: { type: 'string' }, method: { type: 'string' }, to: { type: 'string' }, count: { type: 'string' }, duration: { type: 'string' } },
    HELP,
  );
  if (!args) return 0;
  const [workload, ...extra] = args.positionals;
  if (!workload) throw new CliError('tap needs a workload, e.g. trellis tap frontend (see --help)');
  if (extra.length) throw new CliError(`unexpected argument "${extra[0]}" (see --help)`);
  const json = wantsJson(args.values);
  const count = args.values.count === undefined ? 0 : Number(args.values.count);
  if (!Number.isInteger(count) || count < 0) throw new CliError(`--count must be a whole number (got "${String(args.values.count)}")`);
  const duration = args.values.duration === undefined ? 0 : Number(args.values.duration);
  if (!Number.isFinite(duration) || duration < 0) throw new CliError(`--duration must be a number of seconds (got "${String(args.values.duration)}")`);
  const i = workload.indexOf('/');
  const [ns, name] = i > 0 ? [workload.slice(0, i), workload.slice(i + 1)] : ['default', workload];
  const q = new URLSearchParams();
  for (const k of ['path', 'method', 'to'] as const) if (args.values[k]) q.set(k, String(args.values[k]));
  const addr = controlAddress(args.values.control);
  const ctl = new AbortController();
  const onSignal = () => ctl.abort();
  process.once('SIGINT', onSignal);
  const timer = duration > 0 ? setTimeout(() => ctl.abort(), duration * 1000) : undefined;
  let res: Response;
  try {
    res = await fetch(`http://${addr}/api/v1/tap/${encodeURIComponent(ns)}/${encodeURIComponent(name)}?${q}`, { signal: ctl.signal });
  } catch (err) {
    if (ctl.signal.aborted) return 0;
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new CliError(`cannot reach the control plane at ${addr} (${cause}); start it with \`trellis control\` or set --control`);
  }
  if (!res.ok) {
    const text = await res.text();
    let msg = text.trim();
    try {
      msg = (JSON.parse(text) as { error?: string }).error ?? msg;
    } catch {
      /* plain text */
    }
    throw new CliError(`tap ${ns}/${name}: ${msg}`);
  }
  let seen = 0;
  let buf = '';
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const ev = JSON.parse(line) as TapEvent & { tap?: string; dropped?: number };
        if (ev.tap) {
          console.error(`tapping ${ns}/${name} (Ctrl-C stops)`);
          continue;
        }
        if (ev.dropped) {
          console.error(`(${ev.dropped} requests not shown: this terminal could not keep up)`);
          continue;
        }
        console.log(json ? line : formatTap(ev));
        if (count && ++seen >= count) {
          ctl.abort();
          return 0;
        }
      }
    }
  } catch (err) {
    if (!ctl.signal.aborted) throw new CliError(`tap ${ns}/${name}: stream ended: ${(err as Error).message}`);
  } finally {
    if (timer) clearTimeout(timer);
    process.off('SIGINT', onSignal);
  }
  return 0;
}
