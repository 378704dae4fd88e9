// Compiles an xDS RouteConfiguration into a RouteTable: domain index, compiled matchers, precomputed decisions.
import { DomainIndex } from './domains.js';
import { decodeFault, FAULT_FILTER_NAME } from './fault.js';
import { compileHeaderOps, EMPTY_HEADER_OPS, type HeaderLevel, type HeaderOps } from './headers.js';
import { compileMatchers, type HeaderMatch, type QueryMatch } from './matchers.js';
import {
  asArray,
  asMsg,
  asString,
  compileRe2,
  durationMs,
  fractionalPercent,
  literalPrefix,
  re2Substitution,
  wrappedBool,
  wrappedNumber,
  type Msg,
} from './proto.js';
import { compileRedirect, type CompiledRedirect } from './redirect.js';
import type { DirectDecision, FaultPolicy, ForwardDecision, HashPolicy, PathRewrite, RetryPolicy, RouteDecision } from './types.js';

/** A decoded envoy.config.route.v3.RouteConfiguration (snake_case, as `unpackAny` produces). */
export interface RouteConfigurationObject {
  name?: string;
  virtual_hosts?: unknown[];
  request_headers_to_add?: unknown[];
  request_headers_to_remove?: string[];
  response_headers_to_add?: unknown[];
  response_headers_to_remove?: string[];
  most_specific_header_mutations_wins?: boolean;
  [field: string]: unknown;
}

/** Envoy's route timeout when RouteAction.timeout is unset; an explicit 0s disables it. */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;

// Path match kinds
export const P_PREFIX = 0;
export const P_PATH = 1;
export const P_REGEX = 2;
export const P_SEPARATED_PREFIX = 3;
export const P_CONNECT = 4;
export const P_NEVER = 5;

// Action kinds
export const A_FIXED = 0; // a shared forward or direct decision
export const A_WEIGHTED = 1;
export const A_REDIRECT = 2;

export interface CompiledRoute {
  name: string;
  pathKind: number;
  /** Lowercased when !caseSensitive; for regexes, the literal prefix every match starts with. */
  pathValue: string;
  /** pathValue + '/' for path_separated_prefix. */
  pathValueSlash: string;
  caseSensitive: boolean;
  re: RegExp | undefined;
  headers: HeaderMatch[];
  query: QueryMatch[];
  grpc: boolean;
  /** Probability that a request otherwise matching is taken (RouteMatch.runtime_fraction); 1 = always. */
  fraction: number;
  action: number;
  fixed: ForwardDecision | DirectDecision | undefined;
  /** Cumulative weights, parallel to `weighted`. */
  cumulative: Float64Array | undefined;
  totalWeight: number;
  weighted: ForwardDecision[] | undefined;
  redirect: CompiledRedirect | undefined;
  redirectHeaders: HeaderOps;
}

export interface CompiledVirtualHost {
  name: string;
  routes: CompiledRoute[];
}

export interface RouteTable {
  name: string;
  virtualHosts: CompiledVirtualHost[];
  index: DomainIndex<CompiledVirtualHost>;
  /** Everything that was ignored or made a route unmatchable, each naming where. Never thrown. */
  warnings: string[];
}

const KNOWN_MATCH_FIELDS = new Set([
  'prefix', 'path', 'safe_regex', 'path_separated_prefix', 'connect_matcher', 'path_specifier',
  'case_sensitive', 'headers', 'query_parameters', 'grpc', 'runtime_fraction',
]);
const KNOWN_ROUTE_FIELDS = new Set([
  'name', 'match', 'route', 'redirect', 'direct_response', 'action', 'typed_per_filter_config',
  'request_headers_to_add', 'request_headers_to_remove', 'response_headers_to_add', 'response_headers_to_remove',
  'metadata', 'decorator', 'stat_prefix', 'per_request_buffer_limit_bytes', 'tracing',
]);
const KNOWN_ACTION_FIELDS = new Set([
  'cluster', 'weighted_clusters', 'cluster_specifier', 'timeout', 'idle_timeout', 'retry_policy',
  'prefix_rewrite', 'regex_rewrite', 'host_rewrite_literal', 'host_rewrite_specifier', 'request_mirror_policies',
  'hash_policy', 'priority', 'cluster_not_found_response_code', 'upgrade_configs', 'max_stream_duration',
  'append_x_forwarded_host', 'cluster_header', 'cluster_specifier_plugin', 'inline_cluster_specifier_plugin',
]);
const KNOWN_VHOST_FIELDS = new Set([
  'name', 'domains', 'routes', 'retry_policy', 'typed_per_filter_config', 'request_headers_to_add',
  'request_headers_to_remove', 'response_headers_to_add', 'response_headers_to_remove', 'metadata',
  'include_request_attempt_count', 'include_attempt_count_in_response', 'per_request_buffer_limit_bytes',
]);

/** True for values a decoder with `defaults: true` would fill in: they mean "unset". */
function isUnset(v: unknown): boolean {
  return v === undefined || v === null || v === '' || v === false || v === 0 || (Array.isArray(v) && v.length === 0);
}

function unknownFields(m: Msg, known: Set<string>): string[] {
  const out: string[] = [];
  for (const k of Object.keys(m)) if (!known.has(k) && !isUnset(m[k])) out.push(k);
  return out;
}

const EMPTY_FILTER_CONFIG: Readonly<Record<string, unknown>> = Object.freeze({});

interface Ctx {
  warnings: string[];
  mostSpecificWins: boolean;
  rc: HeaderSet;
}

interface HeaderSet {
  req: HeaderLevel;
  resp: HeaderLevel;
}

function headerSet(m: Msg): HeaderSet {
  return {
    req: { toAdd: m.request_headers_to_add, toRemove: m.request_headers_to_remove },
    resp: { toAdd: m.response_headers_to_add, toRemove: m.response_headers_to_remove },
  };
}

/** Levels from most to least specific, in Envoy's evaluation order (later wins on conflicts). */
function ordered(ctx: Ctx, mostSpecificFirst: HeaderLevel[]): HeaderLevel[] {
  return ctx.mostSpecificWins ? mostSpecificFirst.slice().reverse() : mostSpecificFirst;
}

export function compileRouteTable(rc: RouteConfigurationObject): RouteTable {
  const warnings: string[] = [];
  const rcMsg = (asMsg(rc) ?? {}) as Msg;
  const ctx: Ctx = {
    warnings,
    mostSpecificWins: wrappedBool(rcMsg.most_specific_header_mutations_wins) === true,
    rc: headerSet(rcMsg),
  };
  const index = new DomainIndex<CompiledVirtualHost>();
  const virtualHosts: CompiledVirtualHost[] = [];
  const seenNames = new Set<string>();
  asArray(rcMsg.virtual_hosts).forEach((rawVh, vi) => {
    const vh = asMsg(rawVh) ?? {};
    const name = asString(vh.name) || `virtual_hosts[${vi}]`;
    if (seenNames.has(name)) warnings.push(`virtual host ${name}: duplicate name`);
    seenNames.add(name);
    for (const f of unknownFields(vh, KNOWN_VHOST_FIELDS)) warnings.push(`virtual host ${name}: field '${f}' is not supported and was ignored`);
    const compiled: CompiledVirtualHost = { name, routes: [] };
    asArray(vh.routes).forEach((rawRoute, ri) => {
      compiled.routes.push(compileRoute(asMsg(rawRoute) ?? {}, ri, vh, name, ctx));
    });
    const domains = asArray(vh.domains).filter((d): d is string => typeof d === 'string' && d !== '');
    if (domains.length === 0) warnings.push(`virtual host ${name}: no domains; never selected`);
    for (const d of index.addVirtualHost(domains, compiled)) {
      warnings.push(`virtual host ${name}: domain ${d} already belongs to an earlier virtual host; ignored here`);
    }
    virtualHosts.push(compiled);
  });
  index.seal();
  return { name: asString(rcMsg.name) ?? '', virtualHosts, index, warnings };
}

function never(name: string): CompiledRoute {
  return {
    name,
    pathKind: P_NEVER,
    pathValue: '',
    pathValueSlash: '',
    caseSensitive: true,
    re: undefined,
    headers: [],
    query: [],
    grpc: false,
    fraction: 1,
    action: A_FIXED,
    fixed: undefined,
    cumulative: undefined,
    totalWeight: 0,
    weighted: undefined,
    redirect: undefined,
    redirectHeaders: EMPTY_HEADER_OPS,
  };
}

function compileRoute(r: Msg, ri: number, vh: Msg, vhName: string, ctx: Ctx): CompiledRoute {
  const name = asString(r.name) || `${vhName}#${ri}`;
  const where = `route ${name}`;
  const w = ctx.warnings;
  const out = never(name);
  const match = asMsg(r.match) ?? {};
  const errors: string[] = [];

  // --- match ---
  for (const f of unknownFields(match, KNOWN_MATCH_FIELDS)) errors.push(`match field '${f}' is not supported`);
  out.caseSensitive = wrappedBool(match.case_sensitive) ?? true;
  const spec =
    asString(match.path_specifier) ??
    ['prefix', 'path', 'safe_regex', 'path_separated_prefix', 'connect_matcher'].find((k) => match[k] !== undefined && match[k] !== null);
  let matchedPrefix: string | undefined;
  switch (spec) {
    case 'prefix':
      out.pathKind = P_PREFIX;
      matchedPrefix = asString(match.prefix) ?? '';
      out.pathValue = out.caseSensitive ? matchedPrefix : matchedPrefix.toLowerCase();
      break;
    case 'path':
      out.pathKind = P_PATH;
      matchedPrefix = asString(match.path) ?? '';
      out.pathValue = out.caseSensitive ? matchedPrefix : matchedPrefix.toLowerCase();
      break;
    case 'path_separated_prefix':
      out.pathKind = P_SEPARATED_PREFIX;
      matchedPrefix = asString(match.path_separated_prefix) ?? '';
      out.pathValue = out.caseSensitive ? matchedPrefix : matchedPrefix.toLowerCase();
      out.pathValueSlash = out.pathValue + '/';
      break;
    case 'safe_regex': {
      // case_sensitive does not apply to regexes (Envoy); the pattern must match the whole path
      const pattern = asString(asMsg(match.safe_regex)?.regex) ?? '';
      const re = compileRe2(pattern, true);
      if (typeof re === 'string') errors.push(re);
      else {
        out.pathKind = P_REGEX;
        out.re = re;
        out.pathValue = literalPrefix(pattern); // a cheap startsWith before the regex
      }
      break;
    }
    case 'connect_matcher':
      out.pathKind = P_CONNECT;
      break;
    default:
      errors.push(spec ? `path specifier '${spec}' is not supported` : 'match has no path specifier');
  }
  const m = compileMatchers(match, errors);
  out.headers = m.headers;
  out.query = m.query;
  out.grpc = match.grpc !== undefined && match.grpc !== null;
  const rf = asMsg(match.runtime_fraction);
  if (rf) out.fraction = fractionalPercent(rf.default_value);

  // --- action ---
  for (const f of unknownFields(r, KNOWN_ROUTE_FIELDS)) {
    if (f === 'filter_action' || f === 'non_forwarding_action') errors.push(`action '${f}' is not supported`);
    else w.push(`${where}: field '${f}' is not supported and was ignored`);
  }
  const routeHeaders = headerSet(r);
  const vhHeaders = headerSet(vh);
  const action = asString(r.action) ?? ['route', 'redirect', 'direct_response'].find((k) => r[k] !== undefined && r[k] !== null);
  const respOps = compileHeaderOps(ordered(ctx, [routeHeaders.resp, vhHeaders.resp, ctx.rc.resp]), w, where);
  if (action === 'redirect') {
    out.action = A_REDIRECT;
    out.redirect = compileRedirect(r.redirect, out.pathKind === P_REGEX ? undefined : matchedPrefix, w, where);
    out.redirectHeaders = respOps;
  } else if (action === 'direct_response') {
    const d = asMsg(r.direct_response) ?? {};
    const status = Number(d.status ?? 200);
    // Node throws on a status outside 100..599; Envoy rejects such config
    if (!Number.isInteger(status) || status < 100 || status > 599) errors.push(`direct_response status ${String(d.status)} is not a valid HTTP status`);
    const decision: DirectDecision = { kind: 'direct', routeName: name, status, responseHeaders: respOps };
    const body = asMsg(d.body);
    if (body) {
      if (typeof body.inline_string === 'string') decision.body = body.inline_string;
      else if (body.inline_bytes instanceof Uint8Array) decision.body = Buffer.from(body.inline_bytes).toString('utf8');
      else if (typeof body.inline_bytes === 'string') decision.body = Buffer.from(body.inline_bytes, 'base64').toString('utf8');
      else w.push(`${where}: direct_response body source is not supported (only inline); sent without a body`);
    }
    out.fixed = Object.freeze(decision);
  } else if (action === 'route') {
    compileForward(out, asMsg(r.route) ?? {}, r, vh, vhName, matchedPrefix, ctx, errors, where, routeHeaders, vhHeaders, respOps);
  } else {
    errors.push(action ? `action '${action}' is not supported` : 'route has no action');
  }

  if (errors.length > 0) {
    for (const e of errors) w.push(`${where}: ${e}; the route never matches`);
    const dead = never(name);
    return dead;
  }
  return out;
}

function compileForward(
  out: CompiledRoute,
  a: Msg,
  r: Msg,
  vh: Msg,
  vhName: string,
  matchedPrefix: string | undefined,
  ctx: Ctx,
  errors: string[],
  where: string,
  routeHeaders: HeaderSet,
  vhHeaders: HeaderSet,
  respOps: HeaderOps,
): void {
  const w = ctx.warnings;
  for (const f of unknownFields(a, KNOWN_ACTION_FIELDS)) w.push(`${where}: route field '${f}' is not supported and was ignored`);
  if (a.upgrade_configs !== undefined && !isUnset(a.upgrade_configs)) w.push(`${where}: upgrade_configs ignored (upgrades follow the listener)`);

  const timeout = durationMs(a.timeout);
  const timeoutMs = timeout === undefined ? DEFAULT_ROUTE_TIMEOUT_MS : Math.max(0, timeout);
  const idle = durationMs(a.idle_timeout);
  const retry = decodeRetry(asMsg(a.retry_policy) ?? asMsg(vh.retry_policy), w, where);

  const rewrite: PathRewrite = {};
  const prefixRewrite = asString(a.prefix_rewrite);
  const regexRewrite = asMsg(a.regex_rewrite);
  if (prefixRewrite !== undefined && a.prefix_rewrite !== '' ) {
    if (matchedPrefix === undefined) w.push(`${where}: prefix_rewrite needs a prefix or path match; ignored`);
    else rewrite.prefix = { from: matchedPrefix, to: prefixRewrite };
    if (regexRewrite) w.push(`${where}: both prefix_rewrite and regex_rewrite set; regex_rewrite ignored`);
  } else if (regexRewrite) {
    const re = compileRe2(asString(asMsg(regexRewrite.pattern)?.regex) ?? '', false, 'g');
    if (typeof re === 'string') w.push(`${where}: regex_rewrite ignored: ${re}`);
    else rewrite.regex = { re, substitution: re2Substitution(asString(regexRewrite.substitution) ?? '') };
  }
  const hostSpec = asString(a.host_rewrite_specifier);
  if (typeof a.host_rewrite_literal === 'string' && a.host_rewrite_literal !== '') rewrite.host = a.host_rewrite_literal;
  else if (hostSpec && hostSpec !== 'host_rewrite_literal') w.push(`${where}: ${hostSpec} is not supported; Host left unchanged`);

  const mirrors: { cluster: string; fraction: number }[] = [];
  for (const raw of asArray(a.request_mirror_policies)) {
    const mp = asMsg(raw) ?? {};
    const cluster = asString(mp.cluster);
    if (!cluster) {
      w.push(`${where}: mirror policy without a cluster ignored`);
      continue;
    }
    const rf = asMsg(mp.runtime_fraction);
    mirrors.push(Object.freeze({ cluster, fraction: rf ? fractionalPercent(rf.default_value) : 1 }));
  }
  const hashPolicies = decodeHashPolicies(asArray(a.hash_policy), w, where);

  const vhFilters = asMsg(vh.typed_per_filter_config);
  const routeFilters = asMsg(r.typed_per_filter_config);
  const filterConfig = mergeFilterConfig(vhFilters, routeFilters);
  const faultEntry = routeFilters?.[FAULT_FILTER_NAME] ?? vhFilters?.[FAULT_FILTER_NAME];
  const fault = faultEntry === undefined ? undefined : decodeFault(faultEntry, w, where);

  const base = {
    timeoutMs,
    idleTimeoutMs: idle,
    retry,
    rewrite: Object.keys(rewrite).length > 0 ? Object.freeze(rewrite) : undefined,
    mirrors: Object.freeze(mirrors) as { cluster: string; fraction: number }[],
    hashPolicies: Object.freeze(hashPolicies) as HashPolicy[],
  };
  const make = (cluster: string, reqOps: HeaderOps, resOps: HeaderOps, f: FaultPolicy | undefined, fc: Readonly<Record<string, unknown>>, rw: PathRewrite | undefined): ForwardDecision => {
    const d: ForwardDecision = {
      kind: 'forward',
      routeName: out.name,
      virtualHost: vhName,
      cluster,
      timeoutMs: base.timeoutMs,
      requestHeaders: reqOps,
      responseHeaders: resOps,
      mirrors: base.mirrors,
      hashPolicies: base.hashPolicies,
      filterConfig: fc,
    };
    // optional fields only when set, so every decision has a predictable shape for readers
    if (base.idleTimeoutMs !== undefined) d.idleTimeoutMs = base.idleTimeoutMs;
    if (base.retry) d.retry = base.retry;
    if (rw) d.rewrite = rw;
    if (f) d.fault = f;
    return Object.freeze(d);
  };

  const spec =
    asString(a.cluster_specifier) ??
    ['cluster', 'weighted_clusters', 'cluster_header', 'cluster_specifier_plugin', 'inline_cluster_specifier_plugin'].find(
      (k) => a[k] !== undefined && a[k] !== null,
    );
  if (spec === 'cluster' && asString(a.cluster)) {
    const reqOps = compileHeaderOps(ordered(ctx, [routeHeaders.req, vhHeaders.req, ctx.rc.req]), w, where);
    out.action = A_FIXED;
    out.fixed = make(a.cluster as string, reqOps, respOps, fault, filterConfig, base.rewrite);
    return;
  }
  if (spec === 'weighted_clusters') {
    const wc = asMsg(a.weighted_clusters) ?? {};
    const decisions: ForwardDecision[] = [];
    const cum: number[] = [];
    let total = 0;
    for (const raw of asArray(wc.clusters)) {
      const cw = asMsg(raw) ?? {};
      const cname = asString(cw.name);
      if (!cname) {
        w.push(`${where}: weighted cluster without a name ignored`);
        continue;
      }
      const weight = wrappedNumber(cw.weight) ?? 0;
      if (!(weight > 0)) continue;
      const cwHeaders = headerSet(cw);
      const reqOps = compileHeaderOps(ordered(ctx, [cwHeaders.req, routeHeaders.req, vhHeaders.req, ctx.rc.req]), w, where);
      const resOps = compileHeaderOps(ordered(ctx, [cwHeaders.resp, routeHeaders.resp, vhHeaders.resp, ctx.rc.resp]), w, where);
      const cwFilters = asMsg(cw.typed_per_filter_config);
      let f = fault;
      let fc = filterConfig;
      if (cwFilters && Object.keys(cwFilters).length > 0) {
        fc = mergeFilterConfig(filterConfig as Msg, cwFilters);
        if (cwFilters[FAULT_FILTER_NAME] !== undefined) f = decodeFault(cwFilters[FAULT_FILTER_NAME], w, `${where} cluster ${cname}`);
      }
      let rw = base.rewrite;
      if (typeof cw.host_rewrite_literal === 'string' && cw.host_rewrite_literal !== '') {
        rw = Object.freeze({ ...(rw ?? {}), host: cw.host_rewrite_literal });
      }
      total += weight;
      cum.push(total);
      decisions.push(make(cname, reqOps, resOps, f, fc, rw));
    }
    if (decisions.length === 0) {
      errors.push('weighted_clusters has no cluster with a positive weight');
      return;
    }
    out.action = A_WEIGHTED;
    out.weighted = decisions;
    out.cumulative = Float64Array.from(cum);
    out.totalWeight = total;
    return;
  }
  errors.push(spec ? `cluster specifier '${spec}' is not supported` : 'route action names no cluster');
}

function mergeFilterConfig(outer: Msg | undefined, inner: Msg | undefined): Readonly<Record<string, unknown>> {
  const hasOuter = outer !== undefined && Object.keys(outer).length > 0;
  const hasInner = inner !== undefined && Object.keys(inner).length > 0;
  if (!hasOuter && !hasInner) return EMPTY_FILTER_CONFIG;
  return Object.freeze({ ...(outer ?? {}), ...(inner ?? {}) });
}

/** envoy.config.route.v3.RetryPolicy -> RetryPolicy (Envoy defaults: 1 retry, 25 ms base back-off, max 10x base). */
export function decodeRetry(p: Msg | undefined, warnings: string[], where: string): RetryPolicy | undefined {
  if (!p) return undefined;
  const retryOn = new Set(
    (asString(p.retry_on) ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  );
  const numRetries = p.num_retries === undefined || p.num_retries === null ? 1 : wrappedNumber(p.num_retries) ?? 1;
  const backOff = asMsg(p.retry_back_off) ?? {};
  const base = durationMs(backOff.base_interval) ?? 25;
  const max = durationMs(backOff.max_interval) ?? base * 10;
  const codes = asArray(p.retriable_status_codes).map(Number).filter((n) => Number.isInteger(n));
  for (const f of ['retriable_headers', 'retriable_request_headers', 'retry_priority', 'rate_limited_retry_back_off']) {
    if (!isUnset(p[f])) warnings.push(`${where}: retry field '${f}' is not supported and was ignored`);
  }
  return Object.freeze({
    retryOn,
    numRetries,
    perTryTimeoutMs: durationMs(p.per_try_timeout) ?? 0,
    backoffBaseMs: base,
    backoffMaxMs: Math.max(max, base),
    retriableStatusCodes: Object.freeze(codes) as number[],
  });
}

/** RouteAction.hash_policy -> HashPolicy[]; unsupported kinds are dropped with a warning. */
export function decodeHashPolicies(list: unknown[], warnings: string[], where: string): HashPolicy[] {
  const out: HashPolicy[] = [];
  for (const raw of list) {
    const h = asMsg(raw) ?? {};
    const terminal = h.terminal === true;
    const spec = asString(h.policy_specifier) ?? ['header', 'cookie', 'connection_properties', 'query_parameter', 'filter_state'].find((k) => h[k] !== undefined);
    if (spec === 'header') {
      const hm = asMsg(h.header) ?? {};
      const name = (asString(hm.header_name) ?? '').toLowerCase();
      if (!name) continue;
      const p: HashPolicy = { kind: 'header', name, terminal };
      const rr = asMsg(hm.regex_rewrite);
      if (rr) {
        const re = compileRe2(asString(asMsg(rr.pattern)?.regex) ?? '', false, 'g');
        if (typeof re === 'string') warnings.push(`${where}: hash policy header ${name} regex ignored: ${re}`);
        else p.rewrite = { re, substitution: re2Substitution(asString(rr.substitution) ?? '') };
      }
      out.push(Object.freeze(p));
    } else if (spec === 'cookie') {
      const c = asMsg(h.cookie) ?? {};
      const name = asString(c.name);
      if (!name) continue;
      const p: HashPolicy = { kind: 'cookie', name, terminal };
      const ttl = durationMs(c.ttl);
      if (ttl !== undefined) {
        warnings.push(`${where}: hash policy cookie ${name}: generating the cookie (ttl) is not supported; hashing only when the client sends it`);
        p.ttlMs = ttl;
        if (typeof c.path === 'string' && c.path !== '') p.path = c.path;
      }
      out.push(Object.freeze(p));
    } else if (spec === 'connection_properties') {
      if (asMsg(h.connection_properties)?.source_ip === true) out.push(Object.freeze({ kind: 'source_ip', terminal }));
    } else if (spec === 'query_parameter') {
      const name = asString(asMsg(h.query_parameter)?.name);
      if (name) out.push(Object.freeze({ kind: 'query_parameter', name, terminal }));
    } else {
      warnings.push(`${where}: hash policy '${spec ?? 'empty'}' is not supported and was ignored`);
    }
  }
  return out;
}

export type { RouteDecision };
