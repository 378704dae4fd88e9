// Builds decoded xDS resources per the xDS contract (packed and unpacked once, exactly as the wire delivers them).
import {
  packAny,
  unpackAny,
  LISTENER_TYPE,
  CLUSTER_TYPE,
  ENDPOINT_TYPE,
  ROUTE_TYPE,
  SECRET_TYPE,
  HCM_TYPE,
  ROUTER_TYPE,
  TCP_PROXY_TYPE,
  DOWNSTREAM_TLS_TYPE,
} from '../../../src/xds/protos.js';
import { objectToStruct } from '../../../src/proxy/config/struct.js';

type Obj = Record<string, any>;

export const roundTrip = (typeUrl: string, obj: Obj): Obj => unpackAny(packAny(typeUrl, obj));

const md = (o: Obj) => ({ filter_metadata: { trellis: objectToStruct(o) } });
const addr = (address: string, port: number) => ({ socket_address: { address, port_value: port } });
const router = { name: 'envoy.filters.http.router', typed_config: packAny(ROUTER_TYPE, {}) };

export function fqdn(svc: string, ns = 'default'): string {
  return `${svc}.${ns}.svc.cluster.local`;
}

export function outboundHttpListener(workload: string, port: number): Obj {
  const name = `outbound|${workload}`;
  return roundTrip(LISTENER_TYPE, {
    name,
    address: addr('127.0.0.1', port),
    metadata: md({ workload, direction: 'outbound' }),
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: packAny(HCM_TYPE, {
              stat_prefix: name,
              rds: { route_config_name: name, config_source: { ads: {} } },
              http_filters: [router],
            }),
          },
        ],
      },
    ],
  });
}

export function outboundTcpListener(workload: string, port: number, cluster: string): Obj {
  return roundTrip(LISTENER_TYPE, {
    name: `outbound_tcp|${port}|${workload}`,
    address: addr('127.0.0.1', port),
    metadata: md({ workload, direction: 'outbound' }),
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: packAny(TCP_PROXY_TYPE, { stat_prefix: 'tcp', cluster }) }] }],
  });
}

export interface InboundPortSpec {
  appPort: number;
  protocol?: 'HTTP' | 'HTTP2' | 'GRPC' | 'TCP';
  mtls?: 'STRICT' | 'PERMISSIVE' | 'DISABLE';
}

export function inboundListener(workload: string, port: number, ports: InboundPortSpec[]): Obj {
  const chains: Obj[] = [];
  for (const p of ports) {
    const mtls = p.mtls ?? 'STRICT';
    const protocol = p.protocol ?? 'HTTP';
    const cluster = `inbound|${p.appPort}|${workload}`;
    const filter =
      protocol === 'TCP'
        ? { name: 'envoy.filters.network.tcp_proxy', typed_config: packAny(TCP_PROXY_TYPE, { stat_prefix: cluster, cluster }) }
        : {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: packAny(HCM_TYPE, {
              stat_prefix: cluster,
              route_config: { name: cluster, virtual_hosts: [{ name: 'inbound', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] }] },
              http_filters: [router],
            }),
          };
    const fmd = md({ mtls, decidedBy: 'default', protocol });
    if (mtls !== 'DISABLE') {
      chains.push({
        filter_chain_match: { destination_port: { value: p.appPort }, transport_protocol: 'tls' },
        transport_socket: {
          name: 'envoy.transport_sockets.tls',
          typed_config: packAny(DOWNSTREAM_TLS_TYPE, {
            require_client_certificate: { value: true },
            common_tls_context: {
              tls_certificate_sds_secret_configs: [{ name: 'default' }],
              validation_context_sds_secret_config: { name: 'ROOTCA' },
              alpn_protocols: protocol === 'TCP' ? ['trellis-tcp'] : ['h2', 'http/1.1'],
            },
          }),
        },
        filters: [filter],
        metadata: fmd,
      });
    }
    if (mtls !== 'STRICT') {
      chains.push({ filter_chain_match: { destination_port: { value: p.appPort }, transport_protocol: 'raw_buffer' }, filters: [filter], metadata: fmd });
    }
  }
  return roundTrip(LISTENER_TYPE, {
    name: `inbound|${workload}`,
    address: addr('127.0.0.1', port),
    metadata: md({ workload, direction: 'inbound' }),
    filter_chains: chains,
  });
}

export function inboundCluster(workload: string, appPort: number): Obj {
  const name = `inbound|${appPort}|${workload}`;
  return roundTrip(CLUSTER_TYPE, {
    name,
    type: 'STATIC',
    connect_timeout: { seconds: 1 },
    load_assignment: {
      cluster_name: name,
      endpoints: [{ load_balancing_weight: { value: 1 }, lb_endpoints: [{ endpoint: { address: addr('127.0.0.1', appPort) } }] }],
    },
  });
}

export function outboundCluster(svc: string, port: number, opts: { protocol?: string; subset?: string; connectTimeoutMs?: number } = {}): Obj {
  const name = `outbound|${port}|${opts.subset ?? ''}|${fqdn(svc)}`;
  const ms = opts.connectTimeoutMs ?? 2000;
  return roundTrip(CLUSTER_TYPE, {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {} }, service_name: name },
    connect_timeout: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 },
    lb_policy: 'ROUND_ROBIN',
    metadata: md({ service: fqdn(svc), port, subset: opts.subset ?? '', protocol: opts.protocol ?? 'HTTP' }),
  });
}

export interface EndpointSpec {
  address?: string;
  port: number;
  workload: string;
  identity: string;
  targetPort: number;
  tls?: 'mutual' | 'none';
  health?: 'HEALTHY' | 'UNHEALTHY' | 'DRAINING';
}

export function loadAssignment(cluster: string, eps: EndpointSpec[]): Obj {
  return roundTrip(ENDPOINT_TYPE, {
    cluster_name: cluster,
    endpoints: [
      {
        locality: { region: 'local', zone: 'a' },
        load_balancing_weight: { value: 1 },
        lb_endpoints: eps.map((e) => ({
          endpoint: { address: addr(e.address ?? '127.0.0.1', e.port), hostname: e.workload },
          health_status: e.health ?? 'HEALTHY',
          metadata: md({ workload: e.workload, identity: e.identity, labels: {}, targetPort: e.targetPort, tls: e.tls ?? 'mutual' }),
        })),
      },
    ],
  });
}

export interface RouteSpec {
  name?: string;
  prefix?: string;
  cluster?: string;
  timeoutMs?: number;
  direct?: { status: number; body?: string };
  fault?: Obj;
  prefixRewrite?: string;
}

export function routeConfiguration(name: string, vhosts: { name: string; domains: string[]; routes: RouteSpec[] }[]): Obj {
  return roundTrip(ROUTE_TYPE, {
    name,
    virtual_hosts: vhosts.map((vh) => ({
      name: vh.name,
      domains: vh.domains,
      routes: vh.routes.map((r, i) => {
        const out: Obj = { name: r.name ?? `default/${vh.name}#${i}`, match: { prefix: r.prefix ?? '/' } };
        if (r.direct) out.direct_response = { status: r.direct.status, body: r.direct.body ? { inline_string: r.direct.body } : undefined };
        else {
          out.route = { cluster: r.cluster };
          if (r.timeoutMs !== undefined) out.route.timeout = { seconds: Math.floor(r.timeoutMs / 1000), nanos: (r.timeoutMs % 1000) * 1e6 };
          if (r.prefixRewrite !== undefined) out.route.prefix_rewrite = r.prefixRewrite;
        }
        if (r.fault) out.typed_per_filter_config = r.fault;
        return out;
      }),
    })),
  });
}

/** Every spelling a caller may use for a service, with and without the port. */
export function domainsFor(svc: string, port: number, ns = 'default'): string[] {
  const names = [svc, `${svc}.${ns}`, `${svc}.${ns}.svc`, fqdn(svc, ns)];
  return [...names, ...names.map((n) => `${n}:${port}`)];
}

export function rootCaSecret(pem: string): Obj {
  return roundTrip(SECRET_TYPE, { name: 'ROOTCA', validation_context: { trusted_ca: { inline_bytes: Buffer.from(pem) } } });
}
