// DestinationRule traffic policy -> Envoy Cluster (EDS outbound clusters) and the inbound STATIC clusters.
import type { MeshSettings, ServiceInfo, ServicePort } from '../model.js';
import type { LoadBalancerSettings, TrafficPolicy } from './spec.js';
import { outboundClusterName, portProtocol } from './hosts.js';
import { duration, trellisMetadata } from './util.js';

type PolicyCore = Omit<TrafficPolicy, 'portLevelSettings'>;

const DEFAULT_CONNECT_TIMEOUT = { seconds: 10 };

/** Envoy lb_policy for Istio's LoadBalancerSettings. */
export function lbPolicy(lb: LoadBalancerSettings | undefined): string {
  if (lb?.consistentHash) return lb.consistentHash.maglev ? 'MAGLEV' : 'RING_HASH';
  switch ((lb?.simple ?? '').toUpperCase()) {
    case 'LEAST_REQUEST':
    case 'LEAST_CONN':
      return 'LEAST_REQUEST';
    case 'RANDOM':
      return 'RANDOM';
    default:
      return 'ROUND_ROBIN';
  }
}

/** RouteAction.hash_policy entries for a consistent-hash load balancer (empty when not hashing). */
export function hashPolicy(lb: LoadBalancerSettings | undefined): object[] {
  const ch = lb?.consistentHash;
  if (!ch) return [];
  if (ch.httpHeaderName) return [{ header: { header_name: ch.httpHeaderName } }];
  if (ch.httpCookie) {
    const cookie: Record<string, unknown> = { name: ch.httpCookie.name };
    if (ch.httpCookie.path) cookie.path = ch.httpCookie.path;
    const ttl = duration(ch.httpCookie.ttl);
    if (ttl) cookie.ttl = ttl;
    return [{ cookie }];
  }
  if (ch.httpQueryParameterName) return [{ query_parameter: { name: ch.httpQueryParameterName } }];
  if (ch.useSourceIp) return [{ connection_properties: { source_ip: true } }];
  return [];
}

function hashKey(lb: LoadBalancerSettings | undefined): string | undefined {
  const ch = lb?.consistentHash;
  if (!ch) return undefined;
  if (ch.httpHeaderName) return `header:${ch.httpHeaderName}`;
  if (ch.httpCookie) return `cookie:${ch.httpCookie.name}`;
  if (ch.httpQueryParameterName) return `query:${ch.httpQueryParameterName}`;
  if (ch.useSourceIp) return 'source_ip';
  return undefined;
}

export interface OutboundClusterOptions {
  svc: ServiceInfo;
  port: ServicePort;
  subset?: string;
  policy: PolicyCore;
  destinationRule?: string;
  /** Proxyless gRPC clients accept only ROUND_ROBIN and RING_HASH. */
  proxyless?: boolean;
  /**
   * The Mesh's defaults.retryBudget. Neither DestinationRule nor the routes have a budget field, so this is the
   * destination's budget; absent, the proxy applies the same defaults (20% + 10/s over 10 s).
   */
  retryBudget?: MeshSettings['retryBudget'];
  /** The Mesh's defaults: connectTimeout and idleTimeout apply where the DestinationRule's connectionPool sets none. */
  meshDefaults?: MeshSettings['defaults'];
}

/** One outbound EDS cluster `outbound|port|subset|fqdn` with its DestinationRule policy applied. */
export function outboundCluster(o: OutboundClusterOptions): Record<string, unknown> {
  const name = outboundClusterName(o.port.port, o.subset, o.svc.fqdn);
  const { loadBalancer: lb, connectionPool: pool, outlierDetection: od } = o.policy;
  let policy = lbPolicy(lb);
  if (o.proxyless && policy !== 'RING_HASH') policy = 'ROUND_ROBIN';
  const cluster: Record<string, unknown> = {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {} }, service_name: name },
    connect_timeout: duration(pool?.tcp?.connectTimeout) ?? duration(o.meshDefaults?.connectTimeout) ?? DEFAULT_CONNECT_TIMEOUT,
    lb_policy: policy,
  };
  if (policy === 'RING_HASH') {
    const min = lb?.consistentHash?.ringHash?.minimumRingSize ?? lb?.consistentHash?.minimumRingSize;
    cluster.ring_hash_lb_config = { hash_function: 'XX_HASH', ...(min ? { minimum_ring_size: { value: min } } : {}) };
  }
  if (policy === 'MAGLEV' && lb?.consistentHash?.maglev?.tableSize) {
    cluster.maglev_lb_config = { table_size: { value: lb.consistentHash.maglev.tableSize } };
  }
  const loc = lb?.localityLbSetting;
  if (loc && loc.enabled !== false) {
    cluster.common_lb_config = loc.distribute?.length
      ? { locality_weighted_lb_config: {} }
      : { zone_aware_lb_config: {} };
  }
  const thresholds: Record<string, unknown> = {};
  if (pool?.tcp?.maxConnections !== undefined) thresholds.max_connections = { value: pool.tcp.maxConnections };
  if (pool?.http?.http1MaxPendingRequests !== undefined)
    thresholds.max_pending_requests = { value: pool.http.http1MaxPendingRequests };
  if (pool?.http?.http2MaxRequests !== undefined) thresholds.max_requests = { value: pool.http.http2MaxRequests };
  if (pool?.http?.maxRetries !== undefined) thresholds.max_retries = { value: pool.http.maxRetries };
  if (Object.keys(thresholds).length > 0) cluster.circuit_breakers = { thresholds: [{ priority: 'DEFAULT', ...thresholds }] };
  const http: Record<string, unknown> = {};
  const idle = duration(pool?.http?.idleTimeout) ?? duration(o.meshDefaults?.idleTimeout);
  if (idle) http.idle_timeout = idle;
  if (pool?.http?.maxRequestsPerConnection) http.max_requests_per_connection = { value: pool.http.maxRequestsPerConnection };
  if (Object.keys(http).length > 0) cluster.common_http_protocol_options = http;
  if (od) cluster.outlier_detection = outlierDetection(od);
  const protocol = portProtocol(o.port);
  cluster.metadata = trellisMetadata({
    service: o.svc.fqdn,
    port: o.port.port,
    subset: o.subset ?? '',
    protocol,
    hashPolicy: hashKey(lb),
    destinationRule: o.destinationRule,
    retryBudget: o.retryBudget,
  });
  return cluster;
}

function outlierDetection(od: NonNullable<PolicyCore['outlierDetection']>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const c5xx = od.consecutive5xxErrors ?? od.consecutiveErrors;
  if (c5xx !== undefined) {
    out.consecutive_5xx = { value: c5xx };
    out.enforcing_consecutive_5xx = { value: c5xx > 0 ? 100 : 0 };
  } else {
    // Istio semantics: only the errors the user configured eject hosts.
    out.enforcing_consecutive_5xx = { value: 0 };
  }
  if (od.consecutiveGatewayErrors !== undefined) {
    out.consecutive_gateway_failure = { value: od.consecutiveGatewayErrors };
    out.enforcing_consecutive_gateway_failure = { value: od.consecutiveGatewayErrors > 0 ? 100 : 0 };
  }
  out.interval = duration(od.interval) ?? { seconds: 10 };
  out.base_ejection_time = duration(od.baseEjectionTime) ?? { seconds: 30 };
  out.max_ejection_percent = { value: Math.min(100, Math.max(0, od.maxEjectionPercent ?? 10)) };
  return out;
}

/** The STATIC cluster delivering inbound traffic to the app on `address:appPort`. */
export function inboundCluster(name: string, address: string, appPort: number, protocol: string): Record<string, unknown> {
  return {
    name,
    type: 'STATIC',
    connect_timeout: DEFAULT_CONNECT_TIMEOUT,
    lb_policy: 'ROUND_ROBIN',
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          load_balancing_weight: { value: 1 },
          lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: appPort } } } }],
        },
      ],
    },
    metadata: trellisMetadata({ direction: 'inbound', port: appPort, protocol }),
  };
}
