// The declarative schema of every accepted kind: drives validation and the generated configuration reference.
import { API_VERSIONS, type KindName } from './types.js';

export type FieldType =
  | 'string'
  | 'integer'
  | 'number'
  | 'boolean'
  | 'duration'
  | 'object'
  | 'array'
  | 'map'
  | 'intOrString'
  | 'quantity'
  | 'any';

/** Value checks beyond the type, applied by the schema walker. */
export type ValueCheck =
  | 'port' // 1-65535
  | 'percent' // 0-100
  | 'regex' // must compile
  | 'httpStatus' // 100-599
  | 'redirectStatus' // 3xx
  | 'weight' // non-negative integer
  | 'host' // a DNS name, optionally with a leading "*." wildcard
  | 'cidr' // IP or CIDR
  | 'ip' // IP literal
  | 'dnsLabel' // a Kubernetes name
  | 'labelKey'
  | 'labelValue';

export interface FieldSchema {
  type: FieldType;
  description?: string;
  required?: boolean;
  enum?: readonly string[];
  /** Default as documented (text, not applied by validation). */
  default?: string;
  /** object: its fields. */
  fields?: Record<string, FieldSchema>;
  /** array: the schema of each item. */
  items?: FieldSchema;
  /** map: the schema of each value; keys are checked by keyCheck. */
  values?: FieldSchema;
  keyCheck?: 'labelKey' | 'port' | 'headerName';
  check?: ValueCheck;
  min?: number;
  max?: number;
  /** Parsed but not honoured: a TRL0401 warning whenever the field is set. The note says why or what to use. */
  unsupported?: string;
  /** Honoured with limits the user should know about (documented only). */
  partial?: string;
  /** Deprecated: a TRL0403 warning naming the replacement. */
  deprecated?: string;
  /** object: exactly one of these fields must be set. */
  oneOf?: readonly string[];
  /** object: at most one of these fields may be set. */
  atMostOne?: readonly string[];
}

export interface KindSchema {
  kind: KindName;
  apiVersions: readonly string[];
  description: string;
  /** When false, a missing spec is read as `{}`. */
  specRequired: boolean;
  spec: FieldSchema;
}

// ------------------------------------------------------------------ builders (keep the tables readable)

type Extra = Omit<Partial<FieldSchema>, 'type'>;
const str = (description: string, x: Extra = {}): FieldSchema => ({ type: 'string', description, ...x });
const int = (description: string, x: Extra = {}): FieldSchema => ({ type: 'integer', description, ...x });
const num = (description: string, x: Extra = {}): FieldSchema => ({ type: 'number', description, ...x });
const bool = (description: string, x: Extra = {}): FieldSchema => ({ type: 'boolean', description, ...x });
const dur = (description: string, x: Extra = {}): FieldSchema => ({ type: 'duration', description, ...x });
const any = (description: string, x: Extra = {}): FieldSchema => ({ type: 'any', description, ...x });
const en = (values: readonly string[], description: string, x: Extra = {}): FieldSchema => ({
  type: 'string',
  enum: values,
  description,
  ...x,
});
const obj = (description: string, fields: Record<string, FieldSchema>, x: Extra = {}): FieldSchema => ({
  type: 'object',
  description,
  fields,
  ...x,
});
const arr = (items: FieldSchema, description: string, x: Extra = {}): FieldSchema => ({
  type: 'array',
  items,
  description,
  ...x,
});
const map = (values: FieldSchema, description: string, x: Extra = {}): FieldSchema => ({
  type: 'map',
  values,
  description,
  ...x,
});
const strings = (description: string, x: Extra = {}): FieldSchema => arr({ type: 'string' }, description, x);
const labels = (description: string, x: Extra = {}): FieldSchema =>
  map({ type: 'string', check: 'labelValue' }, description, { keyCheck: 'labelKey', ...x });
const port = (description: string, x: Extra = {}): FieldSchema => int(description, { check: 'port', ...x });
const percent = (description: string, x: Extra = {}): FieldSchema => num(description, { check: 'percent', ...x });

// ------------------------------------------------------------------ shared Istio pieces

const stringMatch = (description: string): FieldSchema =>
  obj(
    description,
    {
      exact: str('Matches the whole value.'),
      prefix: str('Matches a value that starts with this.'),
      regex: str('RE2-style regular expression matching the whole value.', { check: 'regex' }),
    },
    { oneOf: ['exact', 'prefix', 'regex'] },
  );

const percentObj = (description: string): FieldSchema =>
  obj(description, { value: percent('Percentage 0-100 (fractions allowed).', { required: true }) });

const workloadSelector = (description: string): FieldSchema =>
  obj(description, { matchLabels: labels('Labels a workload must carry (all of them) to be selected.') });

const policyTargetRef = (description: string): FieldSchema =>
  obj(description, {
    group: str('API group of the target; empty for core Service.', { default: '""' }),
    kind: str('Kind of the target. Trellis honours `Service`.', { required: true, partial: 'only `Service`; other kinds warn (TRL0402)' }),
    name: str('Name of the target.', { required: true }),
    namespace: str('Namespace of the target; must be the policy\'s own.', { unsupported: 'cross-namespace targets are not supported' }),
  });

const destination = (description: string): FieldSchema =>
  obj(description, {
    host: str('Service to send to: a short name, `name.namespace`, an FQDN, or a ServiceEntry host.', {
      required: true,
      check: 'host',
    }),
    subset: str('Subset defined by a DestinationRule for this host.'),
    port: obj('Port on the host; needed when the service exposes more than one.', {
      number: port('Port number.', { required: true }),
    }),
  });

const headerOps = (description: string): FieldSchema =>
  obj(description, {
    set: map({ type: 'string' }, 'Headers to set, overwriting existing values.', { keyCheck: 'headerName' }),
    add: map({ type: 'string' }, 'Headers to append.', { keyCheck: 'headerName' }),
    remove: strings('Header names to remove.'),
  });

const headers = (description: string): FieldSchema =>
  obj(description, {
    request: headerOps('Operations on the request before it is forwarded.'),
    response: headerOps('Operations on the response before it is returned.'),
  });

const l4Match = (extra: Record<string, FieldSchema> = {}): FieldSchema =>
  obj('Conditions on the connection.', {
    destinationSubnets: strings('Destination IPs or CIDRs.'),
    port: port('Port the connection is addressed to.'),
    sourceLabels: labels('Labels of the calling workload.'),
    gateways: strings('Gateways this match applies to; only `mesh` is honoured.'),
    sourceNamespace: str('Namespace of the calling workload.'),
    ...extra,
  });

const routeDestination = arr(
  obj('A weighted destination.', {
    destination: { ...destination('Where to send the connection.'), required: true },
    weight: int('Share of traffic (all weights in a route sum to 100).', { check: 'weight' }),
  }),
  'Destinations and their weights.',
);

// ------------------------------------------------------------------ VirtualService

const httpRoute = obj('One HTTP rule; rules are tried in order and the first match wins.', {
  name: str('Name of the rule: routes are named `<namespace>/<VirtualService>#<name>` in the `route` label, access logs, `trellis tap` and errors (`#<index>` when unnamed).'),
  match: arr(
    obj('All conditions in one match must hold; any match in the list selects the rule.', {
      name: str('Name of the match: appended to the rule\'s route name as `.<name>`.'),
      uri: stringMatch('Request path (without query string), after normalization.'),
      scheme: stringMatch('URI scheme: the HTTP/2 `:scheme`; an HTTP/1.1 request counts as `http` (callers reach their proxy in plain HTTP).'),
      method: stringMatch('HTTP method.'),
      authority: stringMatch('Host / :authority.'),
      headers: map(stringMatch('Header value condition.'), 'Header conditions; keys are lowercase header names.', {
        keyCheck: 'headerName',
      }),
      port: port('Port the request was addressed to.'),
      sourceLabels: labels('Labels the calling workload must carry.'),
      gateways: strings('Gateways this match applies to: a match whose list leaves out `mesh` never applies to mesh traffic.', { partial: 'only `mesh`; any other gateway warns (TRL0402)' }),
      queryParams: map(stringMatch('Query parameter condition.'), 'Query parameter conditions.'),
      ignoreUriCase: bool('Match `uri` case-insensitively.', { default: 'false' }),
      withoutHeaders: map(stringMatch('Header value condition.'), 'Headers that must NOT match.', {
        keyCheck: 'headerName',
      }),
      sourceNamespace: str('Namespace of the calling workload.'),
      statPrefix: str('Envoy stats prefix.', { unsupported: 'Trellis metrics use the `route` label instead' }),
    }),
    'Conditions selecting this rule; empty matches every request.',
  ),
  route: arr(
    obj('A weighted destination.', {
      destination: { ...destination('Where to send the request.'), required: true },
      weight: int('Share of traffic; the weights of a rule sum to 100 (one destination may omit it).', {
        check: 'weight',
      }),
      headers: headers('Header operations applied only when this destination is picked.'),
    }),
    'Destinations and their weights.',
  ),
  redirect: obj('Answer with a redirect instead of forwarding.', {
    uri: str('Replace the path.'),
    authority: str('Replace the host.'),
    port: port('Replace the port.'),
    derivePort: en(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT'], 'Port of the redirect when `port` is unset: `FROM_PROTOCOL_DEFAULT` the default port of `scheme` (of http when `scheme` is unset: mesh callers reach their proxy in plain HTTP), `FROM_REQUEST_PORT` the request\'s port.', { default: 'the request\'s port' }),
    scheme: str('Replace the scheme (http or https).'),
    redirectCode: int('Status code of the redirect.', { check: 'redirectStatus', default: '301' }),
  }),
  directResponse: obj('Answer with a fixed response instead of forwarding.', {
    status: int('Status code.', { required: true, check: 'httpStatus' }),
    body: obj('Response body.', { string: str('Body as text.'), bytes: str('Body as base64.') }, { atMostOne: ['string', 'bytes'] }),
  }),
  delegate: obj(
    'Delegate to another VirtualService.',
    { name: str('Name of the delegate.', { required: true }), namespace: str('Namespace of the delegate.') },
    { unsupported: 'delegation is not supported; write the rules in this VirtualService' },
  ),
  rewrite: obj('Rewrite the request before forwarding.', {
    uri: str('Replace the matched `uri` prefix (or the whole path for exact/regex matches).'),
    authority: str('Replace the Host / :authority header.'),
    uriRegexRewrite: obj('Regex rewrite of the path.', {
      match: str('RE2-style regular expression.', { required: true, check: 'regex' }),
      rewrite: str('Replacement; `\\1` refers to capture groups.', { required: true }),
    }),
  }, { atMostOne: ['uri', 'uriRegexRewrite'] }),
  timeout: dur('Whole-request timeout including retries.', { default: 'Mesh.spec.defaults.timeout, else none' }),
  retries: obj('Retry policy. Trellis never retries a non-idempotent request unless `retryOn` asks for it explicitly.', {
    attempts: int('Number of retries (not counting the first try).', { required: true, min: 0 }),
    perTryTimeout: dur('Timeout of each try.'),
    retryOn: str('Comma-separated conditions: 5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream, retriable-status-codes, status codes, gRPC cancelled, deadline-exceeded, resource-exhausted, unavailable; add `non-idempotent` to allow retrying POST/PATCH and other non-idempotent methods.', {
      default: 'connect-failure,refused-stream,unavailable,cancelled,503',
    }),
    retryRemoteLocalities: bool('Allow retries to go to other localities.', { default: 'false', partial: 'retries pick endpoints with the same locality priorities as first tries; `true` warns (TRL0402)' }),
    retryIgnorePreviousHosts: bool('Avoid hosts tried before.', { default: 'true', partial: 'a retry always avoids hosts tried before while another is left; `false` warns (TRL0402)' }),
  }),
  fault: obj('Inject faults (testing resilience).', {
    delay: obj('Delay before forwarding.', {
      fixedDelay: dur('How long to delay.', { required: true }),
      exponentialDelay: dur('Exponential delay.', { unsupported: 'only fixedDelay is supported' }),
      percentage: percentObj('Share of requests delayed.'),
      percent: int('Share of requests delayed (integer).', { check: 'percent', deprecated: 'use percentage.value' }),
    }),
    abort: obj('Answer with an error instead of forwarding.', {
      httpStatus: int('HTTP status to return.', { check: 'httpStatus' }),
      grpcStatus: str('gRPC status name to return, e.g. UNAVAILABLE.'),
      http2Error: str('HTTP/2 error.', { unsupported: 'use httpStatus or grpcStatus' }),
      percentage: percentObj('Share of requests aborted.'),
    }, { oneOf: ['httpStatus', 'grpcStatus', 'http2Error'] }),
  }, { oneOf: ['delay', 'abort'] }),
  mirror: destination('Send a copy of each request here; the reply is ignored.'),
  mirrorPercent: int('Share of requests mirrored (integer).', { check: 'percent', deprecated: 'use mirrorPercentage.value' }),
  mirrorPercentage: percentObj('Share of requests mirrored.'),
  mirrors: arr(
    obj('A mirror target.', {
      destination: { ...destination('Send a copy of each request here.'), required: true },
      percentage: percentObj('Share of requests mirrored.'),
    }),
    'Several mirror targets.',
  ),
  corsPolicy: obj(
    'Cross-origin resource sharing.',
    {
      allowOrigins: arr(stringMatch('Allowed origin.'), 'Allowed origins.'),
      allowOrigin: strings('Allowed origins (old form).'),
      allowMethods: strings('Allowed methods.'),
      allowHeaders: strings('Allowed request headers.'),
      exposeHeaders: strings('Headers exposed to the browser.'),
      maxAge: dur('How long a preflight result may be cached.'),
      allowCredentials: bool('Allow credentials.'),
      unmatchedPreflights: str('What to do with preflights that match no origin.'),
    },
    { unsupported: 'CORS is not implemented in the mesh; handle it in the application' },
  ),
  headers: headers('Header operations for every request this rule forwards.'),
}, { atMostOne: ['route', 'redirect', 'directResponse', 'delegate'] });

const virtualService = obj('Routing rules for one or more hosts.', {
  hosts: strings('Hosts these rules apply to: short service names, FQDNs, or ServiceEntry hosts.', {
    required: true,
    items: { type: 'string', check: 'host' },
  }),
  gateways: strings('Where the rules apply. Trellis has no gateways: only `mesh` (the default) is honoured.', {
    default: '[mesh]',
    partial: 'only `mesh`; any other gateway warns (TRL0402)',
  }),
  http: arr(httpRoute, 'HTTP rules, tried in order.'),
  tls: arr(
    obj('A TLS passthrough rule keyed on SNI.', {
      match: arr(l4Match({ sniHosts: strings('SNI names.', { required: true }) }), 'Conditions.', { required: true }),
      route: routeDestination,
    }),
    'TLS rules.',
    { unsupported: 'SNI routing is not implemented; TLS traffic is forwarded as TCP to the host' },
  ),
  tcp: arr(obj('A TCP rule.', { match: arr(l4Match(), 'Conditions.'), route: routeDestination }), 'TCP rules.', {
    unsupported: 'TCP routing rules are not implemented: TCP connections (Workload `upstreams`) go to the addressed service\'s endpoints',
  }),
  exportTo: strings('Namespaces that see these rules.', { unsupported: 'visibility is not enforced: rules apply mesh-wide' }),
});

// ------------------------------------------------------------------ DestinationRule

const RING_SIZE = 'the proxy\'s hash ring has a fixed 256 points per endpoint';
const LOCAL_ORIGIN = 'local-origin failures (connect failure, reset) count as 5xx errors towards consecutive5xxErrors';
const NO_TLS_ORIGINATION = 'TLS origination is not implemented: Trellis uses mesh mTLS to endpoints with a Trellis proxy and plaintext to others; let the app speak TLS itself';

const loadBalancer = obj('Load-balancing algorithm.', {
  simple: en(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'], 'A simple algorithm. LEAST_CONN is LEAST_REQUEST; UNSPECIFIED is ROUND_ROBIN.', {
    default: 'ROUND_ROBIN (Istio: LEAST_REQUEST)',
    partial: 'PASSTHROUGH warns (TRL0402) and balances ROUND_ROBIN',
  }),
  consistentHash: obj('Session affinity by hashing a request property.', {
    httpHeaderName: str('Hash this request header.'),
    httpCookie: obj('Hash this cookie; generated with the given ttl when absent.', {
      name: str('Cookie name.', { required: true }),
      path: str('Cookie path.', { unsupported: 'the proxy hashes on the cookie when the client sends it but never generates it' }),
      ttl: dur('Cookie lifetime.', { unsupported: 'the proxy hashes on the cookie when the client sends it but never generates it' }),
    }),
    useSourceIp: bool('Hash the caller\'s IP.'),
    httpQueryParameterName: str('Hash this query parameter.'),
    ringHash: obj('Ring hash.', { minimumRingSize: int('Minimum ring size.', { min: 1, unsupported: RING_SIZE }) }),
    maglev: obj('Maglev hash.', { tableSize: int('Table size.', { min: 1, unsupported: RING_SIZE }) }, { partial: 'hashed like ringHash' }),
    minimumRingSize: int('Minimum ring size.', { deprecated: 'use ringHash.minimumRingSize', unsupported: RING_SIZE }),
  }, { oneOf: ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] }),
  localityLbSetting: obj('Locality-aware load balancing.', {
    distribute: arr(
      obj('Traffic distribution from one locality.', {
        from: str('Origin locality `region/zone/subZone` (`*` wildcards).', { required: true }),
        to: map(int('Weight.', { check: 'weight' }), 'Destination locality -> weight (sum 100).', { required: true }),
      }),
      'Explicit distribution.',
    ),
    failover: arr(
      obj('Region failover.', { from: str('Origin region.', { required: true }), to: str('Failover region.', { required: true }) }),
      'Failover regions: callers in `from` use endpoints in `to` when their own region has none left, before any other region (needs outlierDetection, as proximity failover does).',
    ),
    failoverPriority: strings('Labels ordering failover priority.', { unsupported: 'endpoint labels do not set priorities; use failover (regions) or the default proximity order' }),
    enabled: bool('Turn locality load balancing on or off.', { default: 'true when outlierDetection is set' }),
  }),
  warmupDurationSecs: dur('Slow start window for new endpoints.', { unsupported: 'slow start is not implemented' }),
}, { atMostOne: ['simple', 'consistentHash'] });

const connectionPool = obj('Connection and request limits (circuit breaking).', {
  tcp: obj('TCP limits.', {
    maxConnections: int('Maximum connections to the destination.', { min: 1, default: '1024 (Istio: 4294967295)' }),
    connectTimeout: dur('TCP connect timeout.', { default: 'Mesh.spec.defaults.connectTimeout, else 10s' }),
    tcpKeepalive: obj('TCP keepalive.', {
      probes: int('Unanswered probes before the connection is dead.', { min: 0 }),
      time: dur('Idle time before probes start.'),
      interval: dur('Time between probes.'),
    }, { unsupported: 'upstream keepalive probes are not configurable' }),
    maxConnectionDuration: dur('Maximum lifetime of a connection.', { unsupported: 'connections are not closed by age; use http.maxRequestsPerConnection' }),
    idleTimeout: dur('Close idle TCP connections after this.', { unsupported: 'TCP connections have no idle timeout; for HTTP use http.idleTimeout' }),
  }),
  http: obj('HTTP limits.', {
    http1MaxPendingRequests: int('Maximum requests waiting for a connection.', { min: 0, default: '1024 (Istio: 4294967295)' }),
    http2MaxRequests: int('Maximum concurrent requests.', { min: 0, default: '1024 (Istio: 4294967295)' }),
    maxRequestsPerConnection: int('Requests per connection before it is closed (0 = unlimited).', { min: 0 }),
    maxRetries: int('Maximum concurrent retries.', { min: 0, default: '1024 (Istio: 4294967295)' }),
    idleTimeout: dur('Close idle upstream connections after this.', { default: 'Mesh.spec.defaults.idleTimeout, else 4s', partial: 'HTTP/1.1 upstream connections only; HTTP/2 and gRPC sessions stay open while the peer keeps them' }),
    h2UpgradePolicy: en(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'], 'Upgrade HTTP/1.1 to HTTP/2 between proxies.', { default: 'DEFAULT', partial: 'only DEFAULT: the proxies choose the protocol between themselves; UPGRADE and DO_NOT_UPGRADE warn (TRL0402)' }),
    useClientProtocol: bool('Use the caller\'s protocol upstream.', { default: 'false', partial: 'only false: the proxies choose the protocol between themselves; true warns (TRL0402)' }),
    maxConcurrentStreams: int('Maximum concurrent streams per HTTP/2 connection.', { min: 1, unsupported: 'use http2MaxRequests to bound concurrent requests' }),
  }),
});

const outlierDetection = obj('Eject endpoints that keep failing.', {
  splitExternalLocalOriginErrors: bool('Count local-origin failures (connect, reset) separately.', { default: 'false', partial: `only false: ${LOCAL_ORIGIN}; true warns (TRL0402)` }),
  consecutiveLocalOriginFailures: int('Local-origin failures before ejection.', { min: 0, unsupported: LOCAL_ORIGIN }),
  consecutiveGatewayErrors: int('502/503/504 responses in a row before ejection.', { min: 0 }),
  consecutive5xxErrors: int('5xx responses in a row before ejection.', { min: 0, default: 'none: 5xx responses eject nobody (Istio: 5)' }),
  consecutiveErrors: int('Gateway errors in a row before ejection.', { min: 0, deprecated: 'use consecutive5xxErrors or consecutiveGatewayErrors' }),
  interval: dur('Time between ejection sweeps.', { default: '10s' }),
  baseEjectionTime: dur('Minimum ejection time, multiplied by the number of ejections.', { default: '30s' }),
  maxEjectionPercent: int('Maximum share of endpoints ejected.', { check: 'percent', default: '10' }),
  minHealthPercent: int('Below this share of healthy endpoints, ejection is off.', { check: 'percent', default: '0', partial: 'only 0 (as Istio sets for Kubernetes services): ejection stays on, bounded by maxEjectionPercent, and with every endpoint ejected the proxy picks among all of them; a larger value warns (TRL0402)' }),
});

const clientTls = obj('TLS towards the destination.', {
  mode: en(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'], 'TLS mode. ISTIO_MUTUAL means the mesh\'s own mTLS, which Trellis always uses to endpoints that run a Trellis proxy (plaintext to all others).', {
    required: true,
    partial: 'only ISTIO_MUTUAL; DISABLE, SIMPLE and MUTUAL warn (TRL0402)',
  }),
  clientCertificate: str('Path of the client certificate (MUTUAL).', { unsupported: NO_TLS_ORIGINATION }),
  privateKey: str('Path of the client private key (MUTUAL).', { unsupported: NO_TLS_ORIGINATION }),
  caCertificates: str('Path of CA certificates to verify the server.', { unsupported: NO_TLS_ORIGINATION }),
  credentialName: str('Kubernetes secret holding the credentials.', { unsupported: 'Kubernetes secrets are not read, and TLS origination is not implemented' }),
  subjectAltNames: strings('Accepted server SANs.', { unsupported: NO_TLS_ORIGINATION }),
  sni: str('SNI to send.', { unsupported: NO_TLS_ORIGINATION }),
  insecureSkipVerify: bool('Do not verify the server certificate.', { default: 'false', unsupported: NO_TLS_ORIGINATION }),
});

const portTrafficPolicy = obj('Policy for one port.', {
  port: obj('The port.', { number: port('Port number.', { required: true }) }, { required: true }),
  loadBalancer,
  connectionPool,
  outlierDetection,
  tls: clientTls,
});

const trafficPolicy = (description: string): FieldSchema =>
  obj(description, {
    loadBalancer,
    connectionPool,
    outlierDetection,
    tls: clientTls,
    portLevelSettings: arr(portTrafficPolicy, 'Per-port overrides.'),
    tunnel: obj('Tunnel through a proxy.', {
      protocol: str('CONNECT or POST.'),
      targetHost: str('Host to tunnel to.', { required: true }),
      targetPort: port('Port to tunnel to.', { required: true }),
    }, { unsupported: 'tunnelling is not implemented' }),
    proxyProtocol: obj('Send PROXY protocol.', { version: str('V1 or V2.') }, { unsupported: 'PROXY protocol is not implemented' }),
  });

const destinationRule = obj('What happens after routing: subsets, load balancing, circuit breaking, TLS.', {
  host: str('The service this applies to (short name, FQDN, or ServiceEntry host).', { required: true, check: 'host' }),
  trafficPolicy: trafficPolicy('Policy for all subsets.'),
  subsets: arr(
    obj('A named subset of the service\'s endpoints.', {
      name: str('Subset name, referenced by routes.', { required: true, check: 'dnsLabel' }),
      labels: labels('Labels an endpoint must carry to be in the subset.'),
      trafficPolicy: trafficPolicy('Overrides for this subset.'),
    }),
    'Named subsets.',
  ),
  exportTo: strings('Namespaces that see this rule.', { unsupported: 'visibility is not enforced: the rule applies mesh-wide' }),
  workloadSelector: obj('Apply only to these calling workloads.', { matchLabels: labels('Labels a calling workload must carry.') }, {
    unsupported: 'the rule applies to every caller; put caller-specific policy in a DestinationRule in the callers\' namespace',
  }),
});

// ------------------------------------------------------------------ ServiceEntry / WorkloadEntry

const workloadEntryFields = {
  address: str('IP address of the endpoint.', { required: true, partial: 'IP addresses only: a DNS name warns (TRL0402) and the endpoint is skipped' }),
  ports: map(port('Port number.'), 'Port name -> port number on this endpoint.'),
  labels: labels('Labels of the endpoint.'),
  network: str('Network of the endpoint.', { unsupported: 'multi-network is not implemented' }),
  locality: str('Locality `region/zone/subZone`.'),
  weight: int('Load-balancing weight.', { min: 0, unsupported: 'endpoints of a locality are balanced with equal weight' }),
  serviceAccount: str('Service account the endpoint runs as (its identity).'),
};

const serviceEntry = obj('A service not declared by a Service or Workload, e.g. an external API.', {
  hosts: strings('Host names of the service.', { required: true, items: { type: 'string', check: 'host' } }),
  addresses: strings('Virtual IPs or CIDRs of the service.', { items: { type: 'string', check: 'cidr' }, unsupported: 'services are addressed by host name (HTTP_PROXY or Workload upstreams), never by IP' }),
  ports: arr(
    obj('A port of the service.', {
      number: port('Port number.', { required: true }),
      protocol: en(['HTTP', 'HTTPS', 'GRPC', 'HTTP2', 'MONGO', 'TCP', 'TLS', 'UDP'], 'Protocol. MONGO is proxied as TCP.', { default: 'TCP', partial: 'UDP warns (TRL0402): Trellis proxies TCP only' }),
      name: str('Port name.', { required: true }),
      targetPort: port('Port on the endpoints.'),
    }),
    'Ports of the service.',
  ),
  location: en(['MESH_EXTERNAL', 'MESH_INTERNAL'], 'Whether the endpoints are in the mesh (mTLS) or outside. Trellis decides per endpoint: mTLS to endpoints that run a Trellis proxy, plaintext to the others.', {
    default: 'MESH_EXTERNAL',
    partial: 'MESH_INTERNAL with static `endpoints` warns (TRL0402): those endpoints have no Trellis proxy and are reached in plaintext',
  }),
  resolution: en(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN'], 'How endpoints are found. Trellis always uses the listed `endpoints` (IP addresses) or the Workloads / WorkloadEntries `workloadSelector` picks.', {
    default: 'NONE',
    partial: 'as STATIC; DNS and DNS_ROUND_ROBIN warn (TRL0402): names are not resolved; NONE without endpoints or workloadSelector warns: there is no original destination to pass through to',
  }),
  endpoints: arr(obj('An endpoint.', workloadEntryFields), 'Static endpoints.'),
  // ServiceEntry's selector is spelled `labels`, unlike the `matchLabels` of policies.
  workloadSelector: obj('Select Workloads / WorkloadEntries in this namespace as endpoints.', {
    labels: labels('Labels an endpoint must carry.', { required: true }),
  }),
  exportTo: strings('Namespaces that see this entry.', { unsupported: 'visibility is not enforced' }),
  subjectAltNames: strings('Accepted SANs of the endpoints.', { unsupported: 'use DestinationRule tls.subjectAltNames' }),
}, { atMostOne: ['endpoints', 'workloadSelector'] });

// ------------------------------------------------------------------ security

const mtlsMode = en(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'], 'mTLS mode. UNSET inherits from the parent scope.', {
  default: 'UNSET (mesh default PERMISSIVE)',
});

const peerAuthentication = obj('Whether workloads accept plaintext, mTLS, or both.', {
  selector: workloadSelector('Workloads it applies to; absent: the whole namespace (the whole mesh in the root namespace).'),
  mtls: obj('mTLS for all ports.', { mode: mtlsMode }),
  portLevelMtls: map(obj('mTLS for one port.', { mode: mtlsMode }), 'Port -> mTLS (needs a selector).', { keyCheck: 'port' }),
});

const authzSource = obj('Who is calling.', {
  principals: strings('Peer identities `<trust domain>/ns/<ns>/sa/<sa>`; `*` prefix/suffix wildcards.'),
  notPrincipals: strings('Negated principals.'),
  requestPrincipals: strings('JWT `iss/sub`.'),
  notRequestPrincipals: strings('Negated request principals.'),
  namespaces: strings('Namespaces of the peer.'),
  notNamespaces: strings('Negated namespaces.'),
  ipBlocks: strings('Peer IPs or CIDRs.', { items: { type: 'string', check: 'cidr' } }),
  notIpBlocks: strings('Negated IP blocks.', { items: { type: 'string', check: 'cidr' } }),
  remoteIpBlocks: strings('Original client IPs (X-Forwarded-For).', { items: { type: 'string', check: 'cidr' } }),
  notRemoteIpBlocks: strings('Negated remote IP blocks.', { items: { type: 'string', check: 'cidr' } }),
});

const authzOperation = obj('What is being asked.', {
  hosts: strings('Host header values.'),
  notHosts: strings('Negated hosts.'),
  ports: strings('Destination ports (as strings).'),
  notPorts: strings('Negated ports.'),
  methods: strings('HTTP methods (gRPC: POST).'),
  notMethods: strings('Negated methods.'),
  paths: strings('Paths after normalization; `*` prefix/suffix wildcards, `{*}`/`{**}` templates.'),
  notPaths: strings('Negated paths.'),
});

const authorizationPolicy = obj('Who may call what. DENY is checked before ALLOW; with any ALLOW policy, unmatched requests are denied.', {
  selector: workloadSelector('Workloads it applies to; absent: the whole namespace (mesh in the root namespace).'),
  targetRef: policyTargetRef('The Service it applies to (instead of a selector).'),
  targetRefs: arr(policyTargetRef('A target.'), 'Services it applies to.'),
  rules: arr(
    obj('A rule matches when one `from`, one `to` and every `when` match.', {
      from: arr(obj('A source.', { source: authzSource }), 'Sources (any).'),
      to: arr(obj('An operation.', { operation: authzOperation }), 'Operations (any).'),
      when: arr(
        obj('A condition on a request attribute.', {
          key: str('Attribute, e.g. request.headers[x-user], source.ip, request.auth.claims[iss].', { required: true }),
          values: strings('Any of these values.'),
          notValues: strings('None of these values.'),
        }),
        'Extra conditions (all).',
      ),
    }),
    'Rules; no rules with ALLOW allows nothing, with DENY denies nothing.',
  ),
  action: en(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'], 'What a match does.', {
    default: 'ALLOW',
    partial: 'CUSTOM warns (TRL0402) and the policy is ignored',
  }),
  provider: obj('External authorizer for CUSTOM.', { name: str('Provider name.', { required: true }) }, {
    unsupported: 'external authorizers (CUSTOM) are not implemented',
  }),
}, { atMostOne: ['selector', 'targetRef', 'targetRefs'] });

const requestAuthentication = obj('Validates JWTs on requests; a request with an invalid token is rejected, one without a token passes unauthenticated.', {
  selector: workloadSelector('Workloads it applies to; absent: the whole namespace.'),
  targetRef: policyTargetRef('The Service it applies to.'),
  targetRefs: arr(policyTargetRef('A target.'), 'Services it applies to.'),
  jwtRules: arr(
    obj('One accepted issuer.', {
      issuer: str('Issuer (`iss` claim) this rule accepts.'),
      audiences: strings('Accepted `aud` values; empty accepts the service\'s own names.'),
      jwksUri: str('URL of the issuer\'s JWKS.'),
      jwks: str('Inline JWKS (JSON).'),
      fromHeaders: arr(
        obj('A header carrying the token.', { name: str('Header name.', { required: true }), prefix: str('Prefix before the token, e.g. "Bearer ".') }),
        'Where to find the token.',
        { default: 'Authorization: Bearer' },
      ),
      fromParams: strings('Query parameters carrying the token.'),
      fromCookies: strings('Cookies carrying the token.'),
      outputPayloadToHeader: str('Forward the payload (base64url JSON) in this header.'),
      forwardOriginalToken: bool('Keep the token in the forwarded request.', { default: 'false' }),
      outputClaimToHeaders: arr(
        obj('Copy a claim into a header.', { header: str('Header name.', { required: true }), claim: str('Claim name.', { required: true }) }),
        'Claims copied to headers.',
      ),
      timeout: dur('Timeout fetching the JWKS.', { default: '5s' }),
    }, { atMostOne: ['jwksUri', 'jwks'] }),
    'Accepted issuers.',
  ),
}, { atMostOne: ['selector', 'targetRef', 'targetRefs'] });

// ------------------------------------------------------------------ Gateway API

const HOSTNAMES = 'a route attached to a Service applies to every request for that Service; hostnames are not matched';

const parentRefs = arr(
  obj('What the route attaches to. For mesh routing: a Service (`kind: Service`, `group: ""`).', {
    group: str('API group; `""` for Service.', { default: 'gateway.networking.k8s.io' }),
    kind: str('Kind; `Service` for mesh routing.', { default: 'Gateway', partial: 'only `Service`; other kinds (and the default Gateway) warn (TRL0402)' }),
    namespace: str('Namespace of the parent.', { default: 'the route\'s namespace' }),
    name: str('Name of the parent.', { required: true }),
    sectionName: str('Name of the parent Service\'s port the route applies to (as `port`, by name).'),
    port: port('Port of the parent Service the route applies to.'),
  }),
  'Parents; without a Service parent the route applies to nothing in the mesh.',
);

const headerMatch = arr(
  obj('A header condition.', {
    type: en(['Exact', 'RegularExpression'], 'How to compare.', { default: 'Exact' }),
    name: str('Header name.', { required: true }),
    value: str('Value.', { required: true }),
  }),
  'Header conditions (all).',
);

const headerFilter = (description: string): FieldSchema =>
  obj(description, {
    set: arr(obj('A header.', { name: str('Name.', { required: true }), value: str('Value.', { required: true }) }), 'Headers to set.'),
    add: arr(obj('A header.', { name: str('Name.', { required: true }), value: str('Value.', { required: true }) }), 'Headers to add.'),
    remove: strings('Header names to remove.'),
  });

const pathModifier = obj('Path change.', {
  type: en(['ReplaceFullPath', 'ReplacePrefixMatch'], 'Kind of change.', { required: true }),
  replaceFullPath: str('New path.'),
  replacePrefixMatch: str('Replacement for the matched prefix.'),
});

const backendObjectRef = {
  group: str('API group; `""` for Service.', { default: '""' }),
  kind: str('Kind; Service.', { default: 'Service', partial: 'only `Service`; other kinds warn (TRL0402)' }),
  name: str('Service name.', { required: true }),
  namespace: str('Namespace.', { default: 'the route\'s namespace' }),
  port: port('Service port.'),
};

const mirrorFilter = obj('Copy requests to another backend.', {
  backendRef: obj('The mirror backend.', backendObjectRef, { required: true }),
  percent: int('Share of requests mirrored.', { check: 'percent' }),
  fraction: obj('Share as a fraction.', { numerator: int('Numerator.', { required: true, min: 0 }), denominator: int('Denominator.', { min: 1, default: '100' }) }),
}, { atMostOne: ['percent', 'fraction'] });

const filterFields = (grpc: boolean): Record<string, FieldSchema> => ({
  type: en(
    grpc
      ? ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'ExtensionRef']
      : ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite', 'RequestMirror', 'ExtensionRef'],
    'Filter type; the matching field below must be set.',
    { required: true },
  ),
  requestHeaderModifier: headerFilter('Request header changes.'),
  responseHeaderModifier: headerFilter('Response header changes.'),
  ...(grpc
    ? {}
    : {
        requestRedirect: obj('Answer with a redirect.', {
          scheme: en(['http', 'https'], 'Scheme.'),
          hostname: str('Host.'),
          path: pathModifier,
          port: port('Port.'),
          statusCode: int('Status.', { check: 'redirectStatus', default: '302' }),
        }),
        urlRewrite: obj('Rewrite before forwarding.', { hostname: str('New Host header.'), path: pathModifier }),
      }),
  requestMirror: mirrorFilter,
  extensionRef: obj('Implementation-specific filter.', {
    group: str('Group.', { required: true }),
    kind: str('Kind.', { required: true }),
    name: str('Name.', { required: true }),
  }, { unsupported: 'extension filters are not implemented' }),
});

const httpFilters = arr(obj('A filter.', filterFields(false)), 'Filters applied in order.');
const grpcFilters = arr(obj('A filter.', filterFields(true)), 'Filters applied in order.');

const backendRefs = (filters: FieldSchema): FieldSchema =>
  arr(
    obj('A backend.', {
      ...backendObjectRef,
      weight: int('Relative weight (not a percentage); 0 sends nothing.', { check: 'weight', default: '1' }),
      filters: { ...filters, description: 'Filters applied when this backend is picked.', partial: 'header modifiers only; other filter types warn (TRL0402)' },
    }),
    'Backends; traffic is split by relative weight.',
  );

const httpRouteSpec = obj('Gateway API HTTP routing; in the mesh it attaches to a Service.', {
  parentRefs,
  hostnames: strings('Host names matched against Host.', { items: { type: 'string', check: 'host' }, unsupported: HOSTNAMES }),
  rules: arr(
    obj('A rule.', {
      name: str('Rule name: the rule\'s routes are named `<namespace>/<route>#<name>` (`#<index>` when unnamed).'),
      matches: arr(
        obj('A match (all conditions).', {
          path: obj('Path condition.', {
            type: en(['Exact', 'PathPrefix', 'RegularExpression'], 'How to compare.', { default: 'PathPrefix' }),
            value: str('Path.', { default: '/' }),
          }),
          headers: headerMatch,
          queryParams: arr(
            obj('A query parameter condition.', {
              type: en(['Exact', 'RegularExpression'], 'How to compare.', { default: 'Exact' }),
              name: str('Parameter name.', { required: true }),
              value: str('Value.', { required: true }),
            }),
            'Query conditions (all).',
          ),
          method: en(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'], 'HTTP method.'),
        }),
        'Matches (any); empty matches every request.',
      ),
      filters: httpFilters,
      backendRefs: backendRefs(httpFilters),
      timeouts: obj('Timeouts.', {
        request: dur('Whole-request timeout.'),
        backendRequest: dur('Timeout of each try to a backend.'),
      }),
      retry: obj('Retries (Gateway API, GEP-1731). Connect failures, refused streams and gRPC unavailable/cancelled are always retried; `timeouts.backendRequest` then bounds each try. Non-idempotent requests are not retried. Replaces the Mesh default retries for this rule.', {
        codes: arr(int('Status code.', { check: 'httpStatus' }), 'Status codes to retry.'),
        attempts: int('Retries (0 = none).', { min: 0, default: '2' }),
        backoff: dur('Base interval between tries (grows with jitter up to 10x).', { default: '25ms' }),
      }),
      sessionPersistence: any('Session persistence.', { unsupported: 'use a DestinationRule consistentHash' }),
    }),
    'Rules.',
  ),
});

const grpcRouteSpec = obj('Gateway API gRPC routing; in the mesh it attaches to a Service.', {
  parentRefs,
  hostnames: strings('Host names matched against :authority.', { items: { type: 'string', check: 'host' }, unsupported: HOSTNAMES }),
  rules: arr(
    obj('A rule.', {
      name: str('Rule name: the rule\'s routes are named `<namespace>/<route>#<name>` (`#<index>` when unnamed).'),
      matches: arr(
        obj('A match (all conditions).', {
          method: obj('gRPC method condition.', {
            type: en(['Exact', 'RegularExpression'], 'How to compare.', { default: 'Exact' }),
            service: str('Fully qualified service, e.g. `helloworld.Greeter`.'),
            method: str('Method name.'),
          }),
          headers: headerMatch,
        }),
        'Matches (any).',
      ),
      filters: grpcFilters,
      backendRefs: backendRefs(grpcFilters),
      sessionPersistence: any('Session persistence.', { unsupported: 'use a DestinationRule consistentHash' }),
    }),
    'Rules.',
  ),
});

// ------------------------------------------------------------------ SMI, core, Trellis

const trafficSplit = obj('SMI traffic split: requests for `service` are shared among backends by weight.', {
  service: str('The root service callers address.', { required: true }),
  backends: arr(
    obj('A backend service.', {
      service: str('Backend service name.', { required: true }),
      weight: { type: 'quantity', description: 'Relative weight: a number or a quantity such as `900m`.', required: true },
    }),
    'Backends.',
    { required: true },
  ),
  matches: arr(
    obj('A route reference.', { kind: str('HTTPRouteGroup or TCPRoute.', { required: true }), name: str('Name.', { required: true }), apiGroup: str('API group.') }),
    'Restrict the split to these routes.',
    { unsupported: 'SMI route groups are not implemented: the split applies to all traffic' },
  ),
});

const serviceSpec = obj('A Kubernetes Service: a name, ports, and the workloads (by labels) behind it.', {
  selector: labels('Labels choosing the workloads behind the service.'),
  ports: arr(
    obj('A port.', {
      name: str('Port name; its prefix (http-, grpc-, tcp-) names the protocol when appProtocol is absent.'),
      port: port('Port callers use.', { required: true }),
      targetPort: { type: 'intOrString', description: 'Port (or port name) on the workloads.', default: 'port' },
      protocol: en(['TCP', 'UDP', 'SCTP'], 'Transport.', { default: 'TCP', partial: 'TCP only; UDP and SCTP warn (TRL0402)' }),
      appProtocol: str('Application protocol: http, http2, grpc, tcp, tls, https.'),
      nodePort: port('Node port.', { unsupported: 'Trellis has no node ports' }),
    }),
    'Ports.',
  ),
  type: en(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'], 'Service type; all are treated as ClusterIP.', { default: 'ClusterIP' }),
  clusterIP: str('Virtual IP.', { unsupported: 'services are addressed by name' }),
  clusterIPs: strings('Virtual IPs.', { unsupported: 'services are addressed by name' }),
  externalName: str('DNS alias.', { unsupported: 'use a ServiceEntry' }),
  sessionAffinity: str('Session affinity.', { unsupported: 'use a DestinationRule consistentHash' }),
  ipFamilies: strings('IP families.', { partial: 'no effect: endpoints are reached at whatever address they have' }),
  ipFamilyPolicy: str('IP family policy.', { partial: 'no effect: endpoints are reached at whatever address they have' }),
  internalTrafficPolicy: str('Internal traffic policy.', { partial: '`Cluster` only; `Local` warns (TRL0402): Trellis has no nodes to keep traffic on' }),
  // Fields `kubectl get -o yaml` prints for other Service types: accepted so such output loads.
  externalTrafficPolicy: any('External traffic policy.', { unsupported: 'Trellis has no node or load-balancer entry points' }),
  sessionAffinityConfig: any('Session affinity settings.', { unsupported: 'use a DestinationRule consistentHash' }),
  publishNotReadyAddresses: any('Publish endpoints before they are ready.', { unsupported: 'readiness comes from the proxy' }),
  loadBalancerIP: any('Load balancer IP.', { unsupported: 'Trellis has no load-balancer Services' }),
  loadBalancerSourceRanges: any('Load balancer source ranges.', { unsupported: 'use an AuthorizationPolicy ipBlocks rule' }),
  loadBalancerClass: any('Load balancer class.', { unsupported: 'Trellis has no load-balancer Services' }),
  allocateLoadBalancerNodePorts: any('Allocate node ports.', { unsupported: 'Trellis has no node ports' }),
  healthCheckNodePort: any('Health check node port.', { unsupported: 'Trellis has no node ports' }),
  externalIPs: any('External IPs.', { unsupported: 'services are addressed by name' }),
  trafficDistribution: any('Traffic distribution preference.', { unsupported: 'use a DestinationRule localityLbSetting' }),
});

const rateLimit = (description: string): FieldSchema =>
  obj(description, {
    requests: int('Requests allowed per window.', { required: true, min: 1 }),
    per: dur('Window length, e.g. 1s or 1m.', { required: true }),
  });

const meshSpec = obj('Mesh-wide settings (one per mesh).', {
  trustDomain: str('SPIFFE trust domain of identities.', { default: 'cluster.local' }),
  rootNamespace: str('Namespace whose policies apply mesh-wide (istio-system is always one too).', {
    default: 'trellis-system',
    check: 'dnsLabel',
  }),
  certificateTTL: dur('Lifetime of workload certificates; renewed at half-life.', { default: '24h' }),
  defaults: obj('Defaults for the routes and destinations that do not set their own (a route\'s or DestinationRule\'s own setting always wins).', {
    timeout: dur('Request timeout of routes that set none (VirtualService `http[].timeout`, HTTPRoute/GRPCRoute `timeouts.request`; TrafficSplit and unconfigured services always use it). A timed-out request gets 504 `upstream_timeout`; `0s` is no timeout.', { default: 'none' }),
    connectTimeout: dur('Timeout for connecting to a destination\'s endpoints (outbound clusters), unless its DestinationRule sets `connectionPool.tcp.connectTimeout`; a connection not made in time fails with 503 `upstream_connect_failure`.', { default: '10s' }),
    idleTimeout: dur('How long a pooled HTTP/1.1 connection to a destination may sit idle before the proxy closes it, unless its DestinationRule sets `connectionPool.http.idleTimeout`.', {
      default: '4s (the proxy closes idle connections before apps\' usual 5s keep-alive timeout)',
      partial: 'HTTP/1.1 upstream connections only; HTTP/2 and gRPC sessions stay open while the peer keeps them',
    }),
    retryBudget: obj('Limits retries to a share of live traffic, so retries cannot multiply an outage.', {
      retryRatio: percent('Retries allowed, as a percentage of requests.', { default: '20' }),
      minRetriesPerSecond: int('Retries always allowed per second.', { min: 0, default: '10' }),
      ttl: dur('Window over which requests are counted.', { default: '10s' }),
    }),
    retries: obj('Retry policy of routes that set no `retries` (a route\'s own block, even `attempts: 0`, wins). Idempotent requests only: `non-idempotent` in `retryOn` is not honoured here (TRL0402); a POST is retried only when it provably never reached the app (connect failure, refused stream). gRPC calls follow `retryOn`, as with route retries.', {
      attempts: int('Retries after the first try; 0 turns default retries off.', { min: 0, default: '0' }),
      perTryTimeout: dur('Timeout of each try.', { default: 'none (the request timeout bounds every try)' }),
      retryOn: str('Conditions, as VirtualService `retryOn`.', { default: 'connect-failure,refused-stream,unavailable,cancelled,503' }),
    }),
  }),
  accessLog: obj('Access log of every proxy: one line per request (identities, route, cluster, endpoint, status, error code and deciding rule, bytes, timings). Without this block proxies log nothing, except under `trellis up` (JSON to each proxy\'s stdout); with it, this block decides. A proxy\'s `--access-log` flag overrides it.', {
    enabled: bool('Log every request; `false` turns logging off (also `trellis up`\'s default log).', { default: 'true (when the block is present)' }),
    format: en(['text', 'json'], '`json`: one JSON object per line; `text`: `<time> <direction> "<method> <path> <protocol>" <status> <error code or -> key=value ...` with the same fields.', { default: 'json' }),
    path: str('File each proxy appends to (on the proxy\'s machine); `-` or unset: the proxy\'s stdout.', { default: 'stdout' }),
  }),
  tracing: obj('Distributed tracing.', {
    endpoint: str('OTLP/HTTP endpoint receiving spans.'),
    sampling: percent('Percentage of traces sampled.', { default: '1' }),
  }),
  pathNormalization: en(['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'], 'How request paths are normalized (once, before routing and authorization; the app receives the normalized path). `NONE`: as received. `BASE`: RFC 3986 (`.`/`..` segments resolved, unreserved `%XX` decoded, `\\` to `/`). `MERGE_SLASHES`: BASE and `//` merged. `DECODE_AND_MERGE_SLASHES`: MERGE_SLASHES and `%2F`/`%5C` decoded to `/`, so `/a%2Fb` routes as `/a/b`. In every other mode a path holding `%2F` or `%5C` is refused with 400 `bad_request` (Istio keeps them). Trellis defaults to MERGE_SLASHES (Istio: BASE) so `//admin` cannot slip past a rule on `/admin`.', {
    default: 'MERGE_SLASHES',
  }),
});

const workloadSpec = obj('A workload instance run or fronted by a local Trellis proxy.', {
  service: str('Service this workload is a member of (created if not declared).', { required: true, check: 'dnsLabel' }),
  serviceAccount: str('Service account (identity).', { default: 'the service name', check: 'dnsLabel' }),
  ports: arr(
    obj('A port the app listens on.', {
      name: str('Port name.'),
      port: port('Port on `address`.', { required: true }),
      protocol: en(['HTTP', 'HTTP2', 'GRPC', 'TCP', 'TLS', 'HTTPS'], 'Protocol.', { default: 'HTTP' }),
    }),
    'Ports of the app.',
  ),
  command: strings('Command `trellis up` runs (argv form).'),
  env: map({ type: 'string' }, 'Extra environment for the command.'),
  cwd: str('Working directory of the command, relative to the file.'),
  address: str('IP the app listens on.', { default: '127.0.0.1', check: 'ip' }),
  locality: obj('Where the workload runs, for locality load balancing.', {
    region: str('Region.'),
    zone: str('Zone.'),
    subZone: str('Sub-zone.'),
  }),
  proxy: obj('Ports of this workload\'s proxy (allocated when absent).', {
    outboundPort: port('Outbound listener (HTTP_PROXY).'),
    inboundPort: port('Inbound mTLS listener.'),
    adminPort: port('Admin listener (loopback).'),
    metricsPort: port('Metrics and readiness listener.'),
  }),
  upstreams: arr(
    obj('A local TCP port forwarding to a service through the mesh (Consul-style).', {
      service: str('Destination service.', { required: true }),
      port: port('Destination service port.', { default: 'the service\'s only port' }),
      localPort: port('Port on 127.0.0.1 the app connects to.', { required: true }),
    }),
    'Local ports for upstream services.',
  ),
});

const rateLimitPolicy = obj('Local rate limiting of requests to a service\'s workloads; excess requests get 429 `rate_limited`.', {
  selector: workloadSelector('Workloads it applies to.'),
  targetRef: policyTargetRef('The Service it applies to.'),
  limits: obj('The limits (both may be set).', {
    total: rateLimit('Limit on all callers together, per workload instance.'),
    perCaller: rateLimit('Limit per calling identity (or client IP for plaintext callers).'),
  }, { required: true }),
  paths: strings('Only requests whose path matches (prefix; `*` suffix wildcard).'),
  routes: strings('Only requests on these routes of the destination proxy. Its only route is `inbound` (callers\' VirtualService route names do not reach it; other names get a warning and match nothing); use `paths` to limit part of a service.'),
}, { atMostOne: ['selector', 'targetRef'] });

// ------------------------------------------------------------------ the table

const kind = (k: KindName, description: string, spec: FieldSchema, specRequired = true): KindSchema => ({
  kind: k,
  apiVersions: API_VERSIONS[k],
  description,
  specRequired,
  spec,
});

export const KIND_SCHEMAS: Record<KindName, KindSchema> = {
  VirtualService: kind('VirtualService', 'Istio routing rules: matches, weighted destinations, retries, timeouts, faults, mirroring, rewrites.', virtualService),
  DestinationRule: kind('DestinationRule', 'Istio policies applied after routing: subsets, load balancing, connection pools, outlier detection, TLS.', destinationRule),
  ServiceEntry: kind('ServiceEntry', 'Istio service entry: adds a service (often external) to the mesh\'s registry.', serviceEntry),
  WorkloadEntry: kind('WorkloadEntry', 'Istio workload entry: a workload (e.g. a VM) without a Trellis-managed process.', obj('The endpoint.', workloadEntryFields)),
  PeerAuthentication: kind('PeerAuthentication', 'Istio peer authentication: the mTLS mode workloads accept.', peerAuthentication, false),
  AuthorizationPolicy: kind('AuthorizationPolicy', 'Istio authorization: ALLOW / DENY / AUDIT rules over identities, requests and attributes.', authorizationPolicy, false),
  RequestAuthentication: kind('RequestAuthentication', 'Istio request authentication: JWT validation.', requestAuthentication, false),
  HTTPRoute: kind('HTTPRoute', 'Gateway API HTTP route (GAMMA mesh use: parentRefs a Service).', httpRouteSpec),
  GRPCRoute: kind('GRPCRoute', 'Gateway API gRPC route (GAMMA mesh use: parentRefs a Service).', grpcRouteSpec),
  TrafficSplit: kind('TrafficSplit', 'SMI traffic split.', trafficSplit),
  Service: kind('Service', 'Kubernetes core Service.', serviceSpec, false),
  Mesh: kind('Mesh', 'Trellis mesh-wide settings.', meshSpec, false),
  Workload: kind('Workload', 'Trellis local workload (what `trellis up` runs and proxies).', workloadSpec),
  RateLimitPolicy: kind('RateLimitPolicy', 'Trellis local rate limit.', rateLimitPolicy),
};

/** metadata as Kubernetes writes it; server-populated fields are accepted so `kubectl get -o yaml` output loads. */
export const METADATA_SCHEMA: FieldSchema = obj('Object metadata.', {
  name: str('Name, unique per kind and namespace.', { required: true, check: 'dnsLabel' }),
  namespace: str('Namespace.', { default: 'default', check: 'dnsLabel' }),
  labels: labels('Labels.'),
  annotations: map({ type: 'string' }, 'Annotations.'),
  uid: any('Server-populated; ignored.'),
  resourceVersion: any('Server-populated; ignored.'),
  generation: any('Server-populated; ignored.'),
  creationTimestamp: any('Server-populated; ignored.'),
  deletionTimestamp: any('Server-populated; ignored.'),
  managedFields: any('Server-populated; ignored.'),
  ownerReferences: any('Ignored.'),
  finalizers: any('Ignored.'),
  generateName: any('Ignored.'),
  selfLink: any('Ignored.'),
});

/** Top-level fields of every document besides apiVersion/kind/metadata/spec. */
export const TOP_LEVEL_FIELDS = ['apiVersion', 'kind', 'metadata', 'spec', 'status'] as const;

/** Accepted apiVersions per kind name, and the kinds per apiVersion (for hints). */
export function kindSchema(kind: string): KindSchema | undefined {
  return Object.prototype.hasOwnProperty.call(KIND_SCHEMAS, kind) ? KIND_SCHEMAS[kind as KindName] : undefined;
}

/** Human-readable type of a field, as the docs and error messages write it. */
export function typeLabel(f: FieldSchema): string {
  switch (f.type) {
    case 'array':
      return `[]${f.items ? typeLabel(f.items) : 'any'}`;
    case 'map':
      return `map[${f.keyCheck === 'port' ? 'port' : 'string'}]${f.values ? typeLabel(f.values) : 'any'}`;
    case 'intOrString':
      return 'integer or string';
    case 'quantity':
      return 'number or quantity';
    default:
      return f.enum ? `enum` : f.type;
  }
}
