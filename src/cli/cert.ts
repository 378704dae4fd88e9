// `trellis cert`: obtains a workload's SVID and keeps cert.pem/key.pem/ca.pem fresh in a directory (for proxyless apps).
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { GrpcStatus } from '../xds/grpc-h2-client.js';
import { CliError, parseVerbArgs, wantsJson } from './common.js';
import { CertificateManager, type CertificateMaterial } from '../identity/cert-manager.js';
import { CaRequestError, requestCertificate } from '../identity/ca-client.js';
import { stageFile } from '../identity/fsutil.js';
import { formatSpiffeId } from '../identity/spiffe.js';
import { parseDuration, peekTokenClaims } from '../identity/token.js';

const HELP = `
Usage: trellis cert --workload NS/NAME --token TOKEN --out DIR [--control HOST:PORT]
                    [--service-account SA] [--trust-domain TD] [--ttl D] [--once] [-o json]

Obtains the workload's certificate from the control plane's CA (the private key is made here
and never sent) and writes, atomically:
  DIR/cert.pem  certificate chain, leaf first
  DIR/key.pem   private key (mode 0600)
  DIR/ca.pem    trust bundle (every trusted root)
Without --once it keeps running and rewrites them at each renewal (half of the lifetime).

The layout is what @grpc/grpc-js-xds's file_watcher certificate provider reads:
  "certificate_providers": { "trellis": { "plugin_name": "file_watcher", "config": {
      "certificate_file": "DIR/cert.pem", "private_key_file": "DIR/key.pem",
      "ca_certificate_file": "DIR/ca.pem", "refresh_interval": "60s" } } }

Options:
  --workload NS/NAME       the workload (namespace defaults to "default")
  --token TOKEN            join token (\`trellis token create\`); also TRELLIS_TOKEN
  --out DIR                where to write the files (created if missing)
  --control HOST:PORT      the control plane's gRPC (xDS + CA) address; default 127.0.0.1:15010
  --service-account SA     default: the one the token grants
  --trust-domain TD        default: the one the token names, else cluster.local
  --ttl D                  requested lifetime, e.g. 1h (the CA may shorten it); default 24h
  --once                   write the files once and exit
  -o json                  with --once: print the paths, SPIFFE ID and expiry as JSON
  -h, --help               show this help
`;

export interface CertRunOptions {
  caAddress: string;
  token: string;
  spiffeId: string;
  outDir: string;
  ttlSeconds?: number;
  once: boolean;
  log: (line: string) => void;
  /** Overall limit for --once while the CA is unreachable. */
  onceTimeoutMs?: number;
}

export const CERT_FILE = 'cert.pem';
export const KEY_FILE = 'key.pem';
export const CA_FILE = 'ca.pem';

/** Writes all three files to temp names first, then renames them into place (key, cert, ca). */
export async function writeMaterial(outDir: string, m: CertificateMaterial): Promise<void> {
  await mkdir(outDir, { recursive: true });
  // ca.pem goes last, so once it exists the other two do as well.
  const commits = [
    await stageFile(join(outDir, KEY_FILE), m.keyPem, 0o600),
    await stageFile(join(outDir, CERT_FILE), m.certChainPem.join('')),
    await stageFile(join(outDir, CA_FILE), m.trustBundlePem),
  ];
  for (const c of commits) await c();
}

const PERMANENT = new Set<number>([GrpcStatus.UNAUTHENTICATED, GrpcStatus.PERMISSION_DENIED, GrpcStatus.INVALID_ARGUMENT]);

/** Runs until `signal` aborts (or once); resolves with the last material written. */
export async function runCert(opts: CertRunOptions, signal?: AbortSignal): Promise<CertificateMaterial> {
  const manager = new CertificateManager({
    caAddress: opts.caAddress,
    token: opts.token,
    spiffeId: opts.spiffeId,
    ttlSeconds: opts.ttlSeconds,
    request: requestCertificate,
  });
  const started = Date.now();
  let fatal: Error | undefined;
  let writing: Promise<void> = Promise.resolve();
  manager.on('renewFailed', ({ error, retryInMs }: { error: Error; retryInMs: number }) => {
    const permanent = error instanceof CaRequestError && PERMANENT.has(error.code);
    const first = !manager.current();
    if (first && (permanent || (opts.once && Date.now() - started > (opts.onceTimeoutMs ?? 10_000)))) {
      fatal = error;
      manager.stop();
      return;
    }
    opts.log(`certificate request failed (${error.message}); retrying in ${(retryInMs / 1000).toFixed(1)}s${manager.current() ? ', still serving the current certificate' : ''}`);
  });
  manager.on('rotated', (m: CertificateMaterial) => {
    writing = writing
      .then(() => writeMaterial(opts.outDir, m))
      .then(
        () => opts.log(`wrote ${opts.spiffeId} to ${opts.outDir}, valid until ${m.notAfter.toISOString()}`),
        (err: Error) => opts.log(`cannot write the certificate files in ${opts.outDir}: ${err.message}`),
      );
  });
  const onAbort = () => manager.stop();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    try {
      await manager.start();
    } catch (err) {
      throw fatal ?? err;
    }
    await writing;
    if (!opts.once) {
      await new Promise<void>((res) => {
        if (signal?.aborted) res();
        else signal?.addEventListener('abort', () => res(), { once: true });
      });
      await writing;
    }
    return manager.current()!;
  } finally {
    manager.stop();
    signal?.removeEventListener('abort', onAbort);
  }
}

export default async function cert(argv: string[]): Promise<number> {
  const args = parseVerbArgs(
    argv,
    {
      workload: { type: 'string' },
      token: { type: 'string' },
      out: { type: 'string' },
      control: { type: 'string' },
      'service-account': { type: 'string' },
      'trust-domain': { type: 'string' },
      ttl: { type: 'string' },
      once: { type: 'boolean' },
      output: { type: 'string', short: 'o' },
    },
    HELP,
    false,
  );
  if (!args) return 0;
  const v = args.values;
  const json = wantsJson(v);
  const workload = v.workload as string | undefined;
  if (!workload) throw new CliError('--workload NS/NAME is required');
  const parts = workload.split('/');
  if (parts.length > 2 || parts.some((p) => !p)) throw new CliError(`--workload: "${workload}" is not NS/NAME`);
  const [ns, name] = parts.length === 2 ? parts : ['default', parts[0]];
  const token = (v.token as string | undefined) ?? process.env.TRELLIS_TOKEN;
  if (!token) throw new CliError('--token is required (create one with `trellis token create`)');
  const outArg = v.out as string | undefined;
  if (!outArg) throw new CliError('--out DIR is required (where cert.pem, key.pem and ca.pem go)');
  const claims = peekTokenClaims(token);
  if (!claims.namespace || !claims.serviceAccount) {
    throw new CliError('--token: not a join token (expected the JWT printed by `trellis token create`)');
  }
  if (claims.namespace && claims.namespace !== ns) {
    throw new CliError(`the token grants namespace "${claims.namespace}" but --workload is in "${ns}"`);
  }
  const sa = (v['service-account'] as string | undefined) ?? claims.serviceAccount ?? name;
  const td = (v['trust-domain'] as string | undefined) ?? claims.trustDomain ?? 'cluster.local';
  let spiffeId: string;
  try {
    spiffeId = formatSpiffeId(td, ns, sa);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  let ttlSeconds: number | undefined;
  if (v.ttl !== undefined) {
    try {
      ttlSeconds = parseDuration(v.ttl as string);
    } catch (err) {
      throw new CliError(`--ttl: ${(err as Error).message}`);
    }
  }
  const caAddress = (v.control as string | undefined) ?? '127.0.0.1:15010';
  const outDir = resolve(outArg);
  const once = v.once === true;
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let m: CertificateMaterial;
  try {
    m = await runCert({ caAddress, token, spiffeId, outDir, ttlSeconds, once, log: (l) => console.error(l) }, ac.signal);
  } catch (err) {
    let msg = (err as Error).message;
    if (/:15014$/.test(caAddress)) msg += ' (15014 is the HTTP API; the CA is on the gRPC port, default 15010)';
    throw new CliError(msg);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  if (json) {
    console.log(
      JSON.stringify(
        {
          spiffeId,
          notAfter: m.notAfter.toISOString(),
          certificate_file: join(outDir, CERT_FILE),
          private_key_file: join(outDir, KEY_FILE),
          ca_certificate_file: join(outDir, CA_FILE),
        },
        null,
        2,
      ),
    );
  } else if (once) {
    console.log(`wrote ${join(outDir, CERT_FILE)}, ${KEY_FILE}, ${CA_FILE} for ${spiffeId} (valid until ${m.notAfter.toISOString()})`);
  }
  return 0;
}
