// Chooses the routing config that governs a service port (HTTPRoute/GRPCRoute > TrafficSplit > VirtualService > default) and builds its virtual host.
import type { ServiceInfo, ServicePort } from '../model.js';
import { gatewayRoutes, gatewayRoutesFor } from './gateway-routes.js';
import { outboundClusterName } from './hosts.js';
import type { RouteContext } from './route-context.js';
import { routeRetryPolicy, routeTimeout } from './route-parts.js';
import { refOf } from './spec.js';
import { trafficSplitRoutes, trafficSplitsFor } from './split-routes.js';
import { trellisMetadata } from './util.js';
import { virtualServiceRoutes, virtualServicesFor } from './vs-routes.js';

export interface ServiceRoutes {
  routes: object[];
  /** Which resource produced the routes and which were set aside (recorded on the virtual host). */
  source: string;
  ignored: string[];
}

/** The route a service port gets when nothing configures it: everything to `outbound|port||fqdn`. */
export function defaultRoute(ctx: RouteContext, svc: ServiceInfo, port: ServicePort): object {
  const action: Record<string, unknown> = { cluster: outboundClusterName(port.port, undefined, svc.fqdn), timeout: routeTimeout(ctx.mesh, undefined) };
  const retry = routeRetryPolicy(ctx.mesh, undefined);
  if (retry) action.retry_policy = retry;
  const hp = ctx.hashPolicyFor(svc, port.port, undefined);
  if (hp.length > 0) action.hash_policy = hp;
  return { name: 'default', match: { prefix: '/' }, route: action };
}

export function serviceRoutes(ctx: RouteContext, svc: ServiceInfo, port: ServicePort): ServiceRoutes {
  const gw = gatewayRoutesFor(ctx, svc, port);
  const splits = trafficSplitsFor(ctx, svc);
  const vss = virtualServicesFor(ctx, svc).filter((vs) => (vs.spec?.http ?? []).length > 0);
  const label = (kind: string, r: { metadata: { name: string; namespace?: string }; kind: string }) =>
    `${kind} ${refOf(r as never)}`;
  if (gw.length > 0) {
    return {
      routes: gatewayRoutes(ctx, gw, svc, port),
      source: gw.map((r) => label(r.kind, r)).join(', '),
      ignored: [...splits.map((r) => label('TrafficSplit', r)), ...vss.map((r) => label('VirtualService', r))],
    };
  }
  if (splits.length > 0) {
    return {
      routes: trafficSplitRoutes(ctx, splits[0], svc, port),
      source: label('TrafficSplit', splits[0]),
      ignored: [...splits.slice(1).map((r) => label('TrafficSplit', r)), ...vss.map((r) => label('VirtualService', r))],
    };
  }
  if (vss.length > 0) {
    return {
      routes: virtualServiceRoutes(ctx, vss[0], svc, port),
      source: label('VirtualService', vss[0]),
      ignored: vss.slice(1).map((r) => label('VirtualService', r)),
    };
  }
  return { routes: [defaultRoute(ctx, svc, port)], source: 'default', ignored: [] };
}

/** A virtual host `<fqdn>:<port>` with the given domains and the governing routes. */
export function virtualHost(ctx: RouteContext, svc: ServiceInfo, port: ServicePort, domains: string[]): object {
  const r = serviceRoutes(ctx, svc, port);
  const vh: Record<string, unknown> = { name: `${svc.fqdn}:${port.port}`, domains, routes: r.routes };
  // Nothing configures most services: their virtual hosts carry no metadata (absent = source "default"), which is
  // a quarter of an outbound route configuration that every sidecar receives on every route change.
  if (r.source === 'default' && r.ignored.length === 0) return vh;
  vh.metadata = trellisMetadata({
    service: svc.fqdn,
    port: port.port,
    source: r.source,
    ...(r.ignored.length > 0 ? { ignored: r.ignored } : {}),
  });
  return vh;
}
