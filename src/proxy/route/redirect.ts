// Compiles Envoy's RedirectAction and builds the Location of a redirect for a request.
import { asMsg, asString, compileRe2, re2Substitution, wrappedNumber, type Msg } from './proto.js';
import type { IncomingHeaders } from './types.js';

const REDIRECT_CODES: Record<string, number> = {
  MOVED_PERMANENTLY: 301,
  FOUND: 302,
  SEE_OTHER: 303,
  TEMPORARY_REDIRECT: 307,
  PERMANENT_REDIRECT: 308,
};
const REDIRECT_CODES_BY_NUMBER = [301, 302, 303, 307, 308];

export interface CompiledRedirect {
  status: number;
  scheme?: string;
  host?: string;
  port?: number;
  /** path_redirect without its query part. */
  path?: string;
  /** The query part of a path_redirect that carried one ('' when it ended with '?'). */
  pathQuery?: string;
  prefix?: { from: string; to: string };
  regex?: { re: RegExp; substitution: string };
  stripQuery: boolean;
}

/** `matchedPrefix` is the route's prefix (or path) match, needed by prefix_rewrite. */
export function compileRedirect(raw: unknown, matchedPrefix: string | undefined, warnings: string[], where: string): CompiledRedirect {
  const r: Msg = asMsg(raw) ?? {};
  const code = r.response_code;
  const status =
    typeof code === 'number' ? REDIRECT_CODES_BY_NUMBER[code] ?? 301 : typeof code === 'string' ? REDIRECT_CODES[code] ?? 301 : 301;
  const out: CompiledRedirect = { status, stripQuery: r.strip_query === true };
  const scheme = asString(r.scheme_redirect);
  if (scheme) out.scheme = scheme.toLowerCase();
  else if (r.https_redirect === true) out.scheme = 'https';
  const host = asString(r.host_redirect);
  if (host) out.host = host;
  const port = wrappedNumber(r.port_redirect);
  if (port) out.port = port;
  const path = asString(r.path_redirect);
  const prefix = asString(r.prefix_rewrite);
  const regex = asMsg(r.regex_rewrite);
  if (path !== undefined && path !== '') {
    const q = path.indexOf('?');
    if (q >= 0) {
      out.path = path.slice(0, q);
      out.pathQuery = path.slice(q + 1);
    } else out.path = path;
  } else if (prefix !== undefined) {
    if (matchedPrefix === undefined) warnings.push(`${where}: redirect prefix_rewrite needs a prefix or path match; ignored`);
    else out.prefix = { from: matchedPrefix, to: prefix };
  } else if (regex) {
    const re = compileRe2(asString(asMsg(regex.pattern)?.regex) ?? '', false, 'g');
    if (typeof re === 'string') warnings.push(`${where}: redirect regex_rewrite ignored: ${re}`);
    else out.regex = { re, substitution: re2Substitution(asString(regex.substitution) ?? '') };
  }
  return Object.freeze(out);
}

function defaultPort(scheme: string): number {
  return scheme === 'https' ? 443 : scheme === 'http' ? 80 : 0;
}

function splitAuthority(authority: string): { host: string; port: number } {
  const colon = authority.lastIndexOf(':');
  if (colon > 0 && authority.indexOf(']', colon) < 0 && /^\d+$/.test(authority.slice(colon + 1))) {
    return { host: authority.slice(0, colon), port: Number(authority.slice(colon + 1)) };
  }
  return { host: authority, port: 0 };
}

export interface RedirectRequest {
  authority: string;
  path: string;
  query: string;
  headers?: IncomingHeaders;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The absolute Location for a redirect. The original scheme comes from `:scheme` or
 * `x-forwarded-proto` (else http). The original port is kept unless the redirect sets one, the new
 * host carries one, or the scheme changes away from a default port; a default port is never printed.
 */
export function applyRedirect(r: CompiledRedirect, req: RedirectRequest): string {
  const origScheme = (first(req.headers?.[':scheme']) ?? first(req.headers?.['x-forwarded-proto']) ?? 'http').toLowerCase();
  const scheme = r.scheme ?? origScheme;
  const orig = splitAuthority(req.authority);
  let host = orig.host;
  let port = orig.port;
  if (r.scheme !== undefined && r.scheme !== origScheme && port === defaultPort(origScheme)) port = 0;
  if (r.host !== undefined) {
    const h = splitAuthority(r.host);
    host = h.host;
    if (h.port) port = h.port;
  }
  if (r.port !== undefined) port = r.port;
  if (port === defaultPort(scheme)) port = 0;

  let path = req.path;
  let query = req.query;
  if (r.path !== undefined) {
    path = r.path;
    if (r.pathQuery !== undefined) query = r.pathQuery;
  } else if (r.prefix) path = r.prefix.to + path.slice(r.prefix.from.length);
  else if (r.regex) {
    r.regex.re.lastIndex = 0;
    path = path.replace(r.regex.re, r.regex.substitution);
  }
  if (path === '' || path[0] !== '/') path = '/' + path;
  if (r.stripQuery && r.pathQuery === undefined) query = '';
  return `${scheme}://${host}${port ? ':' + port : ''}${path}${query ? '?' + query : ''}`;
}
