// `trellis apply -f FILE...`: sends config to the running control plane; all files are one atomic change.
import { formatDiagnostic, hasErrors, type Diagnostic } from '../api/diagnostics.js';
import { loadFiles } from '../api/load.js';
import type { Resource } from '../api/types.js';
import { CONTROL_OPTION, CliError, OUTPUT_OPTION, controlAddress, parseVerbArgs, wantsJson } from './common.js';

const HELP = `
Usage: trellis apply -f FILE|DIR... [-o json] [--control ADDR]

Creates or updates config on a running control plane. Every document of every file is one
change: if any of it is invalid, nothing is applied and every problem is printed.

Options:
  -f, --filename FILE|DIR  YAML file or directory of .yaml/.yml files (repeatable)
  -o, --output json        print the result as JSON
      --control ADDR       control plane HTTP API (default $TRELLIS_CONTROL or 127.0.0.1:15014)
  -h, --help               show this help
`;

export interface ChangeResponse {
  revision: number;
  changes: { kind: string; namespace: string; name: string; action: string }[];
  warnings?: Diagnostic[];
}

/** POSTs to the control plane; a refusal prints every diagnostic and becomes a one-line CliError. */
export async function postChange(addr: string, path: string, body: unknown): Promise<ChangeResponse> {
  let res: Response;
  try {
    res = await fetch(`http://${addr}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new CliError(`cannot reach the control plane at ${addr} (${cause}); start it with \`trellis control\` or set --control`);
  }
  const text = await res.text();
  let json: { error?: string; diagnostics?: Diagnostic[] } & Partial<ChangeResponse>;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CliError(`${path}: ${res.status} ${text.trim().slice(0, 200)}`);
  }
  if (!res.ok) {
    for (const d of json.diagnostics ?? []) console.error(formatDiagnostic(d));
    throw new CliError(json.error ?? `${path}: HTTP ${res.status}`);
  }
  return json as ChangeResponse;
}

export async function loadOrFail(files: string[]): Promise<Resource[]> {
  const { resources, diagnostics } = await loadFiles(files);
  if (hasErrors(diagnostics)) {
    for (const d of diagnostics) console.error(formatDiagnostic(d));
    const n = diagnostics.filter((d) => d.severity === 'error').length;
    throw new CliError(`${n} error(s) in ${files.join(', ')}; nothing was sent`);
  }
  if (!resources.length) throw new CliError(`no resources found in ${files.join(', ')}`);
  return resources;
}

export function printChanges(r: ChangeResponse): void {
  for (const w of r.warnings ?? []) console.error(formatDiagnostic(w));
  for (const c of r.changes) console.log(`${c.kind} ${c.namespace}/${c.name} ${c.action}`);
}

export default async function apply(argv: string[]): Promise<number> {
  const args = parseVerbArgs(argv, { filename: { type: 'string', short: 'f', multiple: true }, ...OUTPUT_OPTION, ...CONTROL_OPTION }, HELP);
  if (!args) return 0;
  const json = wantsJson(args.values);
  const files = [...((args.values.filename as string[] | undefined) ?? []), ...args.positionals];
  if (!files.length) throw new CliError('apply needs -f FILE (see --help)');
  const resources = await loadOrFail(files);
  const result = await postChange(controlAddress(args.values.control), '/api/v1/apply', { resources });
  if (json) console.log(JSON.stringify(result, null, 2));
  else printChanges(result);
  return 0;
}
