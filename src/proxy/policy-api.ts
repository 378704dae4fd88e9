// The single seam where the proxy binds the pure routing and load-balancing modules.
export { compileRouteTable, type RouteTable } from './route/table.js';
export { selectRoute } from './route/select.js';
export { applyHeaderOps, rewritePath, type HeaderOps } from './route/headers.js';
export { normalizePath } from './route/normalize.js';
export type { RouteDecision, RouteRequest, ForwardDecision, FaultPolicy } from './route/types.js';
export { createBalancer, RequestCounters, type Balancer, type PickContext, type LbPolicy } from './balance/balancer.js';
export { endpointsFromLoadAssignment, type EndpointInfo } from './balance/endpoints.js';
export { hashKey } from './balance/hash.js';

import type { EndpointInfo } from './balance/endpoints.js';

/** The contract's endpoint metadata (filter_metadata.trellis), typed. */
export interface MeshEndpointMeta {
  workload?: string;
  identity?: string;
  labels?: Record<string, string>;
  targetPort?: number;
  tls?: 'mutual' | 'none';
}

export function meshMeta(ep: EndpointInfo): MeshEndpointMeta {
  return ep.metadata as MeshEndpointMeta;
}

/** mTLS to this endpoint: `tls: mutual`, or no tls field but an identity (older producers); inbound app endpoints carry neither. */
export function isMutual(ep: EndpointInfo): boolean {
  const m = ep.metadata as MeshEndpointMeta;
  return m.tls === 'mutual' || (m.tls === undefined && typeof m.identity === 'string' && m.identity !== '');
}
