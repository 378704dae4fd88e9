// `trellis describe workload|service NAME`: what applies to it, as the control plane resolves it.
import { CONTROL_OPTION, OUTPUT_OPTION, CliError, controlAddress, controlApi, parseVerbArgs, wantsJson } from './common.js';
import type { ServiceDescription, TrafficPolicyView, WorkloadDescription } from '../control/describe.js';

const HELP = `
Usage: trellis describe workload|service NAME [-n NAMESPACE] [-o json] [--control ADDR]

Explains the configuration that applies, as the control plane resolves it:
  workload  identity, ports and protocols, the effective mTLS mode per port and the
            PeerAuthentication that set it, AuthorizationPolicies, RequestAuthentications
            and RateLimitPolicies that select it, and its services (below)
  service   routes per port with their destinations and weights (and the VirtualService,
            HTTPRoute or TrafficSplit they come from), the DestinationRule's timeouts,
            retries, connection pool and outlier settings with the defaults spelled out,
            and the current endpoints with their health and outlier ejection state

NAME is "name", "namespace/name" or "name.namespace" (namespace default: default).

Options:
  -n, --namespace NS   namespace of NAME
  -o, --output json    print the description as JSON
      --control ADDR   control plane HTTP API (default $TRELLIS_CONTROL or 127.0.0.1:15014)
  -h, --help           show this help
`;

function target(name: string, ns: string | undefined): { ns: string; name: string } {
  if (ns) return { ns, name };
  const i = name.indexOf('/');
  if (i > 0) return { ns: name.slice(0, i), name: name.slice(i + 1) };
  const d = name.split('.');
  if (d.length >= 2) return { ns: d[1], name: d[0] };
  return { ns: 'default', name };
}

function table(indent: string, headers: string[], rows: (string | number)[][]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? '').length)));
  const line = (cells: (string | number)[]) => indent + cells.map((c, i) => String(c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)];
}

function policyLines(p: TrafficPolicyView): string[] {
  const cb = p.circuitBreaker;
  const dflt = (name: string) => (cb.defaults.includes(name) ? ' (default)' : '');
  const out = [
    `    ${p.subset ? `subset ${p.subset}, ` : ''}port ${p.port} — ${p.source}`,
    `      load balancer: ${p.loadBalancer}; connect timeout: ${p.connectTimeout}; tls: ${p.tls}`,
    `      circuit breaker: maxConnections ${cb.maxConnections}${dflt('maxConnections')}, http1MaxPendingRequests ${cb.maxPendingRequests}${dflt('http1MaxPendingRequests')}, http2MaxRequests ${cb.maxRequests}${dflt('http2MaxRequests')}, maxRetries ${cb.maxRetries}${dflt('maxRetries')}`,
    `      connections: idle timeout ${p.idleTimeout}; max requests per connection ${p.maxRequestsPerConnection}`,
  ];
  const od = p.outlierDetection;
  if (typeof od === 'string') out.push(`      outlier detection: ${od}`);
  else
    out.push(
      `      outlier detection: consecutive5xxErrors ${od.consecutive5xxErrors}, consecutiveGatewayErrors ${od.consecutiveGatewayErrors}, interval ${od.interval}, baseEjectionTime ${od.baseEjectionTime}, maxEjectionPercent ${od.maxEjectionPercent}${od.defaults.includes('maxEjectionPercent') ? ' (default)' : ''}`,
    );
  return out;
}

export function formatService(s: ServiceDescription, heading = true): string[] {
  const out: string[] = [];
  if (heading) out.push(`Service ${s.namespace}/${s.name} (${s.fqdn}, from ${s.source})`);
  out.push(`  Ports: ${s.ports.map((p) => `${p.port}${p.name ? `/${p.name}` : ''} ${p.protocol}`).join(', ') || 'none'}`);
  for (const r of s.routing) {
    out.push(`  Routes on port ${r.port} (${r.protocol}), from ${r.source === 'default' ? 'no routing resource (default: all to the service)' : r.source}:`);
    out.push(
      ...table(
        '    ',
        ['ROUTE', 'MATCH', 'DESTINATIONS', 'TIMEOUT', 'RETRIES'],
        r.routes.map((x) => [
          x.name,
          x.match,
          x.destinations.map((d) => `${d.service ?? d.cluster}${d.subset ? `[${d.subset}]` : ''}${d.port ? `:${d.port}` : ''} ${d.weight}%`).join(', ') || x.other || '-',
          x.timeout ?? '-',
          x.retries ?? '-',
        ]),
      ),
    );
    if (r.ignored.length) out.push(`    set aside: ${r.ignored.join(', ')}`);
  }
  out.push(`  Destination rule: ${s.destinationRule ?? 'none (defaults below)'}`);
  for (const p of s.trafficPolicies) out.push(...policyLines(p));
  const md = s.meshDefaults;
  if (md) {
    out.push('  Mesh defaults (where routes and destination rules set nothing):');
    out.push(`    timeout ${md.timeout}; retries ${md.retries}`);
    out.push(`    retry budget ${md.retryBudget}; connect timeout ${md.connectTimeout}; idle timeout ${md.idleTimeout}`);
  }
  out.push('  Endpoints:');
  if (!s.endpoints.length) out.push('    none');
  else out.push(...table('    ', ['WORKLOAD', 'ADDRESS', 'PORT', 'HEALTH', 'OUTLIER', 'IDENTITY'], s.endpoints.map((e) => [e.workload, e.address, e.port ?? '-', e.health, e.outlier ?? '-', e.identity])));
  return out;
}

export function formatWorkload(w: WorkloadDescription): string[] {
  const out = [
    `Workload ${w.namespace}/${w.name}`,
    `  Identity: ${w.identity} (service account ${w.serviceAccount})`,
    `  Labels: ${Object.entries(w.labels).map(([k, v]) => `${k}=${v}`).join(', ') || 'none'}`,
    `  Instances: ${w.instances.map((i) => `${i.address} ${i.health}${i.proxy ? ` via ${i.proxy}` : ''}`).join('; ')}`,
    '  Ports:',
    ...table('    ', ['PORT', 'NAME', 'PROTOCOL', 'MTLS', 'DECIDED BY'], w.ports.map((p) => [p.port, p.name ?? '-', p.protocol, p.mtls, p.mtlsDecidedBy])),
  ];
  const pol = (title: string, list: WorkloadDescription['authorizationPolicies']) => {
    out.push(`  ${title}: ${list.length ? '' : 'none'}`.trimEnd());
    for (const p of list) out.push(`    ${p.ref}${p.action ? ` ${p.action}` : ''}${p.rules !== undefined ? ` (${p.rules} rule${p.rules === 1 ? '' : 's'})` : ''} — ${p.scope}`);
  };
  pol('Authorization', w.authorizationPolicies);
  pol('Request authentication', w.requestAuthentications);
  pol('Rate limits', w.rateLimitPolicies);
  for (const s of w.services) out.push(...formatService(s));
  const warnings = [...w.warnings, ...w.services.flatMap((s) => s.warnings.map((x) => `service ${s.name}: ${x}`))];
  if (warnings.length) out.push('Warnings:', ...warnings.map((x) => `  ${x}`));
  return out;
}

export default async function describe(argv: string[]): Promise<number> {
  const args = parseVerbArgs(argv, { ...OUTPUT_OPTION, ...CONTROL_OPTION, namespace: { type: 'string', short: 'n' } }, HELP);
  if (!args) return 0;
  const [kind, name, ...extra] = args.positionals;
  if (kind !== 'workload' && kind !== 'service') throw new CliError(`describe needs "workload" or "service" then a name, e.g. trellis describe workload reviews-v1 (see --help)`);
  if (!name) throw new CliError(`describe ${kind} needs a name (see --help)`);
  if (extra.length) throw new CliError(`unexpected argument "${extra[0]}" (see --help)`);
  const json = wantsJson(args.values);
  const t = target(name, args.values.namespace as string | undefined);
  const addr = controlAddress(args.values.control);
  const body = await controlApi<WorkloadDescription | ServiceDescription>(addr, `/api/v1/describe/${kind}/${encodeURIComponent(t.ns)}/${encodeURIComponent(t.name)}`);
  if (json) console.log(JSON.stringify(body, null, 2));
  else if (body.kind === 'workload') console.log(formatWorkload(body).join('\n'));
  else {
    const lines = formatService(body);
    if (body.warnings.length) lines.push('Warnings:', ...body.warnings.map((x) => `  ${x}`));
    console.log(lines.join('\n'));
  }
  return 0;
}
