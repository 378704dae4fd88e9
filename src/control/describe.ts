// `describe`: what applies to a workload or service — ports, identity, mTLS and its deciding PeerAuthentication, routes,
// DestinationRule settings with defaults spelled out, authorization, endpoints with health and outlier ejection.
import type { Resource } from '../api/types.js';
import type { MeshSettings, RegistrySnapshot, ServiceInfo, ServicePort, WorkloadInstance } from './model.js';
import { effectiveMtls } from './compile/peer-auth.js';
import { selectPolicies } from './compile/authz/select.js';
import { ServiceIndex, portProtocol } from './compile/hosts.js';
import { RouteContext } from './compile/route-context.js';
import { serviceRoutes } from './compile/routes.js';
import { type Res, refOf } from './compile/spec.js';

export interface DescribeInput {
  resources: readonly Resource[];
  registry: RegistrySnapshot;
  mesh: MeshSettings;
  /** Outlier state reported by proxies: cluster -> endpoint "address:port" -> state. */
  outliers?: Map<string, Map<string, { ejected: boolean; ejectedForMs: number; lastReason?: string; proxy: string }>>;
}

export class DescribeError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface RouteSummary {
  name: string;
  match: string;
  destinations: { cluster: string; service?: string; port?: number; subset?: string; weight: number }[];
  timeout?: string;
  retries?: string;
  other?: string;
}

export interface PortRouting {
  port: number;
  protocol: string;
  /** The resource that governs routing on this port ("default" when none does). */
  source: string;
  /** Resources that also select this service but were set aside (a conflict worth fixing). */
  ignored: string[];
  routes: RouteSummary[];
}

export interface TrafficPolicyView {
  /** "DestinationRule ns/name", or "none (defaults)". */
  source: string;
  subset?: string;
  port: number;
  loadBalancer: string;
  connectTimeout: string;
  circuitBreaker: { maxConnections: number; maxPendingRequests: number; maxRequests: number; maxRetries: number; defaults: string[] };
  idleTimeout: string;
  maxRequestsPerConnection: string;
  outlierDetection: string | { consecutive5xxErrors: string; consecutiveGatewayErrors: string; interval: string; baseEjectionTime: string; maxEjectionPercent: number; defaults: string[] };
  tls: string;
}

export interface EndpointView {
  workload: string;
  address: string;
  port?: number;
  identity: string;
  health: string;
  proxy?: string;
  /** Outlier detection as the calling proxies see it: "ejected 12s by proxy-a (consecutive_5xx)", or "in rotation". */
  outlier?: string;
}

export interface ServiceDescription {
  kind: 'service';
  name: string;
  namespace: string;
  fqdn: string;
  source: string;
  ports: { port: number; name?: string; protocol: string }[];
  routing: PortRouting[];
  destinationRule: string | undefined;
  trafficPolicies: TrafficPolicyView[];
  /** The Mesh defaults that apply where routes and DestinationRules set nothing (built-in values named as such). */
  meshDefaults: MeshDefaultsView;
  endpoints: EndpointView[];
  warnings: string[];
}

export interface MeshDefaultsView {
  timeout: string;
  retries: string;
  retryBudget: string;
  connectTimeout: string;
  idleTimeout: string;
}

/** Mesh spec.defaults as describe shows them, built-in values spelled out. */
export function meshDefaultsView(mesh: MeshSettings): MeshDefaultsView {
  const d = mesh.defaults;
  const r = d?.retries;
  const b = mesh.retryBudget;
  return {
    timeout: d?.timeout ?? 'none (built-in)',
    retries: r ? `${r.attempts} on ${r.retryOn ?? 'connect-failure,refused-stream,unavailable,cancelled,503'}${r.perTryTimeout ? `, per try ${r.perTryTimeout}` : ''} (idempotent requests only)` : 'none (built-in)',
    retryBudget: b ? `${b.retryRatio}% of requests + ${b.minRetriesPerSecond}/s over ${b.ttl}` : '20% of requests + 10/s over 10s (built-in)',
    connectTimeout: d?.connectTimeout ?? '10s (built-in)',
    idleTimeout: d?.idleTimeout ?? '4s (built-in)',
  };
}

export interface PolicyView {
  ref: string;
  action?: string;
  rules?: number;
  scope: string;
}

export interface WorkloadDescription {
  kind: 'workload';
  name: string;
  namespace: string;
  identity: string;
  serviceAccount: string;
  labels: Record<string, string>;
  instances: { address: string; health: string; proxy?: string; source: string }[];
  ports: { port: number; name?: string; protocol: string; mtls: string; mtlsDecidedBy: string }[];
  peerAuthentications: string[];
  authorizationPolicies: PolicyView[];
  requestAuthentications: PolicyView[];
  rateLimitPolicies: PolicyView[];
  services: ServiceDescription[];
  warnings: string[];
}

const DEFAULT_BREAKER = 1024;

function dur(d: unknown, dflt: string): string {
  return typeof d === 'string' && d ? d : dflt;
}

function protoDuration(d: { seconds?: number | string; nanos?: number } | undefined): string | undefined {
  if (!d) return undefined;
  const ms = Number(d.seconds ?? 0) * 1000 + (d.nanos ?? 0) / 1e6;
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function parseCluster(name: string): { port?: number; subset?: string; fqdn?: string } {
  const m = /^outbound\|(\d+)\|([^|]*)\|(.+)$/.exec(name);
  return m ? { port: Number(m[1]), subset: m[2] || undefined, fqdn: m[3] } : {};
}

function matchText(m: Record<string, any> | undefined): string {
  if (!m) return '*';
  const parts: string[] = [];
  if (m.path !== undefined) parts.push(`path=${m.path}`);
  else if (m.prefix !== undefined) parts.push(m.prefix === '/' ? 'prefix=/' : `prefix=${m.prefix}`);
  else if (m.safe_regex?.regex !== undefined) parts.push(`regex=${m.safe_regex.regex}`);
  else if (m.path_separated_prefix !== undefined) parts.push(`prefix=${m.path_separated_prefix}`);
  for (const h of m.headers ?? []) {
    const sm = h.string_match ?? {};
    const v = sm.exact ?? sm.prefix ?? sm.safe_regex?.regex ?? (h.present_match ? '(present)' : '');
    parts.push(`${h.invert_match ? '!' : ''}header ${h.name}=${v}`);
  }
  for (const q of m.query_parameters ?? []) parts.push(`query ${q.name}`);
  return parts.join(' ') || '*';
}

/** A compiled route (Envoy shape) as one line a human reads. */
export function summarizeRoute(r: Record<string, any>): RouteSummary {
  const a = r.route as Record<string, any> | undefined;
  const destinations: RouteSummary['destinations'] = [];
  const add = (cluster: string, weight: number) => {
    const p = parseCluster(cluster);
    destinations.push({ cluster, ...(p.fqdn ? { service: p.fqdn } : {}), ...(p.port ? { port: p.port } : {}), ...(p.subset ? { subset: p.subset } : {}), weight });
  };
  if (a?.cluster) add(a.cluster, 100);
  for (const c of a?.weighted_clusters?.clusters ?? []) add(c.name, Number(c.weight?.value ?? c.weight ?? 0));
  const out: RouteSummary = { name: r.name ?? '(unnamed)', match: matchText(r.match), destinations };
  const t = protoDuration(a?.timeout);
  if (a) out.timeout = t && t !== '0s' ? t : 'none';
  const rp = a?.retry_policy;
  if (rp) {
    const per = protoDuration(rp.per_try_timeout);
    out.retries = `${rp.num_retries?.value ?? rp.num_retries ?? 1} on ${rp.retry_on}${per ? `, per try ${per}` : ''}`;
  } else if (a) out.retries = 'none';
  if (r.redirect) out.other = `redirect ${JSON.stringify(r.redirect)}`;
  if (r.direct_response) out.other = `direct response ${r.direct_response.status}`;
  if (a?.request_mirror_policies?.length) out.other = `mirror to ${a.request_mirror_policies.map((m: any) => m.cluster).join(', ')}`;
  return out;
}

type PolicyCore = ReturnType<RouteContext['policy']>['policy'];

/** The traffic policy with every unset field named with the default the proxy applies. */
export function trafficPolicyView(policy: PolicyCore, source: string, port: number, subset?: string, mesh?: MeshSettings): TrafficPolicyView {
  const md = mesh?.defaults;
  const pool = policy.connectionPool;
  const defaults: string[] = [];
  const lim = (v: number | undefined, name: string) => {
    if (v === undefined) defaults.push(name);
    return v ?? DEFAULT_BREAKER;
  };
  const lb = policy.loadBalancer;
  const lbText = lb?.simple ?? (lb?.consistentHash ? 'consistent hash' : 'ROUND_ROBIN (default)');
  const od = policy.outlierDetection;
  let odView: TrafficPolicyView['outlierDetection'] = 'off (no outlierDetection: no endpoint is ejected)';
  if (od) {
    const d: string[] = [];
    const c5 = od.consecutive5xxErrors ?? od.consecutiveErrors;
    if (od.interval === undefined) d.push('interval');
    if (od.baseEjectionTime === undefined) d.push('baseEjectionTime');
    if (od.maxEjectionPercent === undefined) d.push('maxEjectionPercent');
    odView = {
      consecutive5xxErrors: c5 === undefined ? 'not set (5xx do not eject)' : String(c5),
      consecutiveGatewayErrors: od.consecutiveGatewayErrors === undefined ? 'not set' : String(od.consecutiveGatewayErrors),
      interval: dur(od.interval, '10s (default)'),
      baseEjectionTime: dur(od.baseEjectionTime, '30s (default)'),
      maxEjectionPercent: Math.min(100, Math.max(0, od.maxEjectionPercent ?? 10)),
      defaults: d,
    };
  }
  const tls = policy.tls?.mode ?? 'ISTIO_MUTUAL (mesh default: mTLS to peers with a proxy)';
  return {
    source,
    ...(subset ? { subset } : {}),
    port,
    loadBalancer: String(lbText),
    connectTimeout: dur(pool?.tcp?.connectTimeout, md?.connectTimeout ? `${md.connectTimeout} (Mesh default)` : '10s (default)'),
    circuitBreaker: {
      maxConnections: lim(pool?.tcp?.maxConnections, 'maxConnections'),
      maxPendingRequests: lim(pool?.http?.http1MaxPendingRequests, 'http1MaxPendingRequests'),
      maxRequests: lim(pool?.http?.http2MaxRequests, 'http2MaxRequests'),
      maxRetries: lim(pool?.http?.maxRetries, 'maxRetries'),
      defaults,
    },
    idleTimeout: dur(pool?.http?.idleTimeout, md?.idleTimeout ? `${md.idleTimeout} (Mesh default)` : '4s (default)'),
    maxRequestsPerConnection: pool?.http?.maxRequestsPerConnection ? String(pool.http.maxRequestsPerConnection) : 'unlimited (default)',
    outlierDetection: odView,
    tls: String(tls),
  };
}

function splitName(name: string, ns: string | undefined): { ns: string; name: string } {
  if (ns) return { ns, name };
  const i = name.indexOf('/');
  if (i > 0) return { ns: name.slice(0, i), name: name.slice(i + 1) };
  const d = name.split('.');
  if (d.length >= 2) return { ns: d[1], name: d[0] };
  return { ns: 'default', name };
}

function membersOf(reg: RegistrySnapshot, svc: ServiceInfo): WorkloadInstance[] {
  return reg.workloads.filter((w) => w.services.includes(svc.fqdn));
}

function outlierText(input: DescribeInput, svc: ServiceInfo, w: WorkloadInstance, port: number | undefined): string | undefined {
  if (!input.outliers) return undefined;
  const states: string[] = [];
  for (const [cluster, eps] of input.outliers) {
    if (!cluster.endsWith(`|${svc.fqdn}`)) continue;
    for (const [id, st] of eps) {
      const [addr] = id.split(':');
      if (addr !== w.address) continue;
      if (port !== undefined && w.proxy && !id.endsWith(`:${w.proxy.inboundPort}`) && !id.endsWith(`:${port}`)) continue;
      if (st.ejected) states.push(`ejected for ${Math.ceil(st.ejectedForMs / 1000)}s more by ${st.proxy}${st.lastReason ? ` (${st.lastReason})` : ''}`);
    }
  }
  return states.length ? states.join('; ') : 'in rotation';
}

export function describeService(input: DescribeInput, nameArg: string, nsArg?: string): ServiceDescription {
  const { ns, name } = splitName(nameArg, nsArg);
  const index = new ServiceIndex(input.registry);
  const svc = index.resolve(name, ns);
  if (!svc) {
    const known = input.registry.services.map((s) => `${s.namespace}/${s.name}`).slice(0, 8).join(', ');
    throw new DescribeError(404, `no service "${name}" in namespace ${ns} (known: ${known || 'none'})`);
  }
  const resources = input.resources as Res[];
  const ctx = new RouteContext({}, resources, index, input.mesh, { namespace: svc.namespace, labels: {}, proxyless: false });
  const warnings: string[] = [];
  const routing: PortRouting[] = [];
  const policies: TrafficPolicyView[] = [];
  let drRef: string | undefined;
  for (const port of svc.ports) {
    const protocol = portProtocol(port);
    const r = serviceRoutes(ctx, svc, port as ServicePort);
    routing.push({ port: port.port, protocol, source: r.source, ignored: r.ignored, routes: (r.routes as Record<string, any>[]).map(summarizeRoute) });
    if (r.ignored.length) warnings.push(`port ${port.port}: ${r.ignored.join(', ')} also select this service but ${r.source} governs routing`);
    const { policy, dr, drRef: ref } = ctx.policy(svc, port.port, undefined);
    drRef = ref ? `DestinationRule ${ref}` : undefined;
    policies.push(trafficPolicyView(policy, drRef ?? 'none (defaults)', port.port, undefined, input.mesh));
    for (const s of dr?.spec?.subsets ?? []) {
      const sp = ctx.policy(svc, port.port, s.name);
      policies.push(trafficPolicyView(sp.policy, `${drRef} subset ${s.name}`, port.port, s.name, input.mesh));
    }
  }
  const endpoints: EndpointView[] = membersOf(input.registry, svc).map((w) => ({
    workload: `${w.namespace}/${w.name}`,
    address: w.address,
    ...(w.ports[0] ? { port: w.ports[0].port } : {}),
    identity: w.identity,
    health: w.health,
    ...(w.proxy?.id ? { proxy: w.proxy.id } : {}),
    ...(() => {
      const o = outlierText(input, svc, w, w.ports[0]?.port);
      return o ? { outlier: o } : {};
    })(),
  }));
  if (!endpoints.length) warnings.push('no endpoints: callers get no_healthy_upstream');
  else if (!endpoints.some((e) => e.health === 'HEALTHY')) warnings.push('no healthy endpoint: callers get no_healthy_upstream');
  return {
    kind: 'service',
    name: svc.name,
    namespace: svc.namespace,
    fqdn: svc.fqdn,
    source: svc.source,
    ports: svc.ports.map((p) => ({ port: p.port, ...(p.name ? { name: p.name } : {}), protocol: portProtocol(p) })),
    routing,
    destinationRule: drRef,
    trafficPolicies: policies,
    meshDefaults: meshDefaultsView(input.mesh),
    endpoints,
    warnings,
  };
}

function scopeOf(r: Resource, w: WorkloadInstance, mesh: MeshSettings): string {
  const spec = (r.spec ?? {}) as { selector?: { matchLabels?: Record<string, string> }; targetRef?: unknown; targetRefs?: unknown[] };
  if (spec.targetRef || spec.targetRefs?.length) return 'targetRef';
  const ns = r.metadata.namespace ?? 'default';
  if (spec.selector?.matchLabels && Object.keys(spec.selector.matchLabels).length) return `selector ${JSON.stringify(spec.selector.matchLabels)}`;
  if (ns !== w.namespace && (mesh.rootNamespaces.includes(ns) || ns === 'istio-system')) return 'mesh-wide (root namespace)';
  return 'namespace-wide';
}

export function describeWorkload(input: DescribeInput, nameArg: string, nsArg?: string): WorkloadDescription {
  const { ns, name } = splitName(nameArg, nsArg);
  const instances = input.registry.workloads.filter((w) => w.namespace === ns && w.name === name);
  if (!instances.length) {
    const known = [...new Set(input.registry.workloads.map((w) => `${w.namespace}/${w.name}`))].slice(0, 8).join(', ');
    throw new DescribeError(404, `no workload "${name}" in namespace ${ns} (known: ${known || 'none'})`);
  }
  const w = instances.find((i) => i.health === 'HEALTHY') ?? instances[0];
  const resources = input.resources as Resource[];
  const warnings: string[] = [];
  const ports = w.ports.map((p) => {
    const m = effectiveMtls(resources as Res[], input.mesh, w, p.port);
    return { port: p.port, ...(p.name ? { name: p.name } : {}), protocol: p.protocol, mtls: m.mode, mtlsDecidedBy: m.decidedBy === 'default' ? 'default (no PeerAuthentication)' : `PeerAuthentication ${m.decidedBy}` };
  });
  const of = (kind: string) => resources.filter((r) => r.kind === kind);
  const view = (list: Resource[]): PolicyView[] =>
    list.map((r) => {
      const spec = (r.spec ?? {}) as { action?: string; rules?: unknown[] };
      return {
        ref: `${r.kind} ${r.metadata.namespace ?? 'default'}/${r.metadata.name}`,
        ...(r.kind === 'AuthorizationPolicy' ? { action: spec.action ?? 'ALLOW', rules: spec.rules?.length ?? 0 } : {}),
        scope: scopeOf(r, w, input.mesh),
      };
    });
  const authz = selectPolicies(of('AuthorizationPolicy') as Resource<any>[], w, input.mesh, warnings);
  const reqAuthn = selectPolicies(of('RequestAuthentication') as Resource<any>[], w, input.mesh, warnings);
  const rateLimits = selectPolicies(of('RateLimitPolicy') as Resource<any>[], w, input.mesh, warnings);
  const peerAuths = [...new Set(ports.map((p) => p.mtlsDecidedBy).filter((d) => d.startsWith('PeerAuthentication')))];
  const hasAllow = authz.some((p) => ((p.spec as { action?: string }).action ?? 'ALLOW') === 'ALLOW');
  if (hasAllow) warnings.push('an ALLOW policy selects this workload: requests that match no ALLOW rule are denied');
  if (ports.some((p) => p.mtls === 'DISABLE')) warnings.push('mTLS is DISABLEd on some port: callers are not authenticated there');
  const services: ServiceDescription[] = [];
  for (const fqdn of w.services) {
    const svc = input.registry.services.find((s) => s.fqdn === fqdn);
    if (svc) services.push(describeService(input, svc.name, svc.namespace));
  }
  for (const i of instances) if (i.health !== 'HEALTHY') warnings.push(`instance at ${i.address} is ${i.health}${i.proxy?.id ? '' : ' (its proxy is not connected)'}`);
  return {
    kind: 'workload',
    name,
    namespace: ns,
    identity: w.identity,
    serviceAccount: w.serviceAccount,
    labels: w.labels,
    instances: instances.map((i) => ({ address: i.address, health: i.health, ...(i.proxy?.id ? { proxy: i.proxy.id } : {}), source: i.source })),
    ports,
    peerAuthentications: peerAuths,
    authorizationPolicies: view(authz),
    requestAuthentications: view(reqAuthn),
    rateLimitPolicies: view(rateLimits),
    services,
    warnings,
  };
}

/** "ns/name" or "name.ns" or "name" (namespace default) as typed on the command line. */
export function parseTarget(arg: string): { ns: string; name: string } {
  return splitName(arg, undefined);
}

