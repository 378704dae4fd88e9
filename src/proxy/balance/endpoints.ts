// Turns an xDS ClusterLoadAssignment into the balancer's flat EndpointInfo list.
import { asArray, asMsg, asString, structToPlain, wrappedNumber } from '../route/proto.js';

export interface Locality {
  region?: string;
  zone?: string;
  subZone?: string;
}

export interface EndpointInfo {
  /** "ip:port" ("[v6]:port" for IPv6). */
  id: string;
  address: string;
  port: number;
  /** Relative weight (LbEndpoint.load_balancing_weight, default 1). */
  weight: number;
  /** False for UNHEALTHY, DRAINING and TIMEOUT endpoints. */
  healthy: boolean;
  locality: Locality;
  /** filter_metadata.trellis as plain values: workload, identity, labels, targetPort, tls. */
  metadata: Record<string, unknown>;
  /** Endpoint.hostname (the workload name in Trellis). */
  hostname?: string;
}

/** A decoded envoy.config.endpoint.v3.ClusterLoadAssignment. */
export interface ClusterLoadAssignmentObject {
  cluster_name?: string;
  endpoints?: unknown[];
  [field: string]: unknown;
}

const UNHEALTHY = new Set(['UNHEALTHY', 'DRAINING', 'TIMEOUT', 2, 3, 4]);

export function endpointId(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Flattens every locality's lb_endpoints; endpoints without an IP socket address are skipped; duplicates keep the first. */
export function endpointsFromLoadAssignment(cla: ClusterLoadAssignmentObject): EndpointInfo[] {
  const out: EndpointInfo[] = [];
  const seen = new Set<string>();
  for (const rawLle of asArray(asMsg(cla)?.endpoints)) {
    const lle = asMsg(rawLle) ?? {};
    const loc = asMsg(lle.locality) ?? {};
    const locality: Locality = {};
    if (asString(loc.region)) locality.region = loc.region as string;
    if (asString(loc.zone)) locality.zone = loc.zone as string;
    if (asString(loc.sub_zone)) locality.subZone = loc.sub_zone as string;
    Object.freeze(locality);
    for (const rawLbe of asArray(lle.lb_endpoints)) {
      const lbe = asMsg(rawLbe) ?? {};
      const ep = asMsg(lbe.endpoint);
      const sa = asMsg(asMsg(ep?.address)?.socket_address);
      const address = asString(sa?.address);
      const port = Number(sa?.port_value ?? 0);
      if (!address || !Number.isInteger(port) || port <= 0 || port > 65535) continue;
      const id = endpointId(address, port);
      if (seen.has(id)) continue;
      seen.add(id);
      const w = lbe.load_balancing_weight === undefined || lbe.load_balancing_weight === null ? 1 : wrappedNumber(lbe.load_balancing_weight) ?? 1;
      const md = asMsg(asMsg(lbe.metadata)?.filter_metadata)?.trellis;
      const info: EndpointInfo = {
        id,
        address,
        port,
        weight: w > 0 ? w : 1,
        healthy: !UNHEALTHY.has(lbe.health_status as string),
        locality,
        metadata: Object.freeze(md === undefined ? {} : structToPlain(md)),
      };
      const hostname = asString(ep?.hostname);
      if (hostname) info.hostname = hostname;
      out.push(Object.freeze(info));
    }
  }
  return out;
}
