// VirtualService http routes -> Envoy Routes for one (service, port), as seen by one caller.
import type { ServiceInfo, ServicePort } from '../model.js';
import type { RouteContext } from './route-context.js';
import { type HTTPMatchRequest, type Res, type VSHttpRoute, type VirtualServiceSpec, nsOf, ofKind, refOf } from './spec.js';
import {
  FAULT_FILTER,
  applyHeaderEdits,
  clusterSpecifier,
  faultConfig,
  headerMatcher,
  mirrorPolicy,
  queryMatcher,
  routeRetryPolicy,
  routeTimeout,
  type WeightedDestination,
} from './route-parts.js';
import { labelsMatch } from './util.js';

export type VS = Res<VirtualServiceSpec>;

/** VirtualServices bound to the mesh (no gateways, or `mesh` among them) whose hosts cover `svc`, oldest first. */
export function virtualServicesFor(ctx: RouteContext, svc: ServiceInfo): VS[] {
  return ofKind<VirtualServiceSpec>(ctx.resources, 'VirtualService').filter((vs) => {
    const gw = vs.spec?.gateways;
    if (gw && gw.length > 0 && !gw.includes('mesh')) return false;
    return (vs.spec?.hosts ?? []).some((h) => ctx.index.covered(h, nsOf(vs)).includes(svc));
  });
}

/** Whether a match block applies to this caller and port (sourceLabels, sourceNamespace, port, gateways are compile-time). */
function matchApplies(ctx: RouteContext, m: HTTPMatchRequest, port: ServicePort): boolean {
  if (m.port !== undefined && m.port !== port.port) return false;
  // A match's own gateways replace the VirtualService's: without `mesh` it is for gateways only, which Trellis lacks.
  if (Array.isArray(m.gateways) && m.gateways.length > 0 && !m.gateways.includes('mesh')) return false;
  if (m.sourceLabels && Object.keys(m.sourceLabels).length > 0) {
    if (ctx.caller.proxyless || !labelsMatch(m.sourceLabels, ctx.caller.labels)) return false;
  }
  if (m.sourceNamespace !== undefined && m.sourceNamespace !== ctx.caller.namespace) return false;
  return true;
}

function routeMatch(m: HTTPMatchRequest): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const uri = m.uri ?? {};
  if (uri.exact !== undefined) out.path = uri.exact;
  else if (uri.regex !== undefined) out.safe_regex = { regex: uri.regex };
  else out.prefix = uri.prefix ?? '/';
  if (m.ignoreUriCase) out.case_sensitive = { value: false };
  const headers: object[] = [];
  for (const [name, sm] of Object.entries(m.headers ?? {})) headers.push(headerMatcher(name, sm));
  for (const [name, sm] of Object.entries(m.withoutHeaders ?? {})) headers.push(headerMatcher(name, sm, true));
  if (m.method) headers.push(headerMatcher(':method', m.method));
  if (m.authority) headers.push(headerMatcher(':authority', m.authority));
  if (m.scheme) headers.push(headerMatcher(':scheme', m.scheme));
  if (headers.length > 0) out.headers = headers;
  const qp = Object.entries(m.queryParams ?? {}).map(([name, sm]) => queryMatcher(name, sm));
  if (qp.length > 0) out.query_parameters = qp;
  return out;
}

const REDIRECT_CODES: Record<number, string> = {
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};

function action(
  ctx: RouteContext,
  vs: VS,
  r: VSHttpRoute,
  routed: { svc: ServiceInfo; port: ServicePort },
  route: Record<string, unknown>,
): void {
  const ns = nsOf(vs);
  if (r.redirect) {
    const red: Record<string, unknown> = {};
    if (r.redirect.uri) red.path_redirect = r.redirect.uri;
    if (r.redirect.authority) red.host_redirect = r.redirect.authority;
    if (r.redirect.port) red.port_redirect = r.redirect.port;
    // FROM_PROTOCOL_DEFAULT: the scheme's default port (mesh callers reach their proxy in plain HTTP when no scheme is
    // set); FROM_REQUEST_PORT is what the proxy does anyway (it keeps the request's port).
    else if (r.redirect.derivePort === 'FROM_PROTOCOL_DEFAULT')
      red.port_redirect = (r.redirect.scheme ?? 'http').toLowerCase() === 'https' ? 443 : 80;
    if (r.redirect.scheme) red.scheme_redirect = r.redirect.scheme;
    red.response_code = REDIRECT_CODES[r.redirect.redirectCode ?? 301] ?? 'MOVED_PERMANENTLY';
    route.redirect = red;
    return;
  }
  if (r.directResponse) {
    const dr: Record<string, unknown> = { status: r.directResponse.status };
    if (r.directResponse.body?.string !== undefined) dr.body = { inline_string: r.directResponse.body.string };
    else if (r.directResponse.body?.bytes !== undefined)
      dr.body = { inline_bytes: Buffer.from(r.directResponse.body.bytes, 'base64') };
    route.direct_response = dr;
    return;
  }
  const targets = (r.route ?? []).map((d) => ({
    ...ctx.destination(d.destination.host, ns, d.destination.port?.number, d.destination.subset, routed),
    subset: d.destination.subset,
    d,
  }));
  if (targets.length === 0) {
    route.direct_response = { status: 500 };
    return;
  }
  const dests: WeightedDestination[] = targets.map((t) => ({
    cluster: t.cluster,
    weight: targets.length === 1 ? 100 : (t.d.weight ?? 0),
    request: t.d.headers?.request,
    response: t.d.headers?.response,
  }));
  const a: Record<string, unknown> = { ...clusterSpecifier(dests, route) };
  a.timeout = routeTimeout(ctx.mesh, r.timeout);
  const retry = routeRetryPolicy(ctx.mesh, r.retries);
  if (retry) a.retry_policy = retry;
  if (r.rewrite?.uri !== undefined) a.prefix_rewrite = r.rewrite.uri;
  else if (r.rewrite?.uriRegexRewrite?.match !== undefined)
    a.regex_rewrite = { pattern: { regex: r.rewrite.uriRegexRewrite.match }, substitution: r.rewrite.uriRegexRewrite.rewrite ?? '' };
  if (r.rewrite?.authority) a.host_rewrite_literal = r.rewrite.authority;
  const mirrors: object[] = [];
  if (r.mirror) {
    const m = ctx.destination(r.mirror.host, ns, r.mirror.port?.number, r.mirror.subset, routed);
    mirrors.push(mirrorPolicy(m.cluster, r.mirrorPercentage?.value ?? r.mirrorPercent));
  }
  for (const mm of r.mirrors ?? []) {
    const m = ctx.destination(mm.destination.host, ns, mm.destination.port?.number, mm.destination.subset, routed);
    mirrors.push(mirrorPolicy(m.cluster, mm.percentage?.value));
  }
  if (mirrors.length > 0) a.request_mirror_policies = mirrors;
  const first = targets[0];
  const hp = ctx.hashPolicyFor(first.svc, first.port, first.subset);
  if (hp.length > 0) a.hash_policy = hp;
  route.route = a;
}

/**
 * A route's name as access logs, tap, errors and the `route` label show it: `<ns>/<resource>#<rule>`, the rule being
 * its `name` when it has one, else its index; a named match adds `.<match name>` (Istio's convention).
 */
export function ruleName(ref: string, name: string | undefined, index: number, matchName?: string): string {
  const rule = typeof name === 'string' && name !== '' ? name : String(index);
  return `${ref}#${rule}${typeof matchName === 'string' && matchName !== '' ? `.${matchName}` : ''}`;
}

/** Envoy routes for `svc`:`port` from one VirtualService: routes in order, one Envoy route per surviving match block. */
export function virtualServiceRoutes(ctx: RouteContext, vs: VS, svc: ServiceInfo, port: ServicePort): object[] {
  const out: object[] = [];
  (vs.spec?.http ?? []).forEach((r, i) => {
    const matches = r.match && r.match.length > 0 ? r.match.filter((m) => matchApplies(ctx, m, port)) : [{}];
    if (matches.length === 0) return;
    const shared: Record<string, unknown> = {};
    action(ctx, vs, r, { svc, port }, shared);
    if (ctx.caller.proxyless && !shared.route) return; // gRPC clients reject redirect / direct_response routes
    applyHeaderEdits(shared, r.headers?.request, r.headers?.response);
    const fault = faultConfig(r.fault);
    if (fault && !shared.direct_response && !shared.redirect) shared.typed_per_filter_config = { [FAULT_FILTER]: fault };
    for (const m of matches) {
      out.push({ name: ruleName(refOf(vs), r.name, i, (m as { name?: string }).name), match: routeMatch(m), ...rewriteForMatch(shared, m) });
    }
  });
  return out;
}

/** A prefix rewrite has no prefix to replace under a regex match: there it replaces the whole path. */
function rewriteForMatch(shared: Record<string, unknown>, m: HTTPMatchRequest): Record<string, unknown> {
  const a = shared.route as Record<string, unknown> | undefined;
  if (!a || a.prefix_rewrite === undefined || m.uri?.regex === undefined) return shared;
  const { prefix_rewrite, ...rest } = a;
  return { ...shared, route: { ...rest, regex_rewrite: { pattern: { regex: '^.*$' }, substitution: prefix_rewrite } } };
}
