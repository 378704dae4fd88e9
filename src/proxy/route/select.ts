// Picks the route for a request: virtual host by authority, first matching route, weighted cluster by random().
import { applyRedirect } from './redirect.js';
import { matchHeader, matchQuery } from './matchers.js';
import {
  A_FIXED,
  A_REDIRECT,
  A_WEIGHTED,
  P_CONNECT,
  P_PATH,
  P_PREFIX,
  P_REGEX,
  P_SEPARATED_PREFIX,
  type CompiledRoute,
  type RouteTable,
} from './table.js';
import type { RouteDecision, RouteRequest } from './types.js';

export type { RouteDecision, RouteRequest } from './types.js';
export { applyRedirect } from './redirect.js';

function isGrpc(req: RouteRequest): boolean {
  const ct = req.headers['content-type'];
  const v = typeof ct === 'string' ? ct : ct === undefined ? '' : ct[0] ?? '';
  return v.startsWith('application/grpc');
}

function pathMatches(r: CompiledRoute, req: RouteRequest, lower: string): boolean {
  const path = r.caseSensitive ? req.path : lower;
  switch (r.pathKind) {
    case P_PREFIX:
      return path.startsWith(r.pathValue);
    case P_PATH:
      return path === r.pathValue;
    case P_SEPARATED_PREFIX:
      return path === r.pathValue || path.startsWith(r.pathValueSlash);
    case P_REGEX:
      return req.path.startsWith(r.pathValue) && (r.re as RegExp).test(req.path);
    case P_CONNECT:
      return req.method === 'CONNECT';
    default:
      return false;
  }
}

/**
 * The decision for a request. Never throws for well-formed requests; forward and direct decisions are
 * shared objects (no allocation), redirects and no_route build a small object.
 */
export function selectRoute(table: RouteTable, req: RouteRequest, random: () => number = Math.random): RouteDecision {
  const vh = table.index.find(req.authority);
  if (vh === undefined) return { kind: 'no_route', reason: req.authority === '' ? 'no virtual host for a request without Host' : `no virtual host for ${req.authority}` };
  const routes = vh.routes;
  let lower: string | undefined;
  for (let i = 0; i < routes.length; i++) {
    const r = routes[i];
    if (!r.caseSensitive && lower === undefined) lower = req.path.toLowerCase();
    if (!pathMatches(r, req, lower as string)) continue;
    const hs = r.headers;
    let ok = true;
    for (let j = 0; j < hs.length; j++) {
      if (!matchHeader(hs[j], req)) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    const qs = r.query;
    for (let j = 0; j < qs.length; j++) {
      if (!matchQuery(qs[j], req.query)) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    if (r.grpc && !isGrpc(req)) continue;
    if (r.fraction < 1 && !(random() < r.fraction)) continue;

    if (r.action === A_FIXED) return r.fixed as RouteDecision;
    if (r.action === A_WEIGHTED) {
      const cum = r.cumulative as Float64Array;
      const x = random() * r.totalWeight;
      const last = cum.length - 1;
      let k = 0;
      while (k < last && x >= cum[k]) k++;
      return (r.weighted as RouteDecision[])[k];
    }
    if (r.action === A_REDIRECT && r.redirect) {
      return {
        kind: 'redirect',
        routeName: r.name,
        status: r.redirect.status,
        location: applyRedirect(r.redirect, req),
        responseHeaders: r.redirectHeaders,
      };
    }
  }
  return { kind: 'no_route', reason: `no route in ${vh.name} matched ${req.method} ${req.path}` };
}
