// SMI TrafficSplit -> one Envoy route splitting the root service's traffic across backend services by weight.
import type { ServiceInfo, ServicePort } from '../model.js';
import type { RouteContext } from './route-context.js';
import { type Res, type TrafficSplitSpec, nsOf, ofKind, refOf } from './spec.js';
import { clusterSpecifier, routeRetryPolicy, routeTimeout } from './route-parts.js';
import { parseQuantity } from './util.js';

export type TS = Res<TrafficSplitSpec>;

/** TrafficSplits whose root service is `svc`, oldest first. */
export function trafficSplitsFor(ctx: RouteContext, svc: ServiceInfo): TS[] {
  return ofKind<TrafficSplitSpec>(ctx.resources, 'TrafficSplit').filter(
    (ts) => ts.spec?.service !== undefined && ctx.index.resolve(ts.spec.service, nsOf(ts)) === svc,
  );
}

export function trafficSplitRoutes(ctx: RouteContext, ts: TS, svc: ServiceInfo, port: ServicePort): object[] {
  const dests = (ts.spec?.backends ?? []).map((b) => {
    const d = ctx.destination(b.service, nsOf(ts), undefined, undefined, { svc, port });
    const w = parseQuantity(b.weight ?? 0);
    return { cluster: d.cluster, weight: Number.isFinite(w) ? w : 0, svc: d.svc, port: d.port };
  });
  const route: Record<string, unknown> = { name: `${refOf(ts)}#0`, match: { prefix: '/' } };
  if (dests.length === 0) {
    if (ctx.caller.proxyless) return [];
    route.direct_response = { status: 500 };
    return [route];
  }
  // SMI TrafficSplit has no timeout or retry fields: the Mesh's defaults apply.
  const a: Record<string, unknown> = { ...clusterSpecifier(dests, route), timeout: routeTimeout(ctx.mesh, undefined) };
  const retry = routeRetryPolicy(ctx.mesh, undefined);
  if (retry) a.retry_policy = retry;
  const hp = ctx.hashPolicyFor(dests[0].svc, dests[0].port, undefined);
  if (hp.length > 0) a.hash_policy = hp;
  route.route = a;
  return [route];
}
