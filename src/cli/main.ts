// The `trellis` command: dispatches a verb to its module and turns failures into one clear line.
import { CliError } from './common.js';

type VerbModule = { default: (argv: string[]) => Promise<number> };

/** Each verb lives in its own file; loaded lazily so `trellis proxy` pulls in only what it needs. */
const VERBS: Record<string, { load: () => Promise<VerbModule>; summary: string }> = {
  demo: { load: () => import('./demo.js'), summary: 'run the built-in demo mesh with traffic and a live view' },
  up: { load: () => import('./up.js'), summary: 'run a local mesh from YAML files (control plane, apps, proxies)' },
  control: { load: () => import('./control.js'), summary: 'run the control plane alone' },
  proxy: { load: () => import('./proxy.js'), summary: 'run the data-plane proxy alone' },
  apply: { load: () => import('./apply.js'), summary: 'create or update config on a running control plane' },
  delete: { load: () => import('./delete.js'), summary: 'delete config from a running control plane' },
  get: { load: () => import('./get.js'), summary: 'read config from a running control plane' },
  analyze: { load: () => import('./analyze.js'), summary: 'validate and cross-check config files' },
  status: { load: () => import('./status.js'), summary: 'every proxy: connection, xDS sync state, cert expiry' },
  config: { load: () => import('./config.js'), summary: 'the xDS config a proxy holds' },
  token: { load: () => import('./token.js'), summary: 'create a join token for a proxy' },
  cert: { load: () => import('./cert.js'), summary: "write a workload's certificate files and keep them fresh" },
  check: { load: () => import('./check.js'), summary: 'health of the mesh: control plane, proxies, certificates' },
  ca: { load: () => import('./ca.js'), summary: 'the CA: roots and zero-downtime root rotation' },
  describe: { load: () => import('./describe.js'), summary: 'what applies to a workload or service: mTLS, routes, policies, endpoints' },
  stat: { load: () => import('./stat.js'), summary: 'live golden signals per service and workload' },
  top: { load: () => import('./top.js'), summary: 'the busiest routes, live' },
  edges: { load: () => import('./edges.js'), summary: 'who calls whom, with identities and mTLS' },
  tap: { load: () => import('./tap.js'), summary: "live requests of a workload, as its proxy handles them" },
  cost: { load: () => import('./cost.js'), summary: "the mesh's own cost: memory, CPU per 1,000 requests, added latency" },
};

function usage(): string {
  const lines = ['Usage: trellis <command> [options]', '', 'Commands:'];
  for (const [name, v] of Object.entries(VERBS)) lines.push(`  ${name.padEnd(10)} ${v.summary}`);
  lines.push('', 'Run `trellis <command> --help` for the options of a command.');
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (!verb || verb === '--help' || verb === '-h' || verb === 'help') {
    console.log(usage());
    return verb ? 0 : 1;
  }
  if (verb === '--version' || verb === 'version') {
    const { TRELLIS_VERSION } = await import('./common.js');
    console.log(TRELLIS_VERSION);
    return 0;
  }
  const entry = VERBS[verb];
  if (!entry) throw new CliError(`unknown command "${verb}" (run \`trellis --help\` for the list)`);
  const mod = await entry.load();
  return mod.default(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof CliError) {
      console.error(`error: ${err.message}`);
      process.exitCode = err.exitCode;
    } else {
      const msg = err instanceof Error ? err.message : String(err);
      console.error(`error: ${msg}`);
      if (process.env.TRELLIS_DEBUG) console.error(err);
      process.exitCode = 1;
    }
  },
);
