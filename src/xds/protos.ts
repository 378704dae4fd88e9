// Loads the Envoy xDS v3 protos shipped in @grpc/grpc-js-xds and packs/unpacks resources in Any.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import protobuf from 'protobufjs';
import * as protoLoader from '@grpc/proto-loader';

const require = createRequire(import.meta.url);
const depsDir = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');

/** Include directories for the Envoy, xds, googleapis and validate protos. */
export const PROTO_INCLUDE_DIRS = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(depsDir, d));

export const TYPE_URL_PREFIX = 'type.googleapis.com/';
export const LISTENER_TYPE = 'type.googleapis.com/envoy.config.listener.v3.Listener';
export const ROUTE_TYPE = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
export const CLUSTER_TYPE = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
export const ENDPOINT_TYPE = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
export const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
export const HCM_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const ROUTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
export const TCP_PROXY_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
export const OPENTELEMETRY_CONFIG_TYPE = 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';
export const TYPED_STRUCT_TYPE = 'type.googleapis.com/xds.type.v3.TypedStruct';
export const FAULT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
export const RBAC_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
export const RBAC_PER_ROUTE_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute';
export const JWT_AUTHN_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';
export const LOCAL_RATELIMIT_TYPE =
  'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
export const DOWNSTREAM_TLS_TYPE =
  'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
export const UPSTREAM_TLS_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

/** The xDS resource types served over ADS, in the order a client should subscribe. */
export const XDS_TYPES = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE] as const;
export type XdsTypeUrl = (typeof XDS_TYPES)[number];

/** Short names used by the CLI and status output. */
export const SHORT_TYPE_NAMES: Record<string, string> = {
  [LISTENER_TYPE]: 'listeners',
  [ROUTE_TYPE]: 'routes',
  [CLUSTER_TYPE]: 'clusters',
  [ENDPOINT_TYPE]: 'endpoints',
  [SECRET_TYPE]: 'secrets',
};

const RESOURCE_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'xds/type/v3/typed_struct.proto',
];

let rootCache: protobuf.Root | undefined;

/** The protobufjs root holding every resource and filter type Trellis packs into Any. */
export function protoRoot(): protobuf.Root {
  if (rootCache) return rootCache;
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of PROTO_INCLUDE_DIRS) {
      const p = join(dir, target);
      if (existsSync(p)) return p;
    }
    return target;
  };
  root.loadSync(RESOURCE_FILES, { keepCase: true });
  root.resolveAll();
  rootCache = root;
  return root;
}

const typeCache = new Map<string, protobuf.Type>();

/** Looks up a message type by type URL or full name; throws if it was not loaded (never encodes an empty type_url). */
export function messageType(typeUrlOrName: string): protobuf.Type {
  const name = typeUrlOrName.startsWith(TYPE_URL_PREFIX) ? typeUrlOrName.slice(TYPE_URL_PREFIX.length) : typeUrlOrName;
  let t = typeCache.get(name);
  if (!t) {
    t = protoRoot().lookupType(name);
    typeCache.set(name, t);
  }
  return t;
}

export interface AnyMessage {
  type_url: string;
  value: Buffer | Uint8Array;
}

/** Encodes a plain object (snake_case fields, nested Any as {type_url, value}) into an Any. */
export function packAny(typeUrl: string, obj: object): AnyMessage {
  const t = messageType(typeUrl);
  return { type_url: typeUrl, value: Buffer.from(t.encode(t.fromObject(obj)).finish()) };
}

export const TO_OBJECT_OPTIONS: protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  bytes: Buffer as unknown as protobuf.IConversionOptions['bytes'],
};

/** Decodes an Any into a plain object; nested Anys stay as {type_url, value}. */
export function unpackAny<T = Record<string, unknown>>(any: AnyMessage): T {
  const t = messageType(any.type_url);
  return t.toObject(t.decode(any.value), TO_OBJECT_OPTIONS) as T;
}

/** Converts a plain object with nested packed Anys to JSON-friendly form, decoding Anys recursively (for config dumps). */
export function expandAnys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(expandAnys);
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (typeof o.type_url === 'string' && (o.value instanceof Uint8Array)) {
      try {
        return { '@type': o.type_url, ...(expandAnys(unpackAny(o as unknown as AnyMessage)) as object) };
      } catch {
        return { '@type': o.type_url, value: Buffer.from(o.value).toString('base64') };
      }
    }
    if (o instanceof Uint8Array) return Buffer.from(o).toString('base64');
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) out[k] = expandAnys(v);
    return out;
  }
  return value;
}

/** The grpc-js package definition for the ADS service (messages as plain objects, Any value as Buffer). */
export function adsPackageDefinition(): protoLoader.PackageDefinition {
  return protoLoader.loadSync(['envoy/service/discovery/v3/ads.proto'], {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: PROTO_INCLUDE_DIRS,
  });
}
