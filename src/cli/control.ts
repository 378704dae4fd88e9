// `trellis control`: runs the control plane in the foreground until SIGINT/SIGTERM.
import { resolve } from 'node:path';
import { CliError, parseVerbArgs } from './common.js';
import { startControlPlane } from '../control/control-plane.js';
import { ALLOCATOR_DEFAULTS, allocatorEnv, reexecWith } from './allocator-env.js';

const HELP = `
Usage: trellis control [--config DIR|FILE] [--store memory|file:DIR] [--state-dir DIR]
                       [--listen HOST] [--grpc-port N] [--http-port N] [--ca-cert FILE --ca-key FILE]

Runs the control plane alone, in the foreground (Ctrl-C stops it).

On Linux it runs itself once more with MALLOC_ARENA_MAX=2 and MALLOC_MMAP_THRESHOLD_=131072 (glibc then
returns freed buffers to the system) unless those variables are already set; see docs/operations.md.

Options:
  --config DIR|FILE    YAML config. Without --store it is watched: edits apply within a second,
                       and a broken edit is refused (the previous config keeps serving).
                       With --store memory it only seeds the in-memory store.
  --store KIND         memory (default without --config; change it with trellis apply/delete)
                       or file:DIR (same as --config DIR)
  --state-dir DIR      CA material, the token signing key, allocated proxy ports; default .trellis
  --listen HOST        address for xDS/CA gRPC and the HTTP API; default 127.0.0.1
  --grpc-port N        xDS + CA port; default 15010
  --http-port N        HTTP API, metrics; default 15014
  --ca-cert FILE       use this CA instead of creating one: PEM, the signing certificate first (a root,
                       or an intermediate followed by its chain up to the root)
  --ca-key FILE        the private key of the --ca-cert signing certificate (PEM)
  -h, --help           show this help
`;

function port(v: unknown, name: string, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CliError(`--${name}: "${String(v)}" is not a port number`);
  return n;
}

export default async function control(argv: string[]): Promise<number> {
  const args = parseVerbArgs(
    argv,
    {
      config: { type: 'string' },
      store: { type: 'string' },
      'state-dir': { type: 'string' },
      listen: { type: 'string' },
      'grpc-port': { type: 'string' },
      'http-port': { type: 'string' },
      'ca-cert': { type: 'string' },
      'ca-key': { type: 'string' },
    },
    HELP,
    false,
  );
  if (!args) return 0;
  const v = args.values;
  const config = v.config as string | undefined;
  const storeArg = v.store as string | undefined;
  let store: 'memory' | { file: string };
  let configPaths: string[] | undefined;
  if (storeArg === undefined) store = config ? { file: resolve(config) } : 'memory';
  else if (storeArg === 'memory') {
    store = 'memory';
    configPaths = config ? [resolve(config)] : undefined;
  } else if (storeArg.startsWith('file:') && storeArg.length > 5) {
    if (config) throw new CliError('give either --config or --store file:DIR, not both');
    store = { file: resolve(storeArg.slice(5)) };
  } else throw new CliError(`--store: "${storeArg}" is not one of memory, file:DIR (etcd and kubernetes are not supported yet)`);

  const host = (v.listen as string | undefined) ?? '127.0.0.1';
  const h = host.includes(':') ? `[${host}]` : host;
  const grpcPort = port(v['grpc-port'], 'grpc-port', 15010);
  const httpPort = port(v['http-port'], 'http-port', 15014);
  const stateDir = resolve((v['state-dir'] as string | undefined) ?? '.trellis');
  const caCertFile = v['ca-cert'] as string | undefined;
  const caKeyFile = v['ca-key'] as string | undefined;
  if ((caCertFile === undefined) !== (caKeyFile === undefined)) throw new CliError('--ca-cert and --ca-key go together');
  const log = (m: string) => console.error(`${new Date().toISOString()} ${m}`);
  // Options are checked first, so --help and bad arguments never start a second process.
  const add = allocatorEnv(process.env);
  if (add) return reexecWith(add);
  log(`allocator: ${Object.keys(ALLOCATOR_DEFAULTS).map((k) => `${k}=${process.env[k] ?? '(unset)'}`).join(' ')}`);
  let cp;
  try {
    cp = await startControlPlane({
      stateDir,
      store,
      configPaths,
      grpcListen: `${h}:${grpcPort}`,
      httpListen: `${h}:${httpPort}`,
      log,
      caCertFile: caCertFile && resolve(caCertFile),
      caKeyFile: caKeyFile && resolve(caKeyFile),
    });
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  // Handlers first: a signal right after the banner (a supervisor, a test) must stop the control plane cleanly.
  const stopped = new Promise<void>((res) => {
    // Ctrl-C reaches both this process and the re-exec parent, which forwards it: a repeat is not a second request.
    process.on('SIGINT', () => res());
    process.on('SIGTERM', () => res());
  });
  const where = typeof store === 'string' ? 'memory (change it with trellis apply/delete)' : `files in ${store.file} (watched)`;
  console.log(`trellis control plane: xDS+CA grpc ${h}:${cp.grpcPort}, HTTP API http://${h}:${cp.httpPort}`);
  console.log(`config: ${where}; ${cp.store.snapshot().resources.length} resource(s); state dir ${stateDir}`);
  const err = cp.store.lastError();
  if (err) console.log(`warning: ${err.message}`);
  await stopped;
  console.log('stopping the control plane');
  await cp.close();
  return 0;
}
