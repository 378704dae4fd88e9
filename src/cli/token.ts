// `trellis token create`: signs a join token with the key in the state dir and prints it alone on the last line.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CliError, parseVerbArgs, wantsJson } from './common.js';
import { TokenIssuer, parseDuration, DEFAULT_TOKEN_TTL_SECONDS, TOKEN_KEY_FILE } from '../identity/token.js';
import { formatSpiffeId } from '../identity/spiffe.js';

const HELP = `
Usage: trellis token create --namespace NS --service-account SA [--ttl 24h] [--state-dir DIR] [-o json]

Creates a join token that lets a proxy (or \`trellis cert\`) obtain the certificate for
spiffe://<trust domain>/ns/NS/sa/SA. The token is printed alone on the last line.

Options:
  --namespace NS, -n NS         namespace the token grants (default: default)
  --service-account SA          service account the token grants (required)
  --ttl D                       token lifetime, e.g. 30m, 24h, 7d (default 24h)
  --state-dir DIR               the control plane's state dir holding ${TOKEN_KEY_FILE} (default .trellis)
  -o json                       print {token, namespace, serviceAccount, spiffeId, expiresAt}
  -h, --help                    show this help
`;

/** The trust domain recorded by the CA in the state dir, when there is one. */
function trustDomainIn(stateDir: string): string | undefined {
  try {
    const td = (JSON.parse(readFileSync(join(stateDir, 'ca', 'state.json'), 'utf8')) as { trustDomain?: unknown }).trustDomain;
    return typeof td === 'string' ? td : undefined;
  } catch {
    return undefined;
  }
}

export default async function token(argv: string[]): Promise<number> {
  const args = parseVerbArgs(
    argv,
    {
      namespace: { type: 'string', short: 'n' },
      'service-account': { type: 'string' },
      ttl: { type: 'string' },
      'state-dir': { type: 'string' },
      output: { type: 'string', short: 'o' },
    },
    HELP,
  );
  if (!args) return 0;
  const [sub, ...extra] = args.positionals;
  if (sub !== 'create') {
    throw new CliError(sub ? `unknown subcommand "token ${sub}" (only \`trellis token create\`)` : 'missing subcommand: trellis token create --namespace NS --service-account SA');
  }
  if (extra.length) throw new CliError(`unexpected argument "${extra[0]}" (see --help)`);
  const v = args.values;
  const json = wantsJson(v);
  const namespace = (v.namespace as string | undefined) ?? 'default';
  const serviceAccount = v['service-account'] as string | undefined;
  if (!serviceAccount) throw new CliError('--service-account is required (the identity the token grants)');
  let ttlSeconds = DEFAULT_TOKEN_TTL_SECONDS;
  if (v.ttl !== undefined) {
    try {
      ttlSeconds = parseDuration(v.ttl as string);
    } catch (err) {
      throw new CliError(`--ttl: ${(err as Error).message}`);
    }
    if (ttlSeconds < 1) throw new CliError(`--ttl: "${String(v.ttl)}" is shorter than a second`);
  }
  const stateDir = resolve((v['state-dir'] as string | undefined) ?? '.trellis');
  let issuer: TokenIssuer;
  try {
    issuer = await TokenIssuer.load(stateDir);
  } catch (err) {
    const msg = (err as Error).message;
    if (msg.startsWith('no token signing key')) {
      throw new CliError(`${msg}: run \`trellis control\` first or pass --state-dir`);
    }
    throw new CliError(msg);
  }
  const trustDomain = trustDomainIn(stateDir);
  let spiffeId: string;
  let tokenText: string;
  try {
    tokenText = await issuer.create({ namespace, serviceAccount, ttlSeconds, trustDomain });
    spiffeId = formatSpiffeId(trustDomain ?? 'cluster.local', namespace, serviceAccount);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const expiresAt = new Date(Date.now() + ttlSeconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  if (json) {
    console.log(JSON.stringify({ token: tokenText, namespace, serviceAccount, spiffeId, expiresAt }, null, 2));
  } else {
    console.log(`join token for ${spiffeId}, expires ${expiresAt}`);
    console.log(tokenText);
  }
  return 0;
}
