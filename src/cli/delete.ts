// `trellis delete -f FILE...` / `trellis delete KIND NAME [-n NS]`: removes config from the running control plane.
import { resolveKind } from '../control/kinds.js';
import { CONTROL_OPTION, CliError, OUTPUT_OPTION, controlAddress, parseVerbArgs, wantsJson } from './common.js';
import { loadOrFail, postChange, printChanges } from './apply.js';

const HELP = `
Usage: trellis delete -f FILE|DIR... [-o json] [--control ADDR]
       trellis delete KIND NAME... [-n NAMESPACE] [-o json] [--control ADDR]

Deletes config from a running control plane, as one change: if any named resource does not
exist, nothing is deleted.

Options:
  -f, --filename FILE|DIR  delete the resources these files define (repeatable)
  -n, --namespace NS       namespace of NAME (default: default)
  -o, --output json        print the result as JSON
      --control ADDR       control plane HTTP API (default $TRELLIS_CONTROL or 127.0.0.1:15014)
  -h, --help               show this help
`;

export default async function del(argv: string[]): Promise<number> {
  const args = parseVerbArgs(
    argv,
    { filename: { type: 'string', short: 'f', multiple: true }, namespace: { type: 'string', short: 'n' }, ...OUTPUT_OPTION, ...CONTROL_OPTION },
    HELP,
  );
  if (!args) return 0;
  const json = wantsJson(args.values);
  const files = (args.values.filename as string[] | undefined) ?? [];
  let body: unknown;
  if (files.length) {
    if (args.positionals.length) throw new CliError('give either -f FILE or KIND NAME, not both');
    body = { resources: await loadOrFail(files) };
  } else {
    const [kindArg, ...names] = args.positionals;
    if (!kindArg || !names.length) throw new CliError('delete needs -f FILE or KIND NAME (see --help)');
    const kind = resolveKind(kindArg);
    if (!kind) throw new CliError(`unknown kind "${kindArg}"`);
    const namespace = (args.values.namespace as string | undefined) ?? 'default';
    body = { keys: names.map((name) => ({ kind, namespace, name })) };
  }
  const result = await postChange(controlAddress(args.values.control), '/api/v1/delete', body);
  if (json) console.log(JSON.stringify(result, null, 2));
  else printChanges(result);
  return 0;
}
