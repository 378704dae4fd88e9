// Building blocks shared by the route compilers: matchers, header edits, weighted destinations, fault, retries, mirrors.
import { FAULT_TYPE } from '../../xds/protos.js';
import { pack as packAny } from './pack.js';
import type { MeshSettings } from '../model.js';
import type { HTTPFaultInjection, HTTPRetry, HeaderOps, StringMatch } from './spec.js';
import { duration, fractionalPercent, integerWeights } from './util.js';

export const FAULT_FILTER = 'envoy.filters.http.fault';

/** envoy.type.matcher.v3.StringMatcher for an Istio StringMatch (undefined when the match is empty). */
export function stringMatcher(sm: StringMatch | undefined, ignoreCase = false): Record<string, unknown> | undefined {
  if (!sm) return undefined;
  const out: Record<string, unknown> = {};
  if (sm.exact !== undefined) out.exact = sm.exact;
  else if (sm.prefix !== undefined) out.prefix = sm.prefix;
  else if (sm.regex !== undefined) out.safe_regex = { regex: sm.regex };
  else return undefined;
  if (ignoreCase) out.ignore_case = true;
  return out;
}

/** A HeaderMatcher; an empty match means "present" (or "absent" when inverted). */
export function headerMatcher(name: string, sm: StringMatch | undefined, invert = false): Record<string, unknown> {
  const m = stringMatcher(sm);
  const out: Record<string, unknown> = { name: name.toLowerCase() };
  if (m) out.string_match = m;
  else out.present_match = true;
  if (invert) out.invert_match = true;
  return out;
}

export function queryMatcher(name: string, sm: StringMatch | undefined): Record<string, unknown> {
  const m = stringMatcher(sm);
  return m ? { name, string_match: m } : { name, present_match: true };
}

export interface HeaderEdits {
  add: object[];
  remove: string[];
}

/** HeaderValueOptions and removals for set/add/remove edits. */
export function headerEdits(ops: HeaderOps | undefined): HeaderEdits {
  const add: object[] = [];
  for (const [key, value] of Object.entries(ops?.set ?? {}))
    add.push({ header: { key, value: String(value) }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
  for (const [key, value] of Object.entries(ops?.add ?? {}))
    add.push({ header: { key, value: String(value) }, append_action: 'APPEND_IF_EXISTS_OR_ADD' });
  return { add, remove: [...(ops?.remove ?? [])] };
}

/** Writes request/response header edits onto a Route or a weighted cluster entry. */
export function applyHeaderEdits(
  target: Record<string, unknown>,
  request: HeaderOps | undefined,
  response: HeaderOps | undefined,
): void {
  const rq = headerEdits(request);
  const rs = headerEdits(response);
  const push = (key: string, items: unknown[]) => {
    if (items.length === 0) return;
    target[key] = [...((target[key] as unknown[]) ?? []), ...items];
  };
  push('request_headers_to_add', rq.add);
  push('request_headers_to_remove', rq.remove);
  push('response_headers_to_add', rs.add);
  push('response_headers_to_remove', rs.remove);
}

export interface WeightedDestination {
  cluster: string;
  weight: number;
  request?: HeaderOps;
  response?: HeaderOps;
}

/**
 * The cluster specifier of a RouteAction: `cluster` for one destination, else `weighted_clusters` whose
 * weights keep the configured proportions (zero-weight entries are left out; all zero = equal weights).
 */
export function clusterSpecifier(dests: WeightedDestination[], route: Record<string, unknown>): Record<string, unknown> {
  let weights = integerWeights(dests.map((d) => d.weight));
  if (weights.every((w) => w === 0)) weights = dests.map(() => 1);
  const live = dests.map((d, i) => ({ d, w: weights[i] })).filter((x) => x.w > 0);
  if (live.length === 1) {
    applyHeaderEdits(route, live[0].d.request, live[0].d.response);
    return { cluster: live[0].d.cluster };
  }
  return {
    weighted_clusters: {
      clusters: live.map(({ d, w }) => {
        const entry: Record<string, unknown> = { name: d.cluster, weight: { value: w } };
        applyHeaderEdits(entry, d.request, d.response);
        return entry;
      }),
    },
  };
}

const GRPC_CODES: Record<string, number> = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
};

function faultPercent(p: { percentage?: { value?: number }; percent?: number }): number {
  const v = Number(p.percentage?.value ?? p.percent ?? 100);
  return Number.isFinite(v) ? v : 100;
}

/** The HTTPFault per-route config (packed) for an Istio fault block, or undefined if it injects nothing. */
export function faultConfig(fault: HTTPFaultInjection | undefined): unknown {
  if (!fault) return undefined;
  const cfg: Record<string, unknown> = {};
  const delay = duration(fault.delay?.fixedDelay);
  if (fault.delay && delay) cfg.delay = { fixed_delay: delay, percentage: fractionalPercent(faultPercent(fault.delay)) };
  if (fault.abort) {
    const abort: Record<string, unknown> = { percentage: fractionalPercent(faultPercent(fault.abort)) };
    const g = fault.abort.grpcStatus;
    if (g !== undefined && g !== '') {
      const code = typeof g === 'number' ? g : (GRPC_CODES[String(g).toUpperCase()] ?? Number(g));
      abort.grpc_status = Number.isInteger(code) && code >= 0 ? code : GRPC_CODES.UNKNOWN;
    } else if (fault.abort.httpStatus !== undefined) {
      abort.http_status = fault.abort.httpStatus;
    }
    if (abort.grpc_status !== undefined || abort.http_status !== undefined) cfg.abort = abort;
  }
  if (!cfg.delay && !cfg.abort) return undefined;
  return packAny(FAULT_TYPE, cfg);
}

const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,503';

/** RetryPolicy for Istio retries; undefined when not configured or attempts is 0 (no implicit retries). */
export function retryPolicy(r: HTTPRetry | undefined): Record<string, unknown> | undefined {
  if (!r || !r.attempts || !(r.attempts > 0)) return undefined;
  const on: string[] = [];
  const codes: number[] = [];
  for (const raw of (r.retryOn ?? DEFAULT_RETRY_ON).split(',')) {
    const item = raw.trim();
    if (!item) continue;
    if (/^\d{3}$/.test(item)) codes.push(Number(item));
    else if (!on.includes(item)) on.push(item);
  }
  if (codes.length > 0 && !on.includes('retriable-status-codes')) on.push('retriable-status-codes');
  const policy: Record<string, unknown> = {
    retry_on: on.join(','),
    num_retries: { value: Math.floor(r.attempts) },
    retry_back_off: { base_interval: { seconds: 0, nanos: 25_000_000 }, max_interval: { seconds: 0, nanos: 250_000_000 } },
  };
  const perTry = duration(r.perTryTimeout);
  if (perTry) policy.per_try_timeout = perTry;
  if (codes.length > 0) policy.retriable_status_codes = codes;
  return policy;
}

/** RequestMirrorPolicy for a cluster at a percentage (default 100%). */
export function mirrorPolicy(cluster: string, pct: number | undefined): Record<string, unknown> {
  return { cluster, runtime_fraction: { default_value: fractionalPercent(pct ?? 100) } };
}

/** A route with no timeout: set explicitly so no proxy applies a hidden default. */
export const NO_TIMEOUT = { seconds: 0 };

/**
 * A RouteAction's timeout: the route's own when it sets one (0s included: no timeout), else the Mesh's
 * defaults.timeout, else none.
 */
export function routeTimeout(mesh: MeshSettings, own: string | undefined): object {
  return duration(own) ?? duration(mesh.defaults?.timeout) ?? NO_TIMEOUT;
}

/**
 * A RouteAction's retry policy: the route's own when it sets a retries block (attempts 0 included: no retries), else
 * the Mesh's defaults.retries (whose retryOn never allows non-idempotent methods), else none.
 */
export function routeRetryPolicy(mesh: MeshSettings, own: HTTPRetry | undefined): Record<string, unknown> | undefined {
  if (own !== undefined && own !== null) return retryPolicy(own);
  return retryPolicy(mesh.defaults?.retries);
}

/** Every cluster name a route refers to (route target, weighted entries, mirrors). */
export function clustersOfRoute(route: Record<string, any>): string[] {
  const out: string[] = [];
  const a = route.route;
  if (!a) return out;
  if (a.cluster) out.push(a.cluster);
  for (const c of a.weighted_clusters?.clusters ?? []) out.push(c.name);
  for (const m of a.request_mirror_policies ?? []) out.push(m.cluster);
  return out;
}
