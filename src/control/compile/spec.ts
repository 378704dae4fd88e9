// Minimal YAML-shaped views of the config kinds the compiler reads (validated input; every field optional).
import type { Resource } from '../../api/types.js';
import { memo } from './memo.js';

export interface Meta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  creationTimestamp?: string;
}

/** A config resource as the compiler sees it: kind, metadata and a loosely typed spec. */
export interface Res<S = Record<string, unknown>> {
  apiVersion?: string;
  kind: string;
  metadata: Meta;
  spec?: S;
}

export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface PortSelector {
  number?: number;
}

export interface Destination {
  host: string;
  subset?: string;
  port?: PortSelector;
}

export interface HeaderOps {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface Percent {
  value?: number;
}

export interface HTTPMatchRequest {
  name?: string;
  uri?: StringMatch;
  scheme?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  headers?: Record<string, StringMatch>;
  withoutHeaders?: Record<string, StringMatch>;
  queryParams?: Record<string, StringMatch>;
  ignoreUriCase?: boolean;
  port?: number;
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
  gateways?: string[];
}

export interface HTTPRouteDestination {
  destination: Destination;
  weight?: number;
  headers?: { request?: HeaderOps; response?: HeaderOps };
}

export interface HTTPRetry {
  attempts?: number;
  perTryTimeout?: string;
  retryOn?: string;
}

export interface HTTPFaultInjection {
  delay?: { fixedDelay?: string; percentage?: Percent; percent?: number };
  abort?: { httpStatus?: number; grpcStatus?: string | number; percentage?: Percent; percent?: number };
}

export interface VSHttpRoute {
  name?: string;
  match?: HTTPMatchRequest[];
  route?: HTTPRouteDestination[];
  redirect?: { uri?: string; authority?: string; port?: number; derivePort?: string; scheme?: string; redirectCode?: number };
  directResponse?: { status: number; body?: { string?: string; bytes?: string } };
  rewrite?: { uri?: string; authority?: string; uriRegexRewrite?: { match?: string; rewrite?: string } };
  timeout?: string;
  retries?: HTTPRetry;
  fault?: HTTPFaultInjection;
  mirror?: Destination;
  mirrorPercentage?: Percent;
  mirrorPercent?: number;
  mirrors?: { destination: Destination; percentage?: Percent }[];
  headers?: { request?: HeaderOps; response?: HeaderOps };
}

export interface VSTcpRoute {
  match?: { port?: number; sourceLabels?: Record<string, string> }[];
  route?: { destination: Destination; weight?: number }[];
}

export interface VirtualServiceSpec {
  hosts?: string[];
  gateways?: string[];
  http?: VSHttpRoute[];
  tcp?: VSTcpRoute[];
}

export interface LoadBalancerSettings {
  simple?: string;
  consistentHash?: {
    httpHeaderName?: string;
    httpCookie?: { name: string; path?: string; ttl?: string };
    useSourceIp?: boolean;
    httpQueryParameterName?: string;
    ringHash?: { minimumRingSize?: number };
    maglev?: { tableSize?: number };
    minimumRingSize?: number;
  };
  localityLbSetting?: {
    enabled?: boolean;
    distribute?: { from?: string; to?: Record<string, number> }[];
    failover?: { from?: string; to?: string }[];
    failoverPriority?: string[];
  };
  warmupDurationSecs?: string;
}

export interface ConnectionPoolSettings {
  tcp?: { maxConnections?: number; connectTimeout?: string };
  http?: {
    http1MaxPendingRequests?: number;
    http2MaxRequests?: number;
    maxRequestsPerConnection?: number;
    maxRetries?: number;
    idleTimeout?: string;
  };
}

export interface OutlierDetection {
  consecutiveErrors?: number;
  consecutive5xxErrors?: number;
  consecutiveGatewayErrors?: number;
  interval?: string;
  baseEjectionTime?: string;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
}

export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: { mode?: string; sni?: string };
  portLevelSettings?: (Omit<TrafficPolicy, 'portLevelSettings'> & { port?: PortSelector })[];
}

export interface DestinationRuleSpec {
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets?: { name: string; labels?: Record<string, string>; trafficPolicy?: TrafficPolicy }[];
}

export interface PeerAuthenticationSpec {
  selector?: { matchLabels?: Record<string, string> };
  mtls?: { mode?: string };
  portLevelMtls?: Record<string, { mode?: string }>;
}

export interface ParentRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
  sectionName?: string;
}

export interface BackendRef {
  group?: string;
  kind?: string;
  name: string;
  namespace?: string;
  port?: number;
  weight?: number;
  filters?: GatewayFilter[];
}

export interface HTTPHeaderMatch {
  type?: string;
  name: string;
  value: string;
}

export interface GatewayFilter {
  type: string;
  requestHeaderModifier?: HeaderModifier;
  responseHeaderModifier?: HeaderModifier;
  requestRedirect?: {
    scheme?: string;
    hostname?: string;
    path?: PathModifier;
    port?: number;
    statusCode?: number;
  };
  urlRewrite?: { hostname?: string; path?: PathModifier };
  requestMirror?: { backendRef: BackendRef; percent?: number; fraction?: { numerator: number; denominator?: number } };
}

export interface HeaderModifier {
  set?: { name: string; value: string }[];
  add?: { name: string; value: string }[];
  remove?: string[];
}

export interface PathModifier {
  type: string;
  replaceFullPath?: string;
  replacePrefixMatch?: string;
}

export interface HTTPRouteMatch {
  path?: { type?: string; value?: string };
  headers?: HTTPHeaderMatch[];
  queryParams?: HTTPHeaderMatch[];
  method?: string;
}

export interface HTTPRouteSpec {
  parentRefs?: ParentRef[];
  hostnames?: string[];
  rules?: {
    name?: string;
    matches?: HTTPRouteMatch[];
    filters?: GatewayFilter[];
    backendRefs?: BackendRef[];
    timeouts?: { request?: string; backendRequest?: string };
    /** Gateway API retry (GEP-1731); a rule that sets it does not get the Mesh's default retries. */
    retry?: { codes?: number[]; attempts?: number; backoff?: string };
  }[];
}

export interface GRPCRouteSpec {
  parentRefs?: ParentRef[];
  hostnames?: string[];
  rules?: {
    name?: string;
    matches?: { method?: { type?: string; service?: string; method?: string }; headers?: HTTPHeaderMatch[] }[];
    filters?: GatewayFilter[];
    backendRefs?: BackendRef[];
  }[];
}

export interface TrafficSplitSpec {
  service: string;
  backends?: { service: string; weight?: number | string }[];
}

export interface WorkloadSpec {
  service?: string;
  upstreams?: {
    service?: string;
    destinationName?: string;
    namespace?: string;
    port?: number;
    localPort?: number;
    localBindPort?: number;
  }[];
}

/** Views the validated input resources through the compiler's local shapes. */
export function asRes(resources: Resource[]): Res[] {
  return resources as unknown as Res[];
}

/** Resources of a kind, ordered as Istio breaks ties: oldest first, then namespace/name. Shared: do not mutate. */
export function ofKind<S>(resources: Res[], kind: string): readonly Res<S>[] {
  return memo(resources, `kind:${kind}`, () => (resources.filter((r) => r.kind === kind) as Res<S>[]).sort(byAge));
}

export function byAge(a: Res<unknown>, b: Res<unknown>): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  const ka = `${nsOf(a)}/${a.metadata.name}`;
  const kb = `${nsOf(b)}/${b.metadata.name}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

export function nsOf(r: Res<unknown>): string {
  return r.metadata.namespace || 'default';
}

export function refOf(r: Res<unknown>): string {
  return `${nsOf(r)}/${r.metadata.name}`;
}
