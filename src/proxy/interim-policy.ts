// Temporary minimal routing and balancing (exact/suffix-less domains, prefix/path match, round robin) until the real modules land.
type Obj = Record<string, any>;

export interface HeaderOps {
  add?: { key: string; value: string; append?: boolean }[];
  remove?: string[];
}

export interface RouteRequest {
  authority: string;
  path: string;
  query?: string;
  method: string;
  headers: Record<string, string | string[] | undefined>;
}

export type RouteDecision =
  | {
      kind: 'forward';
      routeName: string;
      virtualHost: string;
      cluster: string;
      timeoutMs: number;
      retry?: unknown;
      rewrite?: { prefix?: { match: string; replace: string }; host?: string };
      requestHeaders: HeaderOps;
      responseHeaders: HeaderOps;
      mirrors: unknown[];
      hashPolicies: unknown[];
      fault?: { abort?: { status: number }; delayMs?: number };
    }
  | { kind: 'redirect'; routeName: string; status: number; location: string }
  | { kind: 'direct'; routeName: string; status: number; body?: string }
  | { kind: 'no_route'; reason: string };

interface CompiledRoute {
  name: string;
  prefix?: string;
  path?: string;
  raw: Obj;
}
interface CompiledVh {
  name: string;
  domains: string[];
  routes: CompiledRoute[];
}
export interface RouteTable {
  name: string;
  vhosts: CompiledVh[];
}

export function compileRouteTable(rc: Obj): RouteTable {
  return {
    name: String(rc.name ?? ''),
    vhosts: (rc.virtual_hosts ?? []).map((vh: Obj) => ({
      name: String(vh.name ?? ''),
      domains: (vh.domains ?? []).map((d: string) => d.toLowerCase()),
      routes: (vh.routes ?? []).map((r: Obj, i: number) => ({
        name: r.name ?? `${vh.name}#${i}`,
        prefix: r.match?.prefix,
        path: r.match?.path,
        raw: r,
      })),
    })),
  };
}

function ops(add: Obj[] | undefined, remove: string[] | undefined): HeaderOps {
  return {
    add: (add ?? []).map((h) => ({ key: h.header.key, value: h.header.value, append: h.append_action === 'APPEND_IF_EXISTS_OR_ADD' })),
    remove: remove ?? [],
  };
}

export function selectRoute(table: RouteTable, req: RouteRequest, random: () => number = Math.random): RouteDecision {
  const host = req.authority.toLowerCase();
  const bare = host.replace(/:\d+$/, '');
  const vh =
    table.vhosts.find((v) => v.domains.includes(host)) ??
    table.vhosts.find((v) => v.domains.includes(bare)) ??
    table.vhosts.find((v) => v.domains.includes('*'));
  if (!vh) return { kind: 'no_route', reason: `no virtual host for authority "${req.authority}" in ${table.name}` };
  const r = vh.routes.find((x) => (x.path !== undefined ? req.path === x.path : req.path.startsWith(x.prefix ?? '/')));
  if (!r) return { kind: 'no_route', reason: `no route in virtual host ${vh.name} matches ${req.method} ${req.path}` };
  const raw = r.raw;
  if (raw.direct_response) {
    return { kind: 'direct', routeName: r.name, status: raw.direct_response.status, body: raw.direct_response.body?.inline_string };
  }
  if (raw.redirect) {
    return { kind: 'redirect', routeName: r.name, status: 301, location: `http://${raw.redirect.host_redirect ?? bare}${raw.redirect.path_redirect ?? req.path}` };
  }
  const a = raw.route ?? {};
  let cluster: string = a.cluster;
  if (!cluster && a.weighted_clusters) {
    const cs: Obj[] = a.weighted_clusters.clusters;
    const total = cs.reduce((s, c) => s + Number(c.weight?.value ?? c.weight ?? 0), 0);
    let x = random() * total;
    cluster = cs[cs.length - 1].name;
    for (const c of cs) {
      x -= Number(c.weight?.value ?? c.weight ?? 0);
      if (x < 0) {
        cluster = c.name;
        break;
      }
    }
  }
  const t = a.timeout ? Number(a.timeout.seconds ?? 0) * 1000 + Math.round((a.timeout.nanos ?? 0) / 1e6) : 15_000;
  return {
    kind: 'forward',
    routeName: r.name,
    virtualHost: vh.name,
    cluster,
    timeoutMs: t,
    rewrite: a.prefix_rewrite !== undefined ? { prefix: { match: r.prefix ?? '/', replace: a.prefix_rewrite } } : undefined,
    requestHeaders: ops(raw.request_headers_to_add, raw.request_headers_to_remove),
    responseHeaders: ops(raw.response_headers_to_add, raw.response_headers_to_remove),
    mirrors: [],
    hashPolicies: [],
  };
}

export function applyHeaderOps(headers: Record<string, string | string[] | undefined>, o: HeaderOps): void {
  for (const k of o.remove ?? []) delete headers[k.toLowerCase()];
  for (const h of o.add ?? []) headers[h.key.toLowerCase()] = h.value;
}

export function rewritePath(path: string, rw: { prefix?: { match: string; replace: string } } | undefined): string {
  if (!rw?.prefix) return path;
  return path.startsWith(rw.prefix.match) ? rw.prefix.replace + path.slice(rw.prefix.match.length) : path;
}

export interface EndpointInfo {
  id: string;
  address: string;
  port: number;
  weight: number;
  healthy: boolean;
  locality: { region?: string; zone?: string; subZone?: string };
  metadata: { workload?: string; identity?: string; labels?: Record<string, string>; targetPort?: number; tls?: 'mutual' | 'none' };
}

export interface Balancer {
  pick(opts?: { hash?: bigint | number; excluded?: Set<string> }): EndpointInfo | undefined;
  onRequestStart(ep: EndpointInfo): void;
  onRequestEnd(ep: EndpointInfo): void;
}

import { structToObject as structObj } from './config/struct.js';

export function endpointsFromLoadAssignment(cla: Obj): EndpointInfo[] {
  const out: EndpointInfo[] = [];
  for (const lle of cla.endpoints ?? []) {
    for (const lb of lle.lb_endpoints ?? []) {
      const sa = lb.endpoint?.address?.socket_address;
      if (!sa) continue;
      const md = structObj(lb.metadata?.filter_metadata?.trellis);
      out.push({
        id: `${sa.address}:${sa.port_value}`,
        address: sa.address,
        port: Number(sa.port_value),
        weight: Number(lb.load_balancing_weight?.value ?? 1),
        healthy: (lb.health_status ?? 'HEALTHY') === 'HEALTHY' || lb.health_status === 'UNKNOWN',
        locality: { region: lle.locality?.region, zone: lle.locality?.zone, subZone: lle.locality?.sub_zone },
        metadata: {
          workload: md.workload,
          identity: md.identity,
          labels: md.labels,
          targetPort: md.targetPort !== undefined ? Number(md.targetPort) : undefined,
          tls: md.tls,
        },
      });
    }
  }
  return out;
}

export function createBalancer(o: { policy: string; endpoints: EndpointInfo[] }): Balancer {
  const healthy = o.endpoints.filter((e) => e.healthy);
  let i = 0;
  return {
    pick(opts) {
      for (let n = 0; n < healthy.length; n++) {
        const ep = healthy[i++ % healthy.length];
        if (!opts?.excluded?.has(ep.id)) return ep;
      }
      return undefined;
    },
    onRequestStart() {},
    onRequestEnd() {},
  };
}

export function hashKey(_policies: unknown[], _req: unknown): bigint | undefined {
  return undefined;
}
