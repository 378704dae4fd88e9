// `trellis analyze`: validates and cross-checks config files, or the config of a running control plane.
import { analyzeResources, type KnownWorkload } from '../api/analyze.js';
import { formatDiagnostic, mergeDiagnostics, type Diagnostic } from '../api/diagnostics.js';
import { loadFiles } from '../api/load.js';
import type { Resource } from '../api/types.js';
import { CONTROL_OPTION, CliError, OUTPUT_OPTION, controlAddress, controlApi, parseVerbArgs, wantsJson } from './common.js';

const HELP = `
Usage: trellis analyze [-f FILE|DIR]... [-o json] [--control ADDR]

Validates configuration and cross-checks resources against each other: unknown fields,
wrong types, bad durations and weights, conflicting VirtualServices, undefined subsets,
overlapping PeerAuthentications, selectors that match no workload, and fields Trellis
parses but does not honour. Every finding has a stable code (TRL....); see
docs/configuration.md for the table.

Options:
  -f, --filename FILE|DIR  YAML file or directory of .yaml/.yml files (repeatable)
  -o, --output json        print {diagnostics, errors, warnings} as JSON
      --control ADDR       without -f: analyze the running control plane's config
                           (default $TRELLIS_CONTROL or 127.0.0.1:15014)
  -h, --help               show this help

Exit status: 1 if any error was found, 0 otherwise (warnings alone do not fail).
`;

interface ResourcesResponse {
  resources: Resource[];
  workloads?: KnownWorkload[];
}

export default async function analyze(argv: string[]): Promise<number> {
  const args = parseVerbArgs(
    argv,
    { filename: { type: 'string', short: 'f', multiple: true }, ...OUTPUT_OPTION, ...CONTROL_OPTION },
    HELP,
    false,
  );
  if (!args) return 0;
  const json = wantsJson(args.values);
  const files = (args.values.filename as string[] | undefined) ?? [];

  let diagnostics: Diagnostic[];
  let count: number;
  if (files.length > 0) {
    const loaded = await loadFiles(files);
    count = loaded.resources.length;
    diagnostics = mergeDiagnostics(loaded.diagnostics, analyzeResources(loaded.resources));
  } else {
    const addr = controlAddress(args.values.control);
    const body = await controlApi<ResourcesResponse>(addr, '/api/v1/resources');
    if (!body || !Array.isArray(body.resources)) throw new CliError(`GET /api/v1/resources on ${addr}: response has no "resources" list`);
    count = body.resources.length;
    diagnostics = analyzeResources(body.resources, { registryWorkloads: Array.isArray(body.workloads) ? body.workloads : undefined });
  }

  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = diagnostics.length - errors;
  if (json) {
    console.log(JSON.stringify({ resources: count, errors, warnings, diagnostics }, null, 2));
  } else {
    for (const d of diagnostics) console.log(formatDiagnostic(d));
    const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
    console.log(`${plural(count, 'resource')} analyzed: ${plural(errors, 'error')}, ${plural(warnings, 'warning')}`);
  }
  return errors > 0 ? 1 : 0;
}
