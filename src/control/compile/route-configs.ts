// RouteConfigurations: the per-caller outbound config of a Trellis workload, and the per-service config of proxyless clients.
import { createHash } from 'node:crypto';
import type { ServiceInfo, ServicePort } from '../model.js';
import { hostSpellings, isHttpProtocol, portProtocol } from './hosts.js';
import { memo } from './memo.js';
import type { RouteContext } from './route-context.js';
import { virtualHost } from './routes.js';
import { type Res, type VirtualServiceSpec, ofKind } from './spec.js';
import { labelsMatch } from './util.js';

/** Domains for one service port; port-less spellings go to the service's first HTTP port only. */
function domainsFor(svc: ServiceInfo, port: ServicePort, callerNs: string, used: Set<string>, extra: string[] = []): string[] {
  const httpPorts = svc.ports.filter((p) => isHttpProtocol(portProtocol(p)));
  const bare = httpPorts[0] === port || port.port === 80;
  const out: string[] = [];
  const add = (d: string) => {
    const k = d.toLowerCase();
    if (used.has(k)) return;
    used.add(k);
    out.push(d);
  };
  for (const e of extra) add(e);
  for (const s of hostSpellings(svc, callerNs)) {
    add(`${s}:${port.port}`);
    if (bare) add(s);
  }
  return out;
}

/** Every distinct non-empty `sourceLabels` of a VirtualService match, canonically keyed. */
function sourceSelectors(resources: Res[]): { key: string; labels: Record<string, string> }[] {
  return memo(resources, 'sourceSelectors', () => {
    const out = new Map<string, Record<string, string>>();
    for (const vs of ofKind<VirtualServiceSpec>(resources, 'VirtualService'))
      for (const h of vs.spec?.http ?? [])
        for (const m of h.match ?? []) {
          if (!m.sourceLabels || Object.keys(m.sourceLabels).length === 0) continue;
          const key = JSON.stringify(Object.entries(m.sourceLabels).sort(([a], [b]) => (a < b ? -1 : 1)));
          out.set(key, m.sourceLabels);
        }
    return [...out].map(([key, labels]) => ({ key, labels }));
  });
}

/**
 * The outbound route configuration a workload's listener names. Routes vary by caller only through its namespace
 * (short names, exportTo, sourceNamespace) and, where a VirtualService match uses `sourceLabels`, through which of
 * those selectors its labels satisfy. Callers alike in both share one configuration (and one encoding):
 * `outbound|<namespace>`, or `outbound|<namespace>|<digest of the matched selectors>`.
 */
export function outboundRouteName(resources: Res[], namespace: string, labels: Record<string, string>): string {
  const matched = sourceSelectors(resources).filter((s) => labelsMatch(s.labels, labels));
  if (matched.length === 0) return `outbound|${namespace}`;
  const digest = createHash('sha1').update(matched.map((s) => s.key).sort().join('\n')).digest('hex').slice(0, 12);
  return `outbound|${namespace}|${digest}`;
}

/** A virtual host per (service, HTTP port) in the mesh, routes as callers in `ctx.caller` see them. */
export function outboundRouteConfig(ctx: RouteContext, name: string): object {
  const used = new Set<string>();
  const vhosts: object[] = [];
  const ns = ctx.caller.namespace;
  // The caller's own namespace first, so its short names win any tie.
  const services = [...ctx.index.services].sort((a, b) => Number(b.namespace === ns) - Number(a.namespace === ns));
  for (const svc of services) {
    for (const port of svc.ports) {
      if (!isHttpProtocol(portProtocol(port))) continue;
      const domains = domainsFor(svc, port, ns, used);
      if (domains.length === 0) continue;
      vhosts.push(virtualHost(ctx, svc, port, domains));
    }
  }
  return { name, virtual_hosts: vhosts };
}

export function grpcRouteConfigName(svc: ServiceInfo, port: ServicePort): string {
  return `grpc|${svc.fqdn}:${port.port}`;
}

/** `grpc|fqdn:port` for proxyless clients: one virtual host whose domains include every name the client used. */
export function proxylessRouteConfig(ctx: RouteContext, svc: ServiceInfo, port: ServicePort, usedNames: string[]): object {
  const domains = domainsFor(svc, port, ctx.caller.namespace, new Set(), usedNames);
  return { name: grpcRouteConfigName(svc, port), virtual_hosts: [virtualHost(ctx, svc, port, domains)] };
}
