// The proxy's own view of xDS resources: what the data path needs, parsed once per config update.
import type { NormalizeOptions } from '../route/normalize.js';

export type Direction = 'inbound' | 'outbound';
export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';
export type ChainProtocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'TCP';

/** One inbound filter chain: which connections it takes and where they go. */
export interface InboundChain {
  destinationPort?: number;
  transport: 'tls' | 'raw_buffer' | 'any';
  mtls: MtlsMode;
  decidedBy: string;
  protocol: ChainProtocol;
  /** The inbound cluster (app on localhost). */
  cluster: string;
  alpn: string[];
  /** HTTP filters other than the router: when present the inbound must parse HTTP (L7). */
  httpFilters: string[];
  /** The same filters as delivered (name, typed_config Any, is_optional, disabled): inbound policy is built from them. */
  httpFilterConfigs?: HttpFilterConfig[];
  /** Name of the inline route (for rate limits restricted to named routes). */
  routeName?: string;
  /** %2F / %5C in paths (HCM path_with_escaped_slashes_action); absent: reject. */
  escapedSlashes?: 'reject' | 'keep' | 'decode-and-merge';
  /** Path normalization from the HCM (normalize_path, merge_slashes, escaped slashes); absent: Trellis's default. */
  normalize?: NormalizeOptions;
}

/** One entry of an HCM's http_filters, nested Any still packed. */
export interface HttpFilterConfig {
  name: string;
  typed_config?: { type_url: string; value: Uint8Array };
  is_optional?: boolean;
  disabled?: boolean;
}

export interface ListenerConfig {
  name: string;
  address: string;
  port: number;
  direction: Direction;
  /** "ns/name" of the workload this listener belongs to. */
  workload: string;
  kind: 'http' | 'tcp' | 'inbound';
  /** Outbound HTTP: the RouteConfiguration name (RDS). */
  routeConfigName?: string;
  /** Outbound TCP: the cluster every connection goes to. */
  tcpCluster?: string;
  /** Outbound HTTP: path normalization from the HCM; absent: Trellis's default (MERGE_SLASHES, %2F/%5C refused). */
  normalize?: NormalizeOptions;
  chains: InboundChain[];
}

export interface ClusterConfig {
  name: string;
  type: 'EDS' | 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'ORIGINAL_DST';
  edsServiceName: string;
  connectTimeoutMs: number;
  lbPolicy: string;
  localityAware: boolean;
  service?: string;
  port?: number;
  subset?: string;
  protocol: string;
  /** STATIC clusters carry their endpoints inline. */
  loadAssignment?: Record<string, unknown>;
}
