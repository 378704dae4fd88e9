// Listeners of a Trellis proxy per hosted workload: outbound HTTP (RDS), inbound (per-port mTLS chains), outbound TCP upstreams.
import { DOWNSTREAM_TLS_TYPE, FAULT_TYPE, HCM_TYPE, OPENTELEMETRY_CONFIG_TYPE, ROUTER_TYPE, TCP_PROXY_TYPE } from '../../xds/protos.js';
import { pack as packAny } from './pack.js';
import type { MeshSettings, PortProtocol, WorkloadInstance } from '../model.js';
import { type ServiceIndex, inboundClusterName, isHttpProtocol, outboundClusterName, pickPort, portProtocol } from './hosts.js';
import { compileAuthorization, compileJwtAuthn } from './authz/index.js';
import { compileRateLimits } from './ratelimit/index.js';
import { effectiveMtls } from './peer-auth.js';
import { FAULT_FILTER, NO_TIMEOUT } from './route-parts.js';
import { accessLogMetadata, hcmAccessLog, pathNormalizationFields } from './hcm-options.js';
import { memo } from './memo.js';
import { type Res, type WorkloadSpec, nsOf, ofKind as ofKindShared } from './spec.js';
import { trellisMetadata } from './util.js';

export const HCM_FILTER = 'envoy.filters.network.http_connection_manager';
export const TCP_PROXY_FILTER = 'envoy.filters.network.tcp_proxy';
export const ROUTER_FILTER = 'envoy.filters.http.router';

export function workloadRef(w: Pick<WorkloadInstance, 'namespace' | 'name'>): string {
  return `${w.namespace}/${w.name}`;
}

export function outboundListenerName(w: WorkloadInstance): string {
  return `outbound|${workloadRef(w)}`;
}

export function routerFilter(): object {
  return { name: ROUTER_FILTER, typed_config: packAny(ROUTER_TYPE, {}) };
}

export function faultFilter(): object {
  return { name: FAULT_FILTER, typed_config: packAny(FAULT_TYPE, {}) };
}

function socket(address: string, port: number) {
  return { socket_address: { address, port_value: port } };
}

/** The outbound HTTP listener on 127.0.0.1:<outboundPort>, routed by the RDS config `routeName` (see outboundRouteName). */
export function outboundListener(w: WorkloadInstance, routeName: string, mesh?: MeshSettings): object {
  const name = outboundListenerName(w);
  const hcm = {
    stat_prefix: name,
    rds: { route_config_name: routeName, config_source: { ads: {} } },
    http_filters: [faultFilter(), routerFilter()],
    ...(mesh?.tracing ? { tracing: hcmTracing(mesh.tracing) } : {}),
    ...pathNormalizationFields(mesh?.pathNormalization),
    ...hcmAccessLog(mesh, 'outbound'),
  };
  return {
    name,
    address: socket('127.0.0.1', w.proxy?.outboundPort ?? 15001),
    filter_chains: [{ filters: [{ name: HCM_FILTER, typed_config: packAny(HCM_TYPE, hcm) }] }],
    metadata: trellisMetadata({ workload: workloadRef(w), direction: 'outbound', ...accessLogMetadata(mesh) }),
  };
}

/** Mesh tracing as Envoy's HCM tracing block: OpenTelemetry over OTLP/HTTP, random sampling of new traces (docs/xds-contract.md). */
export function hcmTracing(t: NonNullable<MeshSettings['tracing']>): object {
  return {
    random_sampling: { value: t.samplingPercent },
    provider: {
      name: 'envoy.tracers.opentelemetry',
      typed_config: packAny(OPENTELEMETRY_CONFIG_TYPE, { http_service: { http_uri: { uri: t.endpoint, cluster: 'trellis-otlp', timeout: { seconds: 5 } } } }),
    },
  };
}

function tlsSocket(protocol: PortProtocol): object {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: packAny(DOWNSTREAM_TLS_TYPE, {
      require_client_certificate: { value: true },
      common_tls_context: {
        tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {} } }],
        validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {} } },
        alpn_protocols: isHttpProtocol(protocol) ? ['h2', 'http/1.1'] : ['trellis-tcp'],
      },
    }),
  };
}

/** Inbound HTTP filters before the router: jwt_authn (so RBAC can read the payload), then RBAC. */
function securityFilters(resources: Res[], mesh: MeshSettings, w: WorkloadInstance, notes?: string[]): object[] {
  // Input order (not age order) as the authz compilers expect; shared per generation.
  const ofKind = (k: string) => memo(resources, `inOrder:${k}`, () => resources.filter((r) => r.kind === k)) as never[];
  const warnings: string[] = [];
  const jwt = compileJwtAuthn(ofKind('RequestAuthentication'), w, mesh, warnings);
  const authz = compileAuthorization(ofKind('AuthorizationPolicy'), w, mesh);
  const rateLimit = compileRateLimits(ofKind('RateLimitPolicy'), w, mesh, warnings);
  notes?.push(...warnings, ...authz.warnings);
  // Istio's order: authenticate, authorize, then spend rate-limit tokens only on admitted requests.
  return [...(jwt ? [jwt] : []), ...authz.filters, ...(rateLimit ? [rateLimit] : [])];
}

function inboundFilter(mesh: MeshSettings, w: WorkloadInstance, appPort: number, protocol: PortProtocol, security: object[]): object {
  const cluster = inboundClusterName(appPort, w.namespace, w.name);
  if (!isHttpProtocol(protocol)) {
    return { name: TCP_PROXY_FILTER, typed_config: packAny(TCP_PROXY_TYPE, { stat_prefix: cluster, cluster }) };
  }
  const hcm = {
    stat_prefix: cluster,
    route_config: {
      name: cluster,
      virtual_hosts: [
        {
          name: cluster,
          domains: ['*'],
          routes: [{ name: 'inbound', match: { prefix: '/' }, route: { cluster, timeout: NO_TIMEOUT } }],
        },
      ],
    },
    http_filters: [...security, routerFilter()],
    ...pathNormalizationFields(mesh.pathNormalization),
    ...hcmAccessLog(mesh, 'inbound'),
  };
  return { name: HCM_FILTER, typed_config: packAny(HCM_TYPE, hcm) };
}

/** The inbound listener: per app port a TLS chain and/or a plaintext chain, per the effective PeerAuthentication. */
export function inboundListener(resources: Res[], mesh: MeshSettings, w: WorkloadInstance, notes?: string[]): object {
  const chains: object[] = [];
  const security = securityFilters(resources, mesh, w, notes);
  for (const p of w.ports) {
    const protocol = portProtocol(p);
    const mtls = effectiveMtls(resources, mesh, w, p.port);
    const metadata = trellisMetadata({ mtls: mtls.mode, decidedBy: mtls.decidedBy, protocol });
    const filters = [inboundFilter(mesh, w, p.port, protocol, security)];
    if (mtls.mode !== 'DISABLE') {
      chains.push({
        name: `${p.port}|tls`,
        filter_chain_match: { destination_port: { value: p.port }, transport_protocol: 'tls' },
        transport_socket: tlsSocket(protocol),
        filters,
        metadata,
      });
    }
    if (mtls.mode !== 'STRICT') {
      chains.push({
        name: `${p.port}|plaintext`,
        filter_chain_match: { destination_port: { value: p.port }, transport_protocol: 'raw_buffer' },
        filters,
        metadata,
      });
    }
  }
  return {
    name: `inbound|${workloadRef(w)}`,
    address: socket(w.address, w.proxy?.inboundPort ?? 15006),
    filter_chains: chains,
    metadata: trellisMetadata({ workload: workloadRef(w), direction: 'inbound', ...accessLogMetadata(mesh) }),
  };
}

/** Consul-style `Workload.spec.upstreams`: one local TCP listener per upstream, tcp_proxy to its outbound cluster. */
export function upstreamListeners(
  resources: Res[],
  index: ServiceIndex,
  w: WorkloadInstance,
): { listener: { name: string }; cluster: string }[] {
  const wl = ofKindShared(resources, 'Workload').find((r) => r.metadata.name === w.name && nsOf(r) === w.namespace) as
    | Res<WorkloadSpec>
    | undefined;
  const out: { listener: { name: string }; cluster: string }[] = [];
  for (const u of wl?.spec?.upstreams ?? []) {
    const target = u.service ?? u.destinationName;
    const localPort = u.localPort ?? u.localBindPort;
    if (!target || !localPort) continue;
    const svc = index.resolve(target, u.namespace ?? w.namespace);
    const port = svc ? pickPort(svc, u.port) : undefined;
    const cluster = svc && port ? outboundClusterName(port.port, undefined, svc.fqdn) : outboundClusterName(u.port ?? 0, undefined, target);
    const name = `outbound_tcp|${localPort}|${workloadRef(w)}`;
    const listener = {
      name,
      address: socket('127.0.0.1', localPort),
      filter_chains: [
        { filters: [{ name: TCP_PROXY_FILTER, typed_config: packAny(TCP_PROXY_TYPE, { stat_prefix: name, cluster }) }] },
      ],
      metadata: trellisMetadata({ workload: workloadRef(w), direction: 'outbound' }),
    };
    out.push({ listener, cluster });
  }
  return out;
}

/** The inbound STATIC clusters' targets of a workload: (appPort, protocol). */
export function inboundPorts(w: WorkloadInstance): { port: number; protocol: PortProtocol }[] {
  return w.ports.map((p) => ({ port: p.port, protocol: portProtocol(p) }));
}
