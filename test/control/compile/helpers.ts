// Test helpers: pick resources out of a snapshot, decode nested Anys and Structs, normalize proto round trips.
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE, unpackAny, type AnyMessage } from '../../../src/xds/protos.js';
import type { XdsSnapshot } from '../../../src/control/model.js';
import { fromStruct } from '../../../src/control/compile/util.js';

export const listeners = (s: XdsSnapshot) => s[LISTENER_TYPE] as Record<string, any>;
export const routeConfigs = (s: XdsSnapshot) => s[ROUTE_TYPE] as Record<string, any>;
export const clusters = (s: XdsSnapshot) => s[CLUSTER_TYPE] as Record<string, any>;
export const endpoints = (s: XdsSnapshot) => s[ENDPOINT_TYPE] as Record<string, any>;
export const secrets = (s: XdsSnapshot) => s[SECRET_TYPE] as Record<string, any>;

/** The route configuration the outbound listener of workload `ns/name` names (shared by callers alike in routing). */
export function outboundRoutes(s: XdsSnapshot, workload: string): any {
  const l = listeners(s)[`outbound|${workload}`];
  if (!l) throw new Error(`no outbound listener for ${workload}`);
  const name = unpack(l.filter_chains[0].filters[0].typed_config).rds.route_config_name;
  const rc = routeConfigs(s)[name];
  if (!rc) throw new Error(`route configuration ${name} (named by ${workload}) is missing`);
  return rc;
}

/** Decodes an Any, dropping protobufjs's virtual oneof keys (e.g. `config_source_specifier: 'ads'`). */
export function unpack(any: AnyMessage): any {
  return stripOneofs(unpackAny(any));
}

function stripOneofs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripOneofs);
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const o = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) {
      if (typeof x === 'string' && x !== k && x in o && k.endsWith('_specifier')) continue;
      if (typeof x === 'string' && x !== k && x in o && isOneofName(k)) continue;
      out[k] = stripOneofs(x);
    }
    return out;
  }
  return v;
}

const ONEOF_NAMES = new Set(['config_type', 'route_specifier', 'action', 'kind', 'validation_context_type', 'cluster_specifier']);
function isOneofName(k: string): boolean {
  return ONEOF_NAMES.has(k) || k.endsWith('_type');
}

export function trellisMeta(o: { metadata?: { filter_metadata?: { trellis?: any } } }): Record<string, unknown> {
  return fromStruct(o.metadata?.filter_metadata?.trellis);
}

/** The virtual host for `fqdn:port` in a route configuration. */
export function vhost(rc: any, name: string): any {
  const vh = rc.virtual_hosts.find((v: any) => v.name === name);
  if (!vh) throw new Error(`no virtual host ${name} in ${rc.name}: ${rc.virtual_hosts.map((v: any) => v.name).join(', ')}`);
  return vh;
}

/** A comparable form of a proto-shaped object: proto3 defaults dropped, numbers as strings, bytes as base64. */
export function normalize(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) {
    const arr = v.map(normalize);
    return arr.length === 0 ? undefined : arr;
  }
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(v).sort()) {
      // protobufjs names the set member of a oneof in a virtual key (oneofs: true); it is not data.
      if (typeof o[k] === 'string' && (o[k] as string) in o && k !== o[k]) continue;
      const n = normalize(o[k]);
      if (n !== undefined) out[k] = n;
    }
    return out;
  }
  if (v === 0 || v === '0' || v === '' || v === false || v === null || v === undefined) return undefined;
  if (typeof v === 'number') return String(v);
  return v;
}
