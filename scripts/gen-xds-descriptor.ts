// Generates proto/generated/envoy-xds.json (the Envoy types Trellis packs, unpacks or sends) and envoy-ads.json (the ADS service alone),
// pre-parsed protobufjs JSON so no process parses .proto text at runtime.
// Usage: node --import tsx scripts/gen-xds-descriptor.ts [--check]   (--check: exit 1 if the committed file differs)
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
// Loading proto-loader registers google/protobuf/descriptor.proto etc. as built-ins (Envoy's annotations import them).
import '@grpc/proto-loader';

const require = createRequire(import.meta.url);
const depsDir = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const INCLUDE_DIRS = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(depsDir, d));

/** The files whose types are packed into Any or sent over ADS; their imports are followed, then pruned to what is referenced. */
export const SOURCE_FILES = [
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

const GENERATED = (name: string) => fileURLToPath(new URL(`../proto/generated/${name}`, import.meta.url));

/** Parses the .proto sources (keepCase, as every Trellis caller expects snake_case fields). */
export function parseSources(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of INCLUDE_DIRS) {
      const p = join(dir, target);
      if (existsSync(p)) return p;
    }
    return target;
  };
  root.loadSync(SOURCE_FILES, { keepCase: true });
  root.resolveAll();
  return root;
}

/** The types Trellis encodes or decodes by name (type URLs in src/xds/protos.ts, ADS messages, the Resource wrapper). */
export const ROOT_TYPES = [
  'envoy.service.discovery.v3.AggregatedDiscoveryService',
  'envoy.service.discovery.v3.Resource',
  'envoy.config.listener.v3.Listener',
  'envoy.config.route.v3.RouteConfiguration',
  'envoy.config.route.v3.FilterConfig',
  'envoy.config.cluster.v3.Cluster',
  'envoy.config.endpoint.v3.ClusterLoadAssignment',
  'envoy.extensions.transport_sockets.tls.v3.Secret',
  'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  'envoy.config.trace.v3.OpenTelemetryConfig',
  'envoy.extensions.filters.http.router.v3.Router',
  'envoy.extensions.filters.http.fault.v3.HTTPFault',
  'envoy.extensions.filters.http.rbac.v3.RBAC',
  'envoy.extensions.filters.http.rbac.v3.RBACPerRoute',
  'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
  'envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
  'xds.type.v3.TypedStruct',
];

type Json = Record<string, unknown>;

/** Every type, enum and service reachable from the roots through fields and methods (plus enclosing types). */
function reachable(root: protobuf.Root, names: string[]): Set<protobuf.ReflectionObject> {
  const seen = new Set<protobuf.ReflectionObject>();
  const visit = (o: protobuf.ReflectionObject | null | undefined): void => {
    if (!o || seen.has(o) || o instanceof protobuf.Root) return;
    if (!(o instanceof protobuf.Type || o instanceof protobuf.Enum || o instanceof protobuf.Service)) {
      // A plain namespace: only a container, kept when something under it is.
      return;
    }
    seen.add(o);
    if (o.parent instanceof protobuf.Type) visit(o.parent);
    if (o instanceof protobuf.Type) for (const f of o.fieldsArray) visit(f.resolvedType);
    if (o instanceof protobuf.Service) {
      for (const m of o.methodsArray) {
        visit(m.resolvedRequestType);
        visit(m.resolvedResponseType);
      }
    }
  };
  for (const n of names) visit(root.lookup(n));
  return seen;
}

/** Options protobufjs needs to encode (packed, proto3_optional, ...); custom "(ext)" annotations only document. */
function plainOptions(options: Json | undefined): Json | undefined {
  if (!options) return undefined;
  const out: Json = {};
  for (const k of Object.keys(options).sort()) if (!k.startsWith('(')) out[k] = options[k];
  return Object.keys(out).length > 0 ? out : undefined;
}

function sortKeys(o: Json): Json {
  const out: Json = {};
  for (const k of Object.keys(o).sort()) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** The JSON of `ns` restricted to `keep` (undefined when nothing under it is kept). */
function prune(ns: protobuf.NamespaceBase, keep: Set<protobuf.ReflectionObject>): Json | undefined {
  const nested: Json = {};
  for (const child of ns.nestedArray) {
    if (child instanceof protobuf.Type) {
      if (!keep.has(child)) continue;
      const j = child.toJSON({ keepComments: false }) as unknown as Json;
      const fields: Json = {};
      for (const [name, f] of Object.entries((j.fields ?? {}) as Record<string, Json>)) {
        fields[name] = sortKeys({ ...f, options: plainOptions(f.options as Json | undefined) });
      }
      const sub = prune(child, keep);
      nested[child.name] = sortKeys({ ...j, fields, options: plainOptions(j.options as Json | undefined), nested: sub?.nested, extensions: undefined });
    } else if (child instanceof protobuf.Enum || child instanceof protobuf.Service) {
      if (!keep.has(child)) continue;
      const j = child.toJSON({ keepComments: false }) as unknown as Json;
      nested[child.name] = sortKeys({ ...j, options: plainOptions(j.options as Json | undefined), comments: undefined });
    } else if (child instanceof protobuf.Namespace) {
      const sub = prune(child, keep);
      if (sub) nested[child.name] = sub;
    }
  }
  if (Object.keys(nested).length === 0) return undefined;
  const out: Json = { nested: sortKeys(nested) };
  if (!(ns instanceof protobuf.Root) && !(ns instanceof protobuf.Type)) {
    const o = plainOptions((ns as protobuf.Namespace).options as Json | undefined);
    if (o) out.options = o;
  }
  return out;
}

/** The pruned descriptor of the parsed sources: only what `roots` reach. */
export function buildDescriptor(root: protobuf.Root, roots: string[]): Json {
  return prune(root, reachable(root, roots)) ?? {};
}

/** Each generated file's path and exact text (stable key order, one trailing newline). */
export function generate(): { path: string; text: string }[] {
  const root = parseSources();
  return [
    { path: GENERATED('envoy-xds.json'), text: JSON.stringify(buildDescriptor(root, ROOT_TYPES)) + '\n' },
    { path: GENERATED('envoy-ads.json'), text: JSON.stringify(buildDescriptor(root, [ROOT_TYPES[0]])) + '\n' },
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const { path, text } of generate()) {
    if (check) {
      if ((existsSync(path) ? readFileSync(path, 'utf8') : '') !== text) {
        console.error(`${path} is out of date: run node --import tsx scripts/gen-xds-descriptor.ts`);
        stale++;
      }
    } else {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
      console.log(`wrote ${path} (${text.length} bytes)`);
    }
  }
  if (stale > 0) process.exit(1);
}
