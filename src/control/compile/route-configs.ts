// RouteConfigurations: the per-caller outbound config of a Trellis workload, and the per-service config of proxyless clients.
import type { ServiceInfo, ServicePort, WorkloadInstance } from '../model.js';
import { hostSpellings, isHttpProtocol, portProtocol } from './hosts.js';
import { outboundListenerName } from './listeners.js';
import type { RouteContext } from './route-context.js';
import { virtualHost } from './routes.js';

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

/** `outbound|ns/name`: a virtual host per (service, HTTP port) in the mesh, routes as this caller sees them. */
export function outboundRouteConfig(ctx: RouteContext, w: WorkloadInstance): object {
  const used = new Set<string>();
  const vhosts: object[] = [];
  // The caller's own namespace first, so its short names win any tie.
  const services = [...ctx.index.services].sort((a, b) => Number(b.namespace === w.namespace) - Number(a.namespace === w.namespace));
  for (const svc of services) {
    for (const port of svc.ports) {
      if (!isHttpProtocol(portProtocol(port))) continue;
      const domains = domainsFor(svc, port, w.namespace, used);
      if (domains.length === 0) continue;
      vhosts.push(virtualHost(ctx, svc, port, domains));
    }
  }
  return { name: outboundListenerName(w), virtual_hosts: vhosts };
}

export function grpcRouteConfigName(svc: ServiceInfo, port: ServicePort): string {
  return `grpc|${svc.fqdn}:${port.port}`;
}

/** `grpc|fqdn:port` for proxyless clients: one virtual host whose domains include every name the client used. */
export function proxylessRouteConfig(ctx: RouteContext, svc: ServiceInfo, port: ServicePort, usedNames: string[]): object {
  const domains = domainsFor(svc, port, ctx.caller.namespace, new Set(), usedNames);
  return { name: grpcRouteConfigName(svc, port), virtual_hosts: [virtualHost(ctx, svc, port, domains)] };
}
