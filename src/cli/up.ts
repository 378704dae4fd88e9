// `trellis up -f FILE...`: runs a local mesh in the foreground until Ctrl-C or SIGTERM.
import { CliError, parseVerbArgs, printTable } from './common.js';
import { startLocalMesh, workloadTable, LocalMeshError, type MeshMode } from '../local/local-mesh.js';

const HELP = `
Usage: trellis up -f FILE... [--mode node|sidecar] [--state-dir DIR] [--grpc-port N] [--http-port N]

Runs a local mesh from YAML: a control plane, one proxy (node mode, the default) or one proxy per
workload (--mode sidecar), and every Workload that has a command. Apps start once their proxy is
ready and get PORT, HTTP_PROXY and TRELLIS_OUTBOUND in their environment. Ctrl-C or SIGTERM drains
and stops everything.

Options:
  -f, --file FILE      config file or directory (repeatable)
  --mode MODE          node (one proxy for all workloads) or sidecar (one proxy each); default node
  --state-dir DIR      CA material and tokens; default .trellis
  --grpc-port N        control plane xDS/CA port; default 15010
  --http-port N        control plane HTTP API port; default 15014
  --no-access-log      turn off the default access log (JSON lines on each proxy's stdout; a Mesh accessLog block overrides it)
`;

export default async function up(argv: string[]): Promise<number> {
  const args = parseVerbArgs(
    argv,
    {
      file: { type: 'string', short: 'f', multiple: true },
      mode: { type: 'string' },
      'state-dir': { type: 'string' },
      'grpc-port': { type: 'string' },
      'http-port': { type: 'string' },
      'no-access-log': { type: 'boolean' },
    },
    HELP,
  );
  if (!args) return 0;
  const files = [...((args.values.file as string[] | undefined) ?? []), ...args.positionals];
  if (files.length === 0) throw new CliError('no config given: pass -f FILE (see --help)');
  const mode = (args.values.mode as string | undefined) ?? 'node';
  if (mode !== 'node' && mode !== 'sidecar') throw new CliError(`--mode must be node or sidecar, not "${mode}"`);
  const port = (name: string) => {
    const v = args.values[name] as string | undefined;
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CliError(`--${name} must be a port number, not "${v}"`);
    return n;
  };
  let mesh;
  try {
    mesh = await startLocalMesh({
      files,
      mode: mode as MeshMode,
      stateDir: (args.values['state-dir'] as string | undefined) ?? '.trellis',
      grpcPort: port('grpc-port'),
      httpPort: port('http-port'),
      accessLog: !args.values['no-access-log'],
    });
  } catch (err) {
    if (err instanceof LocalMeshError) throw new CliError(err.message);
    throw err;
  }
  const t = workloadTable(mesh);
  console.log('');
  printTable(t.headers, t.rows);
  console.log(
    `\ncontrol plane: xDS 127.0.0.1:${mesh.control.grpcPort}, API http://127.0.0.1:${mesh.control.httpPort}  (Ctrl-C stops everything)\n`,
  );
  await new Promise<void>((resolve) => {
    let stopping = false;
    const onSignal = () => {
      if (stopping) return;
      stopping = true;
      console.log('stopping: draining proxies and apps...');
      mesh.stop().then(resolve, resolve);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  return 0;
}
