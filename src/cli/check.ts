// `trellis check`: is the mesh healthy? Control plane reachable, proxies in sync, CA certificates not near expiry.
import { CONTROL_OPTION, OUTPUT_OPTION, controlAddress, controlApi, parseVerbArgs, wantsJson } from './common.js';
import type { ProxyStatus } from './status.js';

const HELP = `
Usage: trellis check [-o json] [--control ADDR]

Checks the health of the mesh: the control plane answers, its config was accepted, every
proxy has acknowledged its latest config (SYNCED), no CA root or intermediate expires
within 30 days, and no proxy holds an expired workload certificate or one past 75% of its
lifetime (proxies renew at half-life, so that means renewal is failing). Prints one line
per problem and exits 1 if there is any.

Options:
  -o, --output json    print {ok, problems} as JSON
      --control ADDR   control plane HTTP API (default $TRELLIS_CONTROL or 127.0.0.1:15014)
  -h, --help           show this help
`;

interface StatusBody {
  store?: { kind: string; lastError?: { message: string } };
  ca?: { roots: { fingerprint: string; notAfter: string }[]; intermediates: { fingerprint: string; notAfter: string }[] };
}

const EXPIRY_WARNING_MS = 30 * 86400_000;
/** Proxies renew at half-life: a certificate past this fraction of its lifetime was not renewed in time. */
const NOT_RENEWED_FRACTION = 0.75;
/** A response sent this recently and not yet acknowledged is in flight, not a problem. */
const IN_FLIGHT_MS = 5000;

/** Pure: the problems in what the control plane reports. */
export function findProblems(status: StatusBody, proxies: ProxyStatus[], now = Date.now()): string[] {
  const problems: string[] = [];
  if (status.store?.lastError) problems.push(`config: ${status.store.lastError.message}`);
  const certs = [
    ...(status.ca?.roots ?? []).map((c) => ({ ...c, kind: 'root' })),
    ...(status.ca?.intermediates ?? []).map((c) => ({ ...c, kind: 'intermediate' })),
  ];
  for (const c of certs) {
    const left = Date.parse(c.notAfter) - now;
    if (left <= 0) problems.push(`CA ${c.kind} ${c.fingerprint.slice(0, 16)} expired on ${c.notAfter}`);
    else if (left < EXPIRY_WARNING_MS)
      problems.push(`CA ${c.kind} ${c.fingerprint.slice(0, 16)} expires in ${Math.ceil(left / 86400_000)} day(s) (${c.notAfter}); rotate it with \`trellis ca rotate\``);
  }
  for (const p of proxies) {
    for (const [type, s] of Object.entries(p.types)) {
      if (s.state === 'NACKED') problems.push(`proxy ${p.id}: ${type} NACKED: ${s.nackReason ?? 'no reason given'}`);
      else if (s.state === 'STALE' && (!s.sentAt || now - Date.parse(s.sentAt) > IN_FLIGHT_MS))
        problems.push(`proxy ${p.id}: ${type} STALE: version ${s.sentVersion} sent ${s.sentAt ?? ''} and not acknowledged`);
    }
    for (const c of p.certificates ?? []) {
      const issued = Date.parse(c.issuedAt);
      const end = Date.parse(c.notAfter);
      if (end <= now) problems.push(`proxy ${p.id}: certificate for ${c.spiffeId} expired at ${c.notAfter}; its peers refuse it (is the CA reachable from the proxy?)`);
      else if (end > issued && (now - issued) / (end - issued) > NOT_RENEWED_FRACTION)
        problems.push(
          `proxy ${p.id}: certificate for ${c.spiffeId} is ${Math.round((100 * (now - issued)) / (end - issued))}% through its lifetime and not renewed (expires ${c.notAfter}); renewal is due at half-life: check the proxy's log for CA errors`,
        );
    }
    for (const w of p.workloads) if (w.health !== 'HEALTHY') problems.push(`workload ${w.namespace}/${w.name} on proxy ${p.id} is ${w.health}`);
  }
  return problems;
}

export default async function check(argv: string[]): Promise<number> {
  const args = parseVerbArgs(argv, { ...OUTPUT_OPTION, ...CONTROL_OPTION }, HELP, false);
  if (!args) return 0;
  const json = wantsJson(args.values);
  const addr = controlAddress(args.values.control);
  let problems: string[];
  let proxies: ProxyStatus[] = [];
  try {
    const status = await controlApi<StatusBody>(addr, '/api/v1/status');
    proxies = (await controlApi<{ proxies: ProxyStatus[] }>(addr, '/api/v1/proxies')).proxies;
    problems = findProblems(status, proxies);
  } catch (err) {
    problems = [`control plane: ${(err as Error).message}`];
  }
  if (json) {
    console.log(JSON.stringify({ ok: problems.length === 0, problems, proxies: proxies.length }, null, 2));
    return problems.length ? 1 : 0;
  }
  if (!problems.length) {
    console.log(`ok: control plane at ${addr} reachable, ${proxies.length} proxy(ies) in sync with fresh certificates, CA certificates valid for more than 30 days`);
    return 0;
  }
  for (const p of problems) console.log(`problem: ${p}`);
  console.log('run `trellis status` for sync details and `trellis describe workload|service NAME` for what applies to a workload');
  return 1;
}
