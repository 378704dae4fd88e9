// `trellis proxy`: runs the data-plane proxy (sidecar or node mode); `trellis proxy wait` blocks until a proxy is ready.
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import { CliError, TRELLIS_VERSION, parseVerbArgs } from './common.js';
import { startProxy, type LogLevel, type ProxyOptions, type ProxyWorkload, type StaticConfig } from '../proxy/proxy.js';

const HELP = `
Usage: trellis proxy --workload NS/NAME[,KEY=VALUE...] [--workload ...] [--control HOST:PORT] [--token TOKEN]
                     [--mode sidecar|node] [--metrics-port N] [--admin-port N] [--drain-timeout 10s]
                     [--log-level debug|info|warn|error] [--trust-domain TD] [--inbound-l7 auto|always]
                     [--access-log FILE|-] [--access-log-default FILE|-]
                     [--static-config FILE --cert FILE --key FILE --ca FILE]
       trellis proxy wait [--metrics-port N | --url http://127.0.0.1:15020/ready] [--timeout 60s]

Runs the Trellis data-plane proxy for one workload (sidecar) or several (node mode, each with its
own certificate and listeners). Config comes from the control plane over xDS (ADS); the workload
certificate is requested from the control plane's CA with a CSR (the key never leaves the proxy).
Last-known-good config and certificates keep serving while the control plane is away.

Options:
  --workload NS/NAME[,...]  a hosted workload (namespace defaults to "default"); optional details
                            for registration: service=S, sa=SA, port=NAME:PORT/PROTOCOL (repeatable),
                            label=K:V (repeatable), inbound=PORT, outbound=PORT, address=IP,
                            token=TOKEN (node mode: this workload's own join token)
  --control HOST:PORT       the control plane's gRPC (xDS + CA) address; default 127.0.0.1:15010
  --token TOKEN             join token (\`trellis token create\`); also TRELLIS_TOKEN
  --mode sidecar|node       default: sidecar for one workload, node for several
  --metrics-port N          readiness and metrics (/ready, /metrics); default 15020
  --admin-port N            admin on 127.0.0.1 (/config_dump, /certs, /logging); default 15000
  --drain-timeout D         on SIGTERM, how long in-flight requests may take to finish; default 10s
  --log-level L             debug, info, warn or error; default info
  --trust-domain TD         default: the token's, else cluster.local
  --inbound-l7 auto|always  auto (default): the inbound parses HTTP only when policy needs it, else it
                            terminates mTLS and pipes bytes (cheapest); always: parse every HTTP port
                            (the app gets the caller in x-forwarded-client-cert; destination metrics)
  --access-log FILE|-       one line per request (identities, route, cluster, endpoint, status,
                            error code and deciding rule, bytes, proxy and upstream time) appended
                            to FILE, or to stdout for "-"; wins over the Mesh's accessLog, whose
                            format (json or text) it follows, JSON otherwise. Unset: the Mesh's
                            accessLog decides (off without one)
  --access-log-default FILE|-  like --access-log, but only while the Mesh has no accessLog block
                            (\`trellis up\` uses it, so a Mesh's accessLog overrides its default)
  --static-config FILE      run without a control plane: JSON {listeners, routes, clusters, endpoints,
                            secrets} as decoded xDS resources; needs --cert, --key and --ca (PEM files)
  -h, --help                show this help

\`trellis proxy wait\` blocks until the proxy's /ready answers 200 (start apps after it, like
Istio's holdApplicationUntilProxyStarts); exits 1 with the last answer after --timeout.
`;

/** '10s', '500ms', '2m' or plain seconds -> milliseconds. */
export function parseDurationMs(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new CliError(`${flag}: cannot read duration "${text}" (e.g. 10s, 500ms, 2m)`);
  const n = Number(m[1]);
  return Math.round(n * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] ?? 1000));
}

function parsePort(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CliError(`${flag}: "${text}" is not a port number (0-65535)`);
  return n;
}

/** "ns/name,service=s,port=http:9080/HTTP,label=app:r" -> ProxyWorkload. */
export function parseWorkload(spec: string): ProxyWorkload {
  const [id, ...kvs] = spec.split(',');
  const slash = id.indexOf('/');
  const namespace = slash < 0 ? 'default' : id.slice(0, slash);
  const name = slash < 0 ? id : id.slice(slash + 1);
  const dns = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
  if (!dns.test(namespace) || !dns.test(name)) throw new CliError(`--workload "${spec}": expected NS/NAME with lowercase DNS names`);
  const w: ProxyWorkload = { namespace, name };
  for (const kv of kvs) {
    const eq = kv.indexOf('=');
    if (eq < 0) throw new CliError(`--workload "${spec}": "${kv}" is not KEY=VALUE`);
    const k = kv.slice(0, eq);
    const v = kv.slice(eq + 1);
    switch (k) {
      case 'service':
        w.service = v;
        break;
      case 'sa':
      case 'serviceAccount':
        w.serviceAccount = v;
        break;
      case 'address':
        w.address = v;
        break;
      case 'token':
        w.token = v;
        break;
      case 'inbound':
        w.inboundPort = parsePort(v, `--workload ${id} inbound`);
        break;
      case 'outbound':
        w.outboundPort = parsePort(v, `--workload ${id} outbound`);
        break;
      case 'label': {
        const c = v.indexOf(':');
        if (c < 1) throw new CliError(`--workload "${spec}": label must be KEY:VALUE`);
        (w.labels ??= {})[v.slice(0, c)] = v.slice(c + 1);
        break;
      }
      case 'port': {
        const m = /^(?:([a-z0-9-]+):)?(\d+)(?:\/([A-Za-z0-9]+))?$/.exec(v);
        if (!m) throw new CliError(`--workload "${spec}": port must be [NAME:]PORT[/PROTOCOL], got "${v}"`);
        (w.ports ??= []).push({ name: m[1], port: parsePort(m[2], `--workload ${id} port`)!, protocol: (m[3] ?? 'HTTP').toUpperCase() });
        break;
      }
      default:
        throw new CliError(`--workload "${spec}": unknown key "${k}" (service, sa, port, label, inbound, outbound, address)`);
    }
  }
  return w;
}

function readFile(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`${flag}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** One GET with node:http (fetch refuses some ports); failures come back as status 0 with the error code. */
function probe(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return resolve({ status: 0, body: `bad URL ${url}` });
    }
    const req = http.get(u, { timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, body: err.code ?? err.message }));
  });
}

async function wait(argv: string[]): Promise<number> {
  const args = parseVerbArgs(argv, { 'metrics-port': { type: 'string' }, url: { type: 'string' }, timeout: { type: 'string' } }, HELP, false);
  if (!args) return 0;
  const v = args.values;
  const url = (v.url as string | undefined) ?? `http://127.0.0.1:${parsePort((v['metrics-port'] as string | undefined) ?? '15020', '--metrics-port')}/ready`;
  const timeoutMs = parseDurationMs((v.timeout as string | undefined) ?? '60s', '--timeout');
  const end = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    const r = await probe(url);
    if (r.status === 200) {
      console.log(`proxy ready (${url})`);
      return 0;
    }
    last = r.status ? `${r.status} ${r.body}` : r.body;
    if (Date.now() >= end) throw new CliError(`proxy not ready after ${timeoutMs / 1000}s at ${url} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export default async function proxy(argv: string[]): Promise<number> {
  if (argv[0] === 'wait') return wait(argv.slice(1));
  const args = parseVerbArgs(
    argv,
    {
      control: { type: 'string' },
      token: { type: 'string' },
      workload: { type: 'string', multiple: true },
      mode: { type: 'string' },
      'metrics-port': { type: 'string' },
      'admin-port': { type: 'string' },
      'drain-timeout': { type: 'string' },
      'log-level': { type: 'string' },
      'trust-domain': { type: 'string' },
      'inbound-l7': { type: 'string' },
      'access-log': { type: 'string' },
      'access-log-default': { type: 'string' },
      'static-config': { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      ca: { type: 'string' },
    },
    HELP,
    false,
  );
  if (!args) return 0;
  const v = args.values;
  const specs = (v.workload as string[] | undefined) ?? [];
  if (specs.length === 0) throw new CliError('--workload NS/NAME is required (repeat it for node mode)');
  const workloads = specs.map(parseWorkload);
  const mode = v.mode as string | undefined;
  if (mode !== undefined && mode !== 'sidecar' && mode !== 'node') throw new CliError(`--mode must be sidecar or node, got "${mode}"`);
  if (mode === 'sidecar' && workloads.length > 1) throw new CliError('--mode sidecar hosts one workload; use --mode node for several');
  const level = (v['log-level'] as string | undefined) ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new CliError(`--log-level must be debug, info, warn or error, got "${level}"`);
  const l7 = (v['inbound-l7'] as string | undefined) ?? 'auto';
  if (l7 !== 'auto' && l7 !== 'always') throw new CliError(`--inbound-l7 must be auto or always, got "${l7}"`);
  const opts: ProxyOptions = {
    inboundL7: l7,
    ...(v['access-log'] ? { accessLog: v['access-log'] as string } : {}),
    ...(v['access-log-default'] ? { accessLogDefault: v['access-log-default'] as string } : {}),
    controlAddress: (v.control as string | undefined) ?? '127.0.0.1:15010',
    token: (v.token as string | undefined) ?? process.env.TRELLIS_TOKEN,
    workloads,
    mode: mode as ProxyOptions['mode'],
    metricsPort: parsePort(v['metrics-port'] as string | undefined, '--metrics-port'),
    adminPort: parsePort(v['admin-port'] as string | undefined, '--admin-port'),
    drainTimeoutMs: v['drain-timeout'] !== undefined ? parseDurationMs(v['drain-timeout'] as string, '--drain-timeout') : undefined,
    logLevel: level as LogLevel,
    trustDomain: v['trust-domain'] as string | undefined,
    version: TRELLIS_VERSION,
  };
  const staticFile = v['static-config'] as string | undefined;
  if (staticFile) {
    let cfg: StaticConfig;
    try {
      cfg = JSON.parse(readFile(staticFile, '--static-config')) as StaticConfig;
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw new CliError(`--static-config ${staticFile}: not valid JSON (${(err as Error).message})`);
    }
    opts.staticConfig = reviveBuffers(cfg) as StaticConfig;
    if (!v.cert || !v.key || !v.ca) throw new CliError('--static-config needs --cert, --key and --ca (PEM files of the workload certificate)');
    opts.staticIdentity = {
      certChainPem: readFile(v.cert as string, '--cert'),
      keyPem: readFile(v.key as string, '--key'),
      trustBundlePem: readFile(v.ca as string, '--ca'),
    };
  } else if (!opts.token && !opts.workloads.every((w) => w.token)) {
    throw new CliError('--token is required to join the mesh (create one with `trellis token create`), or use --static-config');
  }
  let p;
  try {
    p = await startProxy(opts);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const proxyRef = p;
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) {
      process.exit(1);
    }
    stopping = true;
    console.error(`${sig}: draining (up to ${Math.round((opts.drainTimeoutMs ?? 10_000) / 1000)}s)`);
    proxyRef.drain().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await p.ready;
  const names = workloads.map((w) => `${w.namespace}/${w.name}`).join(' ');
  const ports = workloads
    .flatMap((w) => [`outbound|${w.namespace}/${w.name}`, `inbound|${w.namespace}/${w.name}`])
    .map((n) => (p.listenerPort(n) !== undefined ? `${n.split('|')[0]} ${p.listenerPort(n)}` : undefined))
    .filter(Boolean)
    .join(', ');
  console.log(`trellis proxy ready: ${workloads.length > 1 ? 'node' : (mode ?? 'sidecar')} mode, ${names}${ports ? `; ${ports}` : ''}; metrics ${p.metricsPort()}`);
  await new Promise<void>(() => {});
  return 0;
}

/** JSON has no bytes: {"type":"Buffer","data":[...]} and {"$base64": "..."} become Buffers (packed Anys in a static config). */
function reviveBuffers(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reviveBuffers);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (o.type === 'Buffer' && Array.isArray(o.data)) return Buffer.from(o.data as number[]);
    if (typeof o.$base64 === 'string' && Object.keys(o).length === 1) return Buffer.from(o.$base64, 'base64');
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) out[k] = reviveBuffers(x);
    return out;
  }
  return v;
}
