// Explains why no route matched a request: one line per route naming the first condition that failed.
import { matchHeader, matchQuery } from './matchers.js';
import { P_CONNECT, P_NEVER, P_PATH, P_PREFIX, P_REGEX, P_SEPARATED_PREFIX, type CompiledRoute, type RouteTable } from './table.js';
import type { RouteRequest } from './types.js';

function pathText(r: CompiledRoute): string {
  switch (r.pathKind) {
    case P_PREFIX:
      return `prefix ${r.pathValue}`;
    case P_PATH:
      return `path ${r.pathValue}`;
    case P_SEPARATED_PREFIX:
      return `path-separated prefix ${r.pathValue}`;
    case P_REGEX:
      return `regex ${String(r.re?.source)}`;
    case P_CONNECT:
      return 'CONNECT';
    default:
      return 'path';
  }
}

/**
 * For diagnostics (admin, tap, error detail), not the request path: which virtual host the authority
 * selects and, per route, the first unmet condition (or "matches" for the route that would be taken).
 */
export function explainRoute(table: RouteTable, req: RouteRequest): { virtualHost?: string; routes: string[] } {
  const vh = table.index.find(req.authority);
  if (!vh) return { routes: [] };
  const lower = req.path.toLowerCase();
  const routes: string[] = [];
  for (const r of vh.routes) {
    const path = r.caseSensitive ? req.path : lower;
    let why: string | undefined;
    if (r.pathKind === P_NEVER) why = 'unusable (see the table warnings)';
    else if (
      (r.pathKind === P_PREFIX && !path.startsWith(r.pathValue)) ||
      (r.pathKind === P_PATH && path !== r.pathValue) ||
      (r.pathKind === P_SEPARATED_PREFIX && path !== r.pathValue && !path.startsWith(r.pathValueSlash)) ||
      (r.pathKind === P_REGEX && !(r.re as RegExp).test(req.path)) ||
      (r.pathKind === P_CONNECT && req.method !== 'CONNECT')
    ) {
      why = `${pathText(r)} did not match ${req.path}`;
    }
    if (!why) {
      const h = r.headers.find((m) => !matchHeader(m, req));
      if (h) why = `header ${h.name}${h.invert ? ' (inverted)' : ''} did not match`;
    }
    if (!why) {
      const q = r.query.find((m) => !matchQuery(m, req.query));
      if (q) why = `query parameter ${q.name} did not match`;
    }
    if (!why && r.grpc) {
      const ct = req.headers['content-type'];
      if (!(typeof ct === 'string' && ct.startsWith('application/grpc'))) why = 'not a gRPC request';
    }
    if (!why && r.fraction < 1) why = `matches ${Math.round(r.fraction * 10000) / 100}% of requests`;
    routes.push(`${r.name}: ${why ?? 'matches'}`);
  }
  return { virtualHost: vh.name, routes };
}
