// Picks the DestinationRule for a service and merges its traffic policy for one (port, subset).
import type { MeshSettings, ServiceInfo } from '../model.js';
import type { ServiceIndex } from './hosts.js';
import { type DestinationRuleSpec, type Res, type TrafficPolicy, nsOf, ofKind } from './spec.js';

export type DR = Res<DestinationRuleSpec>;

/**
 * The DestinationRule that applies to `svc` for a caller in `callerNs`: one in the caller's namespace, then
 * the service's, then a mesh root namespace, then any other; the oldest wins within a tier.
 */
export function destinationRuleFor(
  resources: Res[],
  index: ServiceIndex,
  mesh: MeshSettings,
  svc: ServiceInfo,
  callerNs: string | undefined,
): DR | undefined {
  const candidates = ofKind<DestinationRuleSpec>(resources, 'DestinationRule').filter((dr) =>
    dr.spec?.host ? index.covered(dr.spec.host, nsOf(dr)).includes(svc) : false,
  );
  if (candidates.length === 0) return undefined;
  const roots = new Set([...mesh.rootNamespaces, 'istio-system']);
  const tier = (dr: DR): number => {
    const ns = nsOf(dr);
    const exact = !dr.spec!.host.includes('*') ? 0 : 4; // an exact host beats a wildcard one
    if (callerNs !== undefined && ns === callerNs) return exact;
    if (ns === svc.namespace) return exact + 1;
    if (roots.has(ns)) return exact + 2;
    return exact + 3;
  };
  return [...candidates].sort((a, b) => tier(a) - tier(b))[0];
}

type PolicyCore = Omit<TrafficPolicy, 'portLevelSettings'>;

function overlay(base: PolicyCore, top: PolicyCore | undefined): PolicyCore {
  if (!top) return base;
  return {
    loadBalancer: top.loadBalancer ?? base.loadBalancer,
    connectionPool: top.connectionPool ?? base.connectionPool,
    outlierDetection: top.outlierDetection ?? base.outlierDetection,
    tls: top.tls ?? base.tls,
  };
}

function withPort(tp: TrafficPolicy | undefined, port: number): PolicyCore {
  if (!tp) return {};
  const { portLevelSettings, ...core } = tp;
  const pl = portLevelSettings?.find((p) => p.port?.number === port);
  if (!pl) return core;
  const { port: _p, ...plCore } = pl;
  return overlay(core, plCore);
}

/** Effective policy: DR policy, its port-level settings, then the subset's policy and its port-level settings. */
export function effectivePolicy(dr: DR | undefined, port: number, subset: string | undefined): PolicyCore {
  if (!dr?.spec) return {};
  let policy = withPort(dr.spec.trafficPolicy, port);
  if (subset) {
    const s = dr.spec.subsets?.find((x) => x.name === subset);
    if (s?.trafficPolicy) policy = overlay(policy, withPort(s.trafficPolicy, port));
  }
  return policy;
}

export function subsetLabels(dr: DR | undefined, subset: string): Record<string, string> | undefined {
  return dr?.spec?.subsets?.find((s) => s.name === subset)?.labels;
}
