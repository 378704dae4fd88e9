// Parses decoded xDS Listener and Cluster resources into the proxy's config types; throws a clear error on what it cannot use.
import { HCM_TYPE, TCP_PROXY_TYPE, DOWNSTREAM_TLS_TYPE, ROUTER_TYPE, unpackAny, type AnyMessage } from '../../xds/protos.js';
import { trellisMetadata, durationMs } from './struct.js';
import type { ClusterConfig, HttpFilterConfig, InboundChain, ListenerConfig, ChainProtocol, MtlsMode } from './types.js';
import type { NormalizeOptions } from '../route/normalize.js';

type Obj = Record<string, any>;

function socketAddress(addr: Obj | undefined, where: string): { address: string; port: number } {
  const sa = addr?.socket_address;
  if (!sa || typeof sa.address !== 'string') throw new Error(`${where}: address.socket_address missing`);
  const port = Number(sa.port_value ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${where}: bad port ${sa.port_value}`);
  return { address: sa.address, port };
}

function unpackTyped(tc: unknown, where: string): { type: string; value: Obj } | undefined {
  if (!tc || typeof tc !== 'object') return undefined;
  const any = tc as AnyMessage;
  if (!any.type_url) return undefined;
  try {
    return { type: any.type_url, value: unpackAny<Obj>(any) };
  } catch (err) {
    throw new Error(`${where}: cannot decode ${any.type_url}: ${(err as Error).message}`);
  }
}

function routeConfigCluster(rc: Obj | undefined): { cluster: string; routeName?: string } | undefined {
  for (const vh of rc?.virtual_hosts ?? []) {
    for (const r of vh.routes ?? []) {
      if (r.route?.cluster) return { cluster: String(r.route.cluster), routeName: r.name ? String(r.name) : undefined };
    }
  }
  return undefined;
}

const isRouter = (f: Obj): boolean => f.typed_config?.type_url === ROUTER_TYPE || (!f.typed_config && f.name === 'envoy.filters.http.router');

/** An inbound HCM's http_filters minus the router, kept packed: the inbound policy decodes them (and fails closed on what it cannot). */
function inboundHttpFilters(hcm: Obj, where: string): HttpFilterConfig[] {
  const out: HttpFilterConfig[] = [];
  for (const [i, f] of ((hcm.http_filters ?? []) as Obj[]).entries()) {
    if (isRouter(f)) continue;
    const tc = f.typed_config;
    if (tc !== undefined && (typeof tc.type_url !== 'string' || !(tc.value instanceof Uint8Array))) {
      throw new Error(`${where} http_filters[${i}] (${f.name ?? 'unnamed'}): typed_config is not an Any`);
    }
    out.push({
      name: String(f.name ?? tc?.type_url ?? `http_filters[${i}]`),
      ...(tc ? { typed_config: { type_url: tc.type_url, value: tc.value } } : {}),
      ...(f.is_optional === true ? { is_optional: true } : {}),
      ...(f.disabled === true ? { disabled: true } : {}),
    });
  }
  return out;
}

/**
 * HCM path_with_escaped_slashes_action -> the normalizer's policy; the default (and unknown values) reject.
 * UNESCAPE_AND_REDIRECT decodes and forwards (no redirect is sent).
 */
function escapedSlashes(action: unknown): { escapedSlashes?: InboundChain['escapedSlashes'] } {
  switch (action) {
    case 'KEEP_UNCHANGED':
    case 1:
      return { escapedSlashes: 'keep' };
    case 'UNESCAPE_AND_REDIRECT':
    case 'UNESCAPE_AND_FORWARD':
    case 3:
    case 4:
      return { escapedSlashes: 'decode-and-merge' };
    default:
      return {};
  }
}

/**
 * HCM normalize_path / merge_slashes / path_with_escaped_slashes_action -> normalizer options. Without normalize_path
 * (a BoolValue, so "unset" is visible) the proxy keeps its default, normalizing and merging slashes; with it,
 * merge_slashes is taken as given.
 */
export function normalizeOptions(hcm: Obj): NormalizeOptions {
  const out: NormalizeOptions = { ...escapedSlashes(hcm.path_with_escaped_slashes_action) };
  const np = hcm.normalize_path;
  if (np !== undefined && np !== null) {
    out.normalize = (typeof np === 'object' ? np.value : np) === true;
    out.mergeSlashes = hcm.merge_slashes === true;
  }
  return out;
}

/** Listener resource -> ListenerConfig. */
export function parseListener(l: Obj): ListenerConfig {
  const name = String(l.name ?? '');
  if (!name) throw new Error('listener without a name');
  const where = `listener ${name}`;
  const md = trellisMetadata(l);
  const direction = md.direction === 'inbound' ? 'inbound' : 'outbound';
  const { address, port } = socketAddress(l.address, where);
  const cfg: ListenerConfig = {
    name,
    address,
    port,
    direction,
    workload: String(md.workload ?? ''),
    kind: direction === 'inbound' ? 'inbound' : 'http',
    chains: [],
  };
  const chains: Obj[] = l.filter_chains ?? [];
  if (chains.length === 0) throw new Error(`${where}: no filter_chains`);
  for (const [i, fc] of chains.entries()) {
    const cw = `${where} filter_chains[${i}]`;
    const filters: Obj[] = fc.filters ?? [];
    let hcm: Obj | undefined;
    let tcp: Obj | undefined;
    for (const f of filters) {
      const t = unpackTyped(f.typed_config, `${cw} filter ${f.name}`);
      if (t?.type === HCM_TYPE) hcm = t.value;
      else if (t?.type === TCP_PROXY_TYPE) tcp = t.value;
    }
    if (!hcm && !tcp) throw new Error(`${cw}: neither http_connection_manager nor tcp_proxy`);
    if (direction === 'outbound') {
      if (hcm) {
        cfg.kind = 'http';
        cfg.routeConfigName = hcm.rds?.route_config_name;
        if (!cfg.routeConfigName) throw new Error(`${cw}: outbound HCM without rds.route_config_name`);
        cfg.normalize = normalizeOptions(hcm);
      } else {
        cfg.kind = 'tcp';
        cfg.tcpCluster = tcp!.cluster;
        if (!cfg.tcpCluster) throw new Error(`${cw}: tcp_proxy without cluster`);
      }
      continue;
    }
    const fmd = trellisMetadata(fc);
    const m = fc.filter_chain_match ?? {};
    const transport = m.transport_protocol === 'tls' ? 'tls' : m.transport_protocol === 'raw_buffer' ? 'raw_buffer' : 'any';
    let alpn: string[] = [];
    if (fc.transport_socket) {
      const tls = unpackTyped(fc.transport_socket.typed_config, `${cw} transport_socket`);
      if (tls && tls.type !== DOWNSTREAM_TLS_TYPE) throw new Error(`${cw}: unsupported transport socket ${tls.type}`);
      alpn = tls?.value.common_tls_context?.alpn_protocols ?? [];
    }
    const target = hcm ? routeConfigCluster(hcm.route_config) : tcp!.cluster ? { cluster: String(tcp!.cluster) } : undefined;
    if (!target) throw new Error(`${cw}: no cluster to forward to`);
    const cluster = target.cluster;
    const httpFilterConfigs = hcm ? inboundHttpFilters(hcm, cw) : [];
    const httpFilters = httpFilterConfigs.map((f) => f.typed_config?.type_url ?? f.name);
    const protocol = (String(fmd.protocol ?? (tcp ? 'TCP' : 'HTTP')).toUpperCase()) as ChainProtocol;
    const mtls = (String(fmd.mtls ?? (transport === 'tls' ? 'STRICT' : 'DISABLE')).toUpperCase()) as MtlsMode;
    const chain: InboundChain = {
      destinationPort: m.destination_port?.value !== undefined ? Number(m.destination_port.value) : undefined,
      transport,
      mtls,
      decidedBy: String(fmd.decidedBy ?? 'default'),
      protocol,
      cluster,
      alpn,
      httpFilters,
      httpFilterConfigs,
      ...(target.routeName ? { routeName: target.routeName } : {}),
      ...(hcm ? escapedSlashes(hcm.path_with_escaped_slashes_action) : {}),
      ...(hcm ? { normalize: normalizeOptions(hcm) } : {}),
    };
    cfg.chains.push(chain);
  }
  return cfg;
}

const LB_POLICIES = new Set(['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV']);

/** Cluster resource -> ClusterConfig. */
export function parseCluster(c: Obj): ClusterConfig {
  const name = String(c.name ?? '');
  if (!name) throw new Error('cluster without a name');
  const md = trellisMetadata(c);
  const type = (c.type ?? 'STATIC') as ClusterConfig['type'];
  if (type !== 'EDS' && type !== 'STATIC') throw new Error(`cluster ${name}: unsupported type ${type}`);
  const lbPolicy = String(c.lb_policy ?? 'ROUND_ROBIN');
  if (!LB_POLICIES.has(lbPolicy)) throw new Error(`cluster ${name}: unsupported lb_policy ${lbPolicy}`);
  if (type === 'STATIC' && !c.load_assignment) throw new Error(`cluster ${name}: STATIC without load_assignment`);
  return {
    name,
    type,
    edsServiceName: c.eds_cluster_config?.service_name || name,
    connectTimeoutMs: durationMs(c.connect_timeout) ?? 10_000,
    lbPolicy,
    localityAware: Boolean(c.common_lb_config?.locality_weighted_lb_config || c.common_lb_config?.zone_aware_lb_config),
    service: md.service !== undefined ? String(md.service) : undefined,
    port: md.port !== undefined ? Number(md.port) : undefined,
    subset: md.subset !== undefined ? String(md.subset) : undefined,
    protocol: String(md.protocol ?? 'HTTP').toUpperCase(),
    loadAssignment: type === 'STATIC' ? c.load_assignment : undefined,
  };
}

/** Secret ROOTCA -> PEM bundle. */
export function parseRootCa(s: Obj): string {
  const inline = s.validation_context?.trusted_ca?.inline_bytes ?? s.validation_context?.trusted_ca?.inline_string;
  if (!inline) throw new Error(`secret ${s.name}: validation_context.trusted_ca inline bytes missing`);
  const pem = Buffer.isBuffer(inline) || inline instanceof Uint8Array ? Buffer.from(inline).toString('utf8') : String(inline);
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`secret ${s.name}: trusted_ca holds no PEM certificate`);
  return pem;
}
