// Gateway API HTTPRoute / GRPCRoute attached to a Service (GAMMA mesh semantics) -> Envoy Routes for one service port.
import type { ServiceInfo, ServicePort } from '../model.js';
import type { RouteContext } from './route-context.js';
import {
  type BackendRef,
  type GRPCRouteSpec,
  type GatewayFilter,
  type HTTPHeaderMatch,
  type HTTPRouteSpec,
  type ParentRef,
  type PathModifier,
  type Res,
  byAge,
  nsOf,
  ofKind,
  refOf,
} from './spec.js';
import {
  applyHeaderEdits,
  clusterSpecifier,
  mirrorPolicy,
  retryPolicy,
  routeRetryPolicy,
  routeTimeout,
  type WeightedDestination,
} from './route-parts.js';
import { duration, escapeRegex, msToDuration, parseDurationMs } from './util.js';
import { ruleName } from './vs-routes.js';

type GwRoute = Res<HTTPRouteSpec> | Res<GRPCRouteSpec>;

/** An HTTPRoute rule's `retry` (Gateway API, GEP-1731). */
export interface GatewayRetry {
  codes?: number[];
  attempts?: number;
  backoff?: string;
}

/** Retries when a rule names no `attempts` (Istio's default count). */
export const GATEWAY_DEFAULT_ATTEMPTS = 2;

/**
 * A rule's `retry` as a RetryPolicy: `codes` are the retriable statuses (added to the conditions that are always
 * safe to retry: connect failure, refused stream, gRPC unavailable/cancelled), `attempts` the retries (0 = none),
 * `backoff` the base interval (at most 10x between tries), `timeouts.backendRequest` each try's timeout.
 * Non-idempotent requests are not retried, as for every other route.
 */
export function gatewayRetryPolicy(r: GatewayRetry, backendRequest?: string): Record<string, unknown> | undefined {
  const codes = (Array.isArray(r.codes) ? r.codes : []).filter((n) => Number.isInteger(n) && n >= 100 && n <= 599);
  const attempts = typeof r.attempts === 'number' ? r.attempts : GATEWAY_DEFAULT_ATTEMPTS;
  const policy = retryPolicy({
    attempts,
    retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', ...codes.map(String)].join(','),
    ...(backendRequest ? { perTryTimeout: backendRequest } : {}),
  });
  const backoffMs = parseDurationMs(r.backoff);
  if (policy && backoffMs !== undefined && backoffMs > 0) {
    policy.retry_back_off = { base_interval: msToDuration(backoffMs), max_interval: msToDuration(backoffMs * 10) };
  }
  return policy;
}

function isServiceRef(p: ParentRef): boolean {
  return p.kind === 'Service' && (p.group === undefined || p.group === '' || p.group === 'core');
}

/**
 * HTTPRoutes and GRPCRoutes whose parentRefs select `svc` (and this port, when the ref names one), as GAMMA
 * defines them: a route in the service's namespace (producer route) applies to every caller; one in another
 * namespace (consumer route) applies only to callers in its namespace, and replaces producer routes for them.
 */
export function gatewayRoutesFor(ctx: RouteContext, svc: ServiceInfo, port: ServicePort): GwRoute[] {
  const attached = attachedRoutes(ctx, svc, port);
  const consumer = attached.filter((r) => nsOf(r) !== svc.namespace && nsOf(r) === ctx.caller.namespace);
  if (consumer.length > 0) return consumer;
  return attached.filter((r) => nsOf(r) === svc.namespace);
}

function attachedRoutes(ctx: RouteContext, svc: ServiceInfo, port: ServicePort): GwRoute[] {
  return ([...ofKind(ctx.resources, 'HTTPRoute'), ...ofKind(ctx.resources, 'GRPCRoute')] as GwRoute[])
    .filter((r) =>
      (r.spec?.parentRefs ?? []).some(
        (p) =>
          isServiceRef(p) &&
          ctx.index.resolve(p.name, p.namespace ?? nsOf(r)) === svc &&
          (p.port === undefined || p.port === port.port) &&
          // For a Service parent, the section is a port, by name.
          (p.sectionName === undefined || p.sectionName === port.name),
      ),
    )
    .sort(byAge);
}

interface Candidate {
  routeIndex: number; // position of the route resource in age order
  ruleIndex: number;
  name: string;
  match: Record<string, unknown>;
  rank: number[]; // larger sorts first
  rule: { filters?: GatewayFilter[]; backendRefs?: BackendRef[]; timeouts?: { request?: string; backendRequest?: string }; retry?: GatewayRetry };
  kind: string;
  ns: string;
}

function headerMatchers(list: HTTPHeaderMatch[] | undefined): object[] {
  return (list ?? []).map((h) => ({
    name: h.name.toLowerCase(),
    string_match: h.type === 'RegularExpression' ? { safe_regex: { regex: h.value } } : { exact: h.value },
  }));
}

function queryMatchers(list: HTTPHeaderMatch[] | undefined): object[] {
  return (list ?? []).map((q) => ({
    name: q.name,
    string_match: q.type === 'RegularExpression' ? { safe_regex: { regex: q.value } } : { exact: q.value },
  }));
}

/** HTTPRoute match -> one or two Envoy RouteMatches (a segment-aware PathPrefix needs `/p` and `/p/`). */
function httpMatches(m: NonNullable<HTTPRouteSpec['rules']>[number]['matches'] extends (infer T)[] | undefined ? T : never): {
  match: Record<string, unknown>;
  rank: number[];
  prefix?: string;
}[] {
  const base: Record<string, unknown> = {};
  const headers = headerMatchers(m.headers);
  if (m.method) headers.push({ name: ':method', string_match: { exact: m.method } });
  if (headers.length > 0) base.headers = headers;
  const qp = queryMatchers(m.queryParams);
  if (qp.length > 0) base.query_parameters = qp;
  const rankTail = [m.method ? 1 : 0, (m.headers ?? []).length, (m.queryParams ?? []).length];
  const type = m.path?.type ?? 'PathPrefix';
  const value = m.path?.value ?? '/';
  if (type === 'Exact') return [{ match: { path: value, ...base }, rank: [3, value.length, ...rankTail] }];
  if (type === 'RegularExpression')
    return [{ match: { safe_regex: { regex: value }, ...base }, rank: [2, value.length, ...rankTail] }];
  const trimmed = value.replace(/\/+$/, '');
  if (trimmed === '') return [{ match: { prefix: '/', ...base }, rank: [1, 1, ...rankTail], prefix: '/' }];
  const rank = [1, trimmed.length, ...rankTail];
  return [
    { match: { path: trimmed, ...base }, rank, prefix: trimmed },
    { match: { prefix: `${trimmed}/`, ...base }, rank, prefix: `${trimmed}/` },
  ];
}

function grpcMatch(m: NonNullable<GRPCRouteSpec['rules']>[number]['matches'] extends (infer T)[] | undefined ? T : never): {
  match: Record<string, unknown>;
  rank: number[];
} {
  const out: Record<string, unknown> = {};
  const meth = m.method;
  const svc = meth?.service;
  const method = meth?.method;
  if (meth?.type === 'RegularExpression') {
    out.safe_regex = { regex: `/${svc ?? '[^/]+'}/${method ?? '[^/]+'}` };
  } else if (svc && method) out.path = `/${svc}/${method}`;
  else if (svc) out.prefix = `/${svc}/`;
  else if (method) out.safe_regex = { regex: `/[^/]+/${escapeRegex(method)}` };
  else out.prefix = '/';
  const headers = headerMatchers(m.headers);
  if (headers.length > 0) out.headers = headers;
  const rank = [out.path ? 3 : out.safe_regex ? 2 : 1, (svc ?? '').length + (method ?? '').length, 0, (m.headers ?? []).length, 0];
  return { match: out, rank };
}

function compareRank(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (b[i] ?? 0) - (a[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function backendDests(ctx: RouteContext, c: Candidate, routed: { svc: ServiceInfo; port: ServicePort }): WeightedDestination[] {
  return (c.rule.backendRefs ?? [])
    .filter((b) => b.kind === undefined || b.kind === 'Service')
    .map((b) => {
      const d = ctx.destination(b.name, b.namespace ?? c.ns, b.port, undefined, routed);
      const dest: WeightedDestination = { cluster: d.cluster, weight: b.weight ?? 1 };
      for (const f of b.filters ?? []) {
        if (f.type === 'RequestHeaderModifier') dest.request = modifierOps(f.requestHeaderModifier);
        if (f.type === 'ResponseHeaderModifier') dest.response = modifierOps(f.responseHeaderModifier);
      }
      return dest;
    });
}

function modifierOps(m: GatewayFilter['requestHeaderModifier']) {
  return {
    set: Object.fromEntries((m?.set ?? []).map((h) => [h.name, h.value])),
    add: Object.fromEntries((m?.add ?? []).map((h) => [h.name, h.value])),
    remove: m?.remove ?? [],
  };
}

const REDIRECT_CODES: Record<number, string> = { 301: 'MOVED_PERMANENTLY', 302: 'FOUND', 303: 'SEE_OTHER', 307: 'TEMPORARY_REDIRECT', 308: 'PERMANENT_REDIRECT' };

function pathRewrite(p: PathModifier | undefined, matchedPrefix: string | undefined) {
  if (!p) return {};
  if (p.type === 'ReplaceFullPath' && p.replaceFullPath !== undefined)
    return { regex_rewrite: { pattern: { regex: '^/.*$' }, substitution: p.replaceFullPath } };
  if (p.type === 'ReplacePrefixMatch' && p.replacePrefixMatch !== undefined) {
    let repl = p.replacePrefixMatch;
    // The `/p/` half of a segment prefix keeps its separator.
    if (matchedPrefix && matchedPrefix !== '/' && matchedPrefix.endsWith('/') && !repl.endsWith('/')) repl = `${repl}/`;
    return { prefix_rewrite: repl };
  }
  return {};
}

function buildRoute(
  ctx: RouteContext,
  c: Candidate,
  routed: { svc: ServiceInfo; port: ServicePort },
  matchedPrefix: string | undefined,
): Record<string, unknown> | undefined {
  const route: Record<string, unknown> = { name: c.name, match: c.match };
  const filters = c.rule.filters ?? [];
  const redirect = filters.find((f) => f.type === 'RequestRedirect')?.requestRedirect;
  if (redirect) {
    if (ctx.caller.proxyless) return undefined;
    const red: Record<string, unknown> = {};
    if (redirect.scheme) red.scheme_redirect = redirect.scheme;
    if (redirect.hostname) red.host_redirect = redirect.hostname;
    if (redirect.port) red.port_redirect = redirect.port;
    if (redirect.path?.type === 'ReplaceFullPath' && redirect.path.replaceFullPath !== undefined)
      red.path_redirect = redirect.path.replaceFullPath;
    else if (redirect.path?.type === 'ReplacePrefixMatch' && redirect.path.replacePrefixMatch !== undefined)
      red.prefix_rewrite = redirect.path.replacePrefixMatch;
    red.response_code = REDIRECT_CODES[redirect.statusCode ?? 302] ?? 'FOUND';
    route.redirect = red;
  } else {
    const dests = backendDests(ctx, c, routed);
    if (dests.length === 0 || dests.every((d) => d.weight <= 0)) {
      if (ctx.caller.proxyless) return undefined;
      route.direct_response = { status: 500 }; // Gateway API: no usable backend -> 500
    } else {
      const a: Record<string, unknown> = { ...clusterSpecifier(dests, route) };
      const t = c.rule.timeouts;
      const own = c.rule.retry;
      // With retries, backendRequest bounds each try; without, it is the only bound there is.
      a.timeout = routeTimeout(ctx.mesh, duration(t?.request) || own ? t?.request : t?.backendRequest);
      const retry = own !== undefined && own !== null ? gatewayRetryPolicy(own, t?.backendRequest) : routeRetryPolicy(ctx.mesh, undefined);
      if (retry) a.retry_policy = retry;
      const rw = filters.find((f) => f.type === 'URLRewrite')?.urlRewrite;
      if (rw?.hostname) a.host_rewrite_literal = rw.hostname;
      Object.assign(a, pathRewrite(rw?.path, matchedPrefix));
      const mirrors = filters
        .filter((f) => f.type === 'RequestMirror' && f.requestMirror)
        .map((f) => {
          const m = f.requestMirror!;
          const d = ctx.destination(m.backendRef.name, m.backendRef.namespace ?? c.ns, m.backendRef.port, undefined, routed);
          const pct = m.percent ?? (m.fraction ? (100 * m.fraction.numerator) / (m.fraction.denominator ?? 100) : undefined);
          return mirrorPolicy(d.cluster, pct);
        });
      if (mirrors.length > 0) a.request_mirror_policies = mirrors;
      const firstSvc = ctx.index.services.find((s) => dests[0].cluster.endsWith(`|${s.fqdn}`));
      const hp = ctx.hashPolicyFor(firstSvc, Number(dests[0].cluster.split('|')[1]), undefined);
      if (hp.length > 0) a.hash_policy = hp;
      route.route = a;
    }
  }
  for (const f of filters) {
    if (f.type === 'RequestHeaderModifier') applyHeaderEdits(route, modifierOps(f.requestHeaderModifier), undefined);
    if (f.type === 'ResponseHeaderModifier') applyHeaderEdits(route, undefined, modifierOps(f.responseHeaderModifier));
  }
  return route;
}

/** Envoy routes for `svc`:`port` from every HTTPRoute/GRPCRoute attached to it, in Gateway API precedence order. */
export function gatewayRoutes(ctx: RouteContext, attached: GwRoute[], svc: ServiceInfo, port: ServicePort): object[] {
  const cands: (Candidate & { prefix?: string })[] = [];
  attached.forEach((r, routeIndex) => {
    const ns = nsOf(r);
    (r.spec?.rules ?? []).forEach((rule, ruleIndex) => {
      const name = ruleName(refOf(r), (rule as { name?: string }).name, ruleIndex);
      if (r.kind === 'GRPCRoute') {
        const ms = (rule as NonNullable<GRPCRouteSpec['rules']>[number]).matches;
        for (const m of ms && ms.length > 0 ? ms : [{}]) {
          const { match, rank } = grpcMatch(m);
          cands.push({ routeIndex, ruleIndex, name, match, rank, rule, kind: r.kind, ns });
        }
      } else {
        const ms = (rule as NonNullable<HTTPRouteSpec['rules']>[number]).matches;
        for (const m of ms && ms.length > 0 ? ms : [{}])
          for (const { match, rank, prefix } of httpMatches(m))
            cands.push({ routeIndex, ruleIndex, name, match, rank, rule, kind: r.kind, ns, prefix });
      }
    });
  });
  cands.sort((a, b) => compareRank(a.rank, b.rank) || a.routeIndex - b.routeIndex || a.ruleIndex - b.ruleIndex);
  const out: object[] = [];
  for (const c of cands) {
    const r = buildRoute(ctx, c, { svc, port }, c.prefix);
    if (r) out.push(r);
  }
  return out;
}
