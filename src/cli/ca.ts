// `trellis ca status|rotate`: the CA's roots, and zero-downtime root rotation on a running control plane.
import { parseDurationSeconds } from '../api/duration.js';
import { expiresIn } from './status.js';
import { CliError, CONTROL_OPTION, OUTPUT_OPTION, controlAddress, controlApi, parseVerbArgs, printTable, wantsJson } from './common.js';

const HELP = `
Usage: trellis ca status [-o json] [--control ADDR]
       trellis ca rotate [--timeout 5m] [-o json] [--control ADDR]

status   the CA's roots (fingerprint, signing or not, expiry) and intermediates.
rotate   zero-downtime root rotation: (1) a new root is added to every proxy's trust bundle
         (the old one keeps signing), (2) once every proxy acknowledged it, the new root signs
         and every proxy re-issues its certificates, (3) once no connected proxy holds a
         certificate from an old root, the old roots are retired. Each step is printed as it
         completes. If the timeout passes, the rotation stops where it is with every root still
         trusted (nothing breaks); run it again to finish. Exit 1 when it did not complete.

Options:
      --timeout D      for the whole rotation, e.g. 90s, 5m (default 5m)
  -o, --output json    print the result as JSON (rotate: the report, without progress lines)
      --control ADDR   control plane HTTP API (default $TRELLIS_CONTROL or 127.0.0.1:15014)
  -h, --help           show this help
`;

interface CaInfo {
  trustDomain: string;
  operatorProvided?: boolean;
  rotating?: boolean;
  roots: { fingerprint: string; signing: boolean; notAfter: string; expiresInSeconds?: number }[];
  intermediates: { fingerprint: string; notAfter: string }[];
}

interface RotationReport {
  ok: boolean;
  oldRoot: string;
  newRoot?: string;
  retired: string[];
  steps: { step: string; ok: boolean; message: string; ms: number }[];
  error?: string;
  warnings: string[];
  ms: number;
}

async function status(addr: string, json: boolean): Promise<number> {
  const info = await controlApi<CaInfo>(addr, '/api/v1/ca');
  if (json) {
    console.log(JSON.stringify(info, null, 2));
    return 0;
  }
  const rows = [
    ...info.roots.map((r) => ['root', r.fingerprint, r.signing ? 'yes' : 'no', r.notAfter, expiresIn(r.notAfter)]),
    ...info.intermediates.map((r) => ['intermediate', r.fingerprint, '', r.notAfter, expiresIn(r.notAfter)]),
  ];
  printTable(['KIND', 'FINGERPRINT (SHA-256)', 'SIGNING', 'NOT AFTER', 'EXPIRES IN'], rows);
  console.log(`trust domain ${info.trustDomain}${info.operatorProvided ? ', CA provided by the operator' : ''}${info.rotating ? ', a root rotation is running' : ''}`);
  return 0;
}

/** Reads the NDJSON progress stream of POST /api/v1/ca/rotate, printing lines as they come. */
async function rotate(addr: string, timeoutSeconds: number, json: boolean): Promise<number> {
  const path = '/api/v1/ca/rotate';
  let res: Response;
  try {
    res = await fetch(`http://${addr}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/x-ndjson' },
      body: JSON.stringify({ timeoutSeconds }),
      // The control plane enforces the rotation timeout; this only guards against a control plane that went away.
      signal: AbortSignal.timeout((timeoutSeconds + 60) * 1000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new CliError(`cannot reach the control plane at ${addr} (${cause}); start it with \`trellis control\` or set --control`);
  }
  if (!res.ok || !res.body) {
    const text = await res.text();
    let msg = text.trim();
    try {
      msg = String((JSON.parse(text) as { error?: unknown }).error ?? msg);
    } catch {
      /* plain text */
    }
    throw new CliError(`POST ${path}: ${res.status} ${msg}`);
  }
  let report: RotationReport | undefined;
  let failure: string | undefined;
  let buf = '';
  const decoder = new TextDecoder();
  const onLine = (line: string) => {
    if (!line.trim()) return;
    let o: { progress?: string; report?: RotationReport; error?: string };
    try {
      o = JSON.parse(line) as typeof o;
    } catch {
      return;
    }
    if (o.progress !== undefined && !json) console.log(o.progress);
    if (o.report) report = o.report;
    if (o.error) failure = o.error;
  };
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    }
    onLine(buf);
  } catch (err) {
    throw new CliError(`the connection to the control plane at ${addr} broke during the rotation (${(err as Error).message}); run \`trellis ca status\` to see where it stands`);
  }
  if (!report) throw new CliError(failure ?? `the control plane at ${addr} ended the rotation without a report; run \`trellis ca status\` to see where it stands`);
  if (json) console.log(JSON.stringify(report, null, 2));
  else if (!report.ok) console.error(`error: root rotation did not complete: ${report.error}`);
  return report.ok ? 0 : 1;
}

export default async function ca(argv: string[]): Promise<number> {
  const args = parseVerbArgs(argv, { ...OUTPUT_OPTION, ...CONTROL_OPTION, timeout: { type: 'string' } }, HELP);
  if (!args) return 0;
  const [sub, ...extra] = args.positionals;
  if (!sub) throw new CliError('missing subcommand: trellis ca status | trellis ca rotate (see --help)');
  if (extra.length) throw new CliError(`unexpected argument "${extra[0]}" (see --help)`);
  const json = wantsJson(args.values);
  const addr = controlAddress(args.values.control);
  if (sub === 'status') {
    if (args.values.timeout !== undefined) throw new CliError('--timeout applies to `trellis ca rotate` only');
    return status(addr, json);
  }
  if (sub === 'rotate') {
    let timeoutSeconds = 300;
    if (args.values.timeout !== undefined) {
      const t = parseDurationSeconds(args.values.timeout);
      if (t === undefined || !(t > 0)) throw new CliError(`--timeout "${String(args.values.timeout)}" is not a duration such as 90s or 5m`);
      timeoutSeconds = t;
    }
    return rotate(addr, timeoutSeconds, json);
  }
  throw new CliError(`unknown subcommand "ca ${sub}" (trellis ca status | trellis ca rotate)`);
}
