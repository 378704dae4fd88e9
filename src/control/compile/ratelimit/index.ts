// RateLimitPolicy -> the inbound envoy.filters.http.local_ratelimit filter of one workload (descriptors carry per-policy limits).
import type { RateLimit, RateLimitPolicySpec, Resource } from '../../../api/types.js';
import { LOCAL_RATELIMIT_TYPE, type AnyMessage } from '../../../xds/protos.js';
import type { MeshSettings, WorkloadInstance } from '../../model.js';
import { selectPolicies } from '../authz/index.js';
import { pack } from '../pack.js';
import { fractionalPercent, msToDuration, parseDurationMs } from '../util.js';

export const LOCAL_RATELIMIT_FILTER = 'envoy.filters.http.local_ratelimit';

/** Descriptor entry keys; the proxy's rate-limiter reads the same strings (see src/proxy/resilience/rate-limiter.ts). */
export const DESCRIPTOR_POLICY = 'trellis.policy';
export const DESCRIPTOR_CALLER = 'source.principal';
export const DESCRIPTOR_PATH = 'trellis.path';
export const DESCRIPTOR_ROUTE = 'trellis.route';
/** The route name of every inbound HTTP route configuration (see listeners.ts). */
export const INBOUND_ROUTE = 'inbound';

export interface RateLimitFilter {
  name: typeof LOCAL_RATELIMIT_FILTER;
  typed_config: AnyMessage;
}

interface TokenBucket {
  max_tokens: number;
  tokens_per_fill: { value: number };
  fill_interval: { seconds: number; nanos?: number };
}

const MAX_U32 = 0xffff_ffff;
/** Envoy refuses fill intervals under 50 ms; shorter windows are scaled up at the same rate. */
const MIN_FILL_MS = 50;

function ref(r: Resource): string {
  return `${r.metadata?.namespace || 'default'}/${String(r.metadata?.name ?? '')}`;
}

/** {requests, per} -> TokenBucket (burst = requests), or undefined with a warning naming the field. */
function bucket(limit: RateLimit | undefined, where: string, warnings: string[]): TokenBucket | undefined {
  if (limit === undefined || limit === null) return undefined;
  if (typeof limit !== 'object') {
    warnings.push(`${where}: expected {requests, per}; limit ignored`);
    return undefined;
  }
  const requests = Number(limit.requests);
  const perMs = typeof limit.per === 'string' ? parseDurationMs(limit.per) : undefined;
  if (!Number.isInteger(requests) || requests < 1) {
    warnings.push(`${where}.requests: expected a whole number >= 1, got ${JSON.stringify(limit.requests)}; limit ignored`);
    return undefined;
  }
  if (perMs === undefined || !(perMs > 0)) {
    warnings.push(`${where}.per: expected a duration such as 1s or 1m, got ${JSON.stringify(limit.per)}; limit ignored`);
    return undefined;
  }
  let tokens = Math.min(requests, MAX_U32);
  let ms = perMs;
  if (ms < MIN_FILL_MS) {
    const k = Math.ceil(MIN_FILL_MS / ms);
    tokens = Math.min(tokens * k, MAX_U32);
    ms *= k;
  }
  return { max_tokens: tokens, tokens_per_fill: { value: tokens }, fill_interval: msToDuration(ms) };
}

function rate(b: TokenBucket): number {
  return b.tokens_per_fill.value / (b.fill_interval.seconds * 1000 + (b.fill_interval.nanos ?? 0) / 1e6);
}

function strings(v: unknown, where: string, warnings: string[]): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    warnings.push(`${where}: expected a list of strings; ignored`);
    return [];
  }
  const out: string[] = [];
  for (const s of v) {
    if (typeof s === 'string' && s !== '') out.push(s);
    else warnings.push(`${where}: entry ${JSON.stringify(s)} is not a non-empty string; ignored`);
  }
  return out;
}

/**
 * The local_ratelimit HTTP filter for `workload`'s inbound listener, or undefined when no
 * RateLimitPolicy applies. Policies are chosen like AuthorizationPolicy (selector in the workload's
 * namespace or a root namespace, or targetRef to a Service the workload is a member of).
 *
 * Shape: one descriptor per limit (see DESCRIPTOR_*), plus the filter-level token_bucket set to the
 * slowest unrestricted total limit, which its policy then does not repeat as a descriptor. Envoy enforces
 * that filter-level bucket; Envoy only fills descriptors from route rate_limits actions, which Trellis
 * does not emit, so per-caller, per-path and per-route limits are enforced by the Trellis proxy only.
 */
export function compileRateLimits(
  policies: Resource<RateLimitPolicySpec>[],
  workload: WorkloadInstance,
  mesh: MeshSettings,
  warnings: string[] = [],
): RateLimitFilter | undefined {
  const selected = selectPolicies(policies, workload, mesh, warnings);
  type Limit = { policy: string; total?: TokenBucket; perCaller?: TokenBucket; paths: string[]; routes: string[] };
  const limits: Limit[] = [];
  for (const p of selected) {
    const where = `RateLimitPolicy ${ref(p)}`;
    const spec = (p.spec ?? {}) as Partial<RateLimitPolicySpec>;
    const l = spec.limits && typeof spec.limits === 'object' ? spec.limits : undefined;
    const total = bucket(l?.total, `${where}: spec.limits.total`, warnings);
    const perCaller = bucket(l?.perCaller, `${where}: spec.limits.perCaller`, warnings);
    if (!total && !perCaller) {
      warnings.push(`${where}: no usable limit (set spec.limits.total and/or spec.limits.perCaller); policy ignored`);
      continue;
    }
    const routes = strings(spec.routes, `${where}: spec.routes`, warnings);
    // The limit runs in the destination's proxy, which never sees the caller's route names.
    const unknownRoutes = routes.filter((r) => r !== INBOUND_ROUTE);
    if (unknownRoutes.length > 0) {
      warnings.push(
        `${where}: spec.routes ${unknownRoutes.map((r) => JSON.stringify(r)).join(', ')} never match: the limit is enforced by the destination's proxy, whose only route is "${INBOUND_ROUTE}" (callers' route names do not reach it); use spec.paths to limit part of a service`,
      );
    }
    limits.push({
      policy: ref(p),
      total,
      perCaller,
      paths: strings(spec.paths, `${where}: spec.paths`, warnings),
      routes,
    });
  }
  if (limits.length === 0) return undefined;

  let top: Limit | undefined;
  for (const l of limits) {
    if (!l.total || l.paths.length > 0 || l.routes.length > 0) continue;
    if (!top || rate(l.total) < rate(top.total!)) top = l;
  }
  const descriptors: object[] = [];
  for (const l of limits) {
    const common = [
      { key: DESCRIPTOR_POLICY, value: l.policy },
      ...l.paths.map((value) => ({ key: DESCRIPTOR_PATH, value })),
      ...l.routes.map((value) => ({ key: DESCRIPTOR_ROUTE, value })),
    ];
    if (l.total && l !== top) descriptors.push({ entries: common, token_bucket: l.total });
    if (l.perCaller) descriptors.push({ entries: [common[0], { key: DESCRIPTOR_CALLER, value: '*' }, ...common.slice(1)], token_bucket: l.perCaller });
  }
  const always = { default_value: fractionalPercent(100), runtime_key: 'trellis_local_rate_limit' };
  const config: Record<string, unknown> = {
    stat_prefix: `ratelimit|${top ? top.policy : `${workload.namespace}/${workload.name}`}`,
    status: { code: 'TooManyRequests' },
    filter_enabled: always,
    filter_enforced: always,
    response_headers_to_add: [{ header: { key: 'x-trellis-error', value: 'rate_limited' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
  };
  if (top) config.token_bucket = top.total;
  if (descriptors.length > 0) config.descriptors = descriptors;
  return { name: LOCAL_RATELIMIT_FILTER, typed_config: pack(LOCAL_RATELIMIT_TYPE, config) };
}
