// What a route compiler needs to know: the caller, the service index, and DestinationRule lookups.
import type { Locality, MeshSettings, ServiceInfo, ServicePort } from '../model.js';
import { destinationRuleFor, effectivePolicy } from './destination-rules.js';
import { hashPolicy } from './clusters.js';
import { type ServiceIndex, outboundClusterName, pickPort, qualifyHost } from './hosts.js';
import { memo } from './memo.js';
import { type Res, refOf } from './spec.js';

export interface Caller {
  namespace: string;
  labels: Record<string, string>;
  /** Proxyless clients have no labels to match and accept fewer route features. */
  proxyless: boolean;
  /** Where the caller runs, for locality-aware endpoint weights and priorities. */
  locality?: Locality;
}

export class RouteContext {
  constructor(
    /** The CompileInput (one per config/registry generation): owner of memoized lookups. */
    readonly generation: object,
    readonly resources: Res[],
    readonly index: ServiceIndex,
    readonly mesh: MeshSettings,
    readonly caller: Caller,
  ) {}

  /** The effective traffic policy and deciding DestinationRule for (service, port, subset) as this caller sees it. */
  policy(svc: ServiceInfo, port: number, subset: string | undefined) {
    const dr = memo(this.generation, `dr:${this.caller.namespace}:${svc.fqdn}`, () =>
      destinationRuleFor(this.resources, this.index, this.mesh, svc, this.caller.namespace),
    );
    return { policy: effectivePolicy(dr, port, subset), dr, drRef: dr ? refOf(dr) : undefined };
  }

  /** Route hash_policy for traffic to the given cluster target (empty unless its DestinationRule hashes). */
  hashPolicyFor(svc: ServiceInfo | undefined, port: number, subset: string | undefined): object[] {
    if (!svc) return [];
    return hashPolicy(this.policy(svc, port, subset).policy.loadBalancer);
  }

  /**
   * The cluster for a destination host written in namespace `ns`. The port defaults to the route's own port when
   * the destination is the routed service, else the destination's first port.
   */
  destination(
    host: string,
    ns: string,
    portNumber: number | undefined,
    subset: string | undefined,
    routed: { svc: ServiceInfo; port: ServicePort },
  ): { cluster: string; svc?: ServiceInfo; port: number } {
    const svc = this.index.resolve(host, ns);
    let port = portNumber;
    if (port === undefined) {
      if (svc === routed.svc) port = routed.port.port;
      else if (svc) port = svc.ports.find((p) => p.port === routed.port.port)?.port ?? pickPort(svc, undefined)?.port;
    }
    port ??= routed.port.port;
    return { cluster: outboundClusterName(port, subset, svc?.fqdn ?? qualifyHost(host, ns)), svc, port };
  }
}
