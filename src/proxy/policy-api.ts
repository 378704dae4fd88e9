// The single seam where the proxy binds the pure routing and load-balancing modules.
// Interim: minimal stand-ins until src/proxy/route and src/proxy/balance land; then this file re-exports those.
export {
  compileRouteTable,
  selectRoute,
  applyHeaderOps,
  rewritePath,
  createBalancer,
  endpointsFromLoadAssignment,
  hashKey,
} from './interim-policy.js';
export type { RouteTable, RouteDecision, RouteRequest, Balancer, EndpointInfo, HeaderOps } from './interim-policy.js';
