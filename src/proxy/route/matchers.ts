// Compiled request matchers: string matchers, header matchers (with pseudo-headers) and query-parameter matchers.
import { asArray, asMsg, asString, compileRe2, type Msg } from './proto.js';
import type { IncomingHeaders, RouteRequest } from './types.js';

const EXACT = 0;
const PREFIX = 1;
const SUFFIX = 2;
const CONTAINS = 3;
const REGEX = 4;
const ANY = 5; // matches every value (used for an empty legacy exact_match, as Envoy does)
const RANGE = 6;
const PRESENT = 7;
const NEVER = 8;

/** A compiled envoy.type.matcher.v3.StringMatcher. */
export interface StringMatch {
  kind: number;
  value: string; // lowercased when ignoreCase
  ignoreCase: boolean;
  re: RegExp | undefined;
}

/** Compiles a StringMatcher; returns an error string for unsupported or invalid ones. */
export function compileStringMatcher(raw: unknown): StringMatch | string {
  const m = asMsg(raw);
  if (!m) return 'empty string matcher';
  const ignoreCase = m.ignore_case === true;
  const pick = (kind: number, v: string): StringMatch => ({
    kind,
    value: ignoreCase ? v.toLowerCase() : v,
    ignoreCase,
    re: undefined,
  });
  const spec = asString(m.match_pattern) ?? firstPresent(m, ['exact', 'prefix', 'suffix', 'contains', 'safe_regex', 'custom']);
  switch (spec) {
    case 'exact':
      return pick(EXACT, asString(m.exact) ?? '');
    case 'prefix':
      return pick(PREFIX, asString(m.prefix) ?? '');
    case 'suffix':
      return pick(SUFFIX, asString(m.suffix) ?? '');
    case 'contains':
      return pick(CONTAINS, asString(m.contains) ?? '');
    case 'safe_regex': {
      const re = compileRe2(asString(asMsg(m.safe_regex)?.regex) ?? '', true);
      if (typeof re === 'string') return re;
      return { kind: REGEX, value: '', ignoreCase: false, re };
    }
    case 'custom':
      return 'custom string matcher extensions are not supported';
    default:
      return pick(EXACT, ''); // proto3: an unset oneof is an exact match of ''
  }
}

function firstPresent(m: Msg, keys: string[]): string | undefined {
  for (const k of keys) if (m[k] !== undefined && m[k] !== null) return k;
  return undefined;
}

export function matchString(m: StringMatch, value: string): boolean {
  const v = m.ignoreCase ? value.toLowerCase() : value;
  switch (m.kind) {
    case EXACT:
      return v === m.value;
    case PREFIX:
      return v.startsWith(m.value);
    case SUFFIX:
      return v.endsWith(m.value);
    case CONTAINS:
      return v.includes(m.value);
    case REGEX:
      return (m.re as RegExp).test(value);
    case ANY:
      return true;
    default:
      return false;
  }
}

/** Pseudo-header ids, resolved from RouteRequest fields rather than the header object. */
const H_PLAIN = 0;
const H_METHOD = 1;
const H_AUTHORITY = 2;
const H_PATH = 3;

export interface HeaderMatch {
  name: string;
  source: number;
  kind: number; // a string-match kind, RANGE, PRESENT or NEVER
  str: StringMatch | undefined;
  rangeStart: number;
  rangeEnd: number;
  present: boolean;
  invert: boolean;
  missingAsEmpty: boolean;
}

/**
 * Compiles an envoy.config.route.v3.HeaderMatcher. Semantics: a missing header fails every value
 * match (unless treat_missing_header_as_empty); present_match compares presence with its flag; the
 * result is then inverted by invert_match, uniformly (so `present_match: true, invert_match: true`
 * means "absent", as Istio's withoutHeaders relies on).
 */
export function compileHeaderMatcher(raw: unknown): HeaderMatch | string {
  const m = asMsg(raw) ?? {};
  const name = (asString(m.name) ?? '').toLowerCase();
  if (!name) return 'header matcher without a name';
  const out: HeaderMatch = {
    name,
    source: name === ':method' ? H_METHOD : name === ':authority' || name === 'host' ? H_AUTHORITY : name === ':path' ? H_PATH : H_PLAIN,
    kind: NEVER,
    str: undefined,
    rangeStart: 0,
    rangeEnd: 0,
    present: false,
    invert: m.invert_match === true,
    missingAsEmpty: m.treat_missing_header_as_empty === true,
  };
  const spec =
    asString(m.header_match_specifier) ??
    firstPresent(m, ['string_match', 'exact_match', 'safe_regex_match', 'range_match', 'present_match', 'prefix_match', 'suffix_match', 'contains_match']);
  const legacy = (kind: number, v: unknown): HeaderMatch => {
    out.kind = kind;
    out.str = { kind, value: asString(v) ?? '', ignoreCase: false, re: undefined };
    return out;
  };
  switch (spec) {
    case 'string_match': {
      const s = compileStringMatcher(m.string_match);
      if (typeof s === 'string') return `header ${name}: ${s}`;
      out.kind = s.kind;
      out.str = s;
      return out;
    }
    case 'exact_match': {
      const v = asString(m.exact_match) ?? '';
      return v === '' ? legacy(ANY, '') : legacy(EXACT, v);
    }
    case 'prefix_match':
      return legacy(PREFIX, m.prefix_match);
    case 'suffix_match':
      return legacy(SUFFIX, m.suffix_match);
    case 'contains_match':
      return legacy(CONTAINS, m.contains_match);
    case 'safe_regex_match': {
      const re = compileRe2(asString(asMsg(m.safe_regex_match)?.regex) ?? '', true);
      if (typeof re === 'string') return `header ${name}: ${re}`;
      out.kind = REGEX;
      out.str = { kind: REGEX, value: '', ignoreCase: false, re };
      return out;
    }
    case 'range_match': {
      const r = asMsg(m.range_match) ?? {};
      out.kind = RANGE;
      out.rangeStart = Number(r.start ?? 0);
      out.rangeEnd = Number(r.end ?? 0);
      return out;
    }
    case 'present_match':
      out.kind = PRESENT;
      out.present = m.present_match !== false;
      return out;
    default:
      // No specifier: Envoy treats it as "header present".
      out.kind = PRESENT;
      out.present = true;
      return out;
  }
}

/** The header's value for matching: multiple values are joined with ',' as Envoy does. */
function headerValue(h: HeaderMatch, req: RouteRequest): string | undefined {
  switch (h.source) {
    case H_METHOD:
      return req.method;
    case H_AUTHORITY:
      return req.authority;
    case H_PATH:
      return req.query === '' ? req.path : req.path + '?' + req.query;
    default: {
      const v = (req.headers as IncomingHeaders)[h.name];
      // HTTP/1.1 carries no :scheme; callers reach their proxy in plain HTTP, as Envoy assumes for such requests.
      if (v === undefined) return h.name === ':scheme' ? 'http' : undefined;
      return typeof v === 'string' ? v : v.join(',');
    }
  }
}

export function matchHeader(h: HeaderMatch, req: RouteRequest): boolean {
  let v = headerValue(h, req);
  let matched: boolean;
  if (h.kind === PRESENT) matched = (v !== undefined) === h.present;
  else {
    if (v === undefined) {
      if (!h.missingAsEmpty) return h.invert;
      v = '';
    }
    if (h.kind === RANGE) {
      // Envoy: the whole value must be an integer in [start, end)
      matched = /^-?\d+$/.test(v) && Number(v) >= h.rangeStart && Number(v) < h.rangeEnd;
    } else if (h.kind === NEVER) matched = false;
    else matched = matchString(h.str as StringMatch, v);
  }
  return matched !== h.invert;
}

export interface QueryMatch {
  name: string;
  present: boolean; // present_match only
  str: StringMatch | undefined;
}

export function compileQueryMatcher(raw: unknown): QueryMatch | string {
  const m = asMsg(raw) ?? {};
  const name = asString(m.name) ?? '';
  if (!name) return 'query parameter matcher without a name';
  const spec = asString(m.query_parameter_match_specifier) ?? firstPresent(m, ['string_match', 'present_match']);
  if (spec === 'string_match') {
    const s = compileStringMatcher(m.string_match);
    if (typeof s === 'string') return `query parameter ${name}: ${s}`;
    return { name, present: false, str: s };
  }
  if (spec === 'present_match') return { name, present: m.present_match === true, str: undefined };
  return 'query parameter matcher needs string_match or present_match';
}

/** The first value of a query parameter (raw, then percent-decoded when it has escapes); undefined when absent. */
export function queryParam(query: string, name: string): string | undefined {
  let i = 0;
  const n = query.length;
  while (i <= n) {
    let end = query.indexOf('&', i);
    if (end < 0) end = n;
    const eq = query.indexOf('=', i);
    const keyEnd = eq >= 0 && eq < end ? eq : end;
    if (keyEnd - i === name.length && query.startsWith(name, i)) {
      const raw = keyEnd === end ? '' : query.slice(keyEnd + 1, end);
      return decodeQueryValue(raw);
    }
    i = end + 1;
  }
  return undefined;
}

function decodeQueryValue(raw: string): string {
  if (raw.indexOf('%') < 0 && raw.indexOf('+') < 0) return raw;
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}

export function matchQuery(q: QueryMatch, query: string): boolean {
  const v = queryParam(query, q.name);
  if (q.str === undefined) return q.present ? v !== undefined : v === undefined;
  return v !== undefined && matchString(q.str, v);
}

/** Decodes the `headers` / `query_parameters` arrays of a RouteMatch; errors are collected. */
export function compileMatchers(match: Msg, errors: string[]): { headers: HeaderMatch[]; query: QueryMatch[] } {
  const headers: HeaderMatch[] = [];
  for (const h of asArray(match.headers)) {
    const c = compileHeaderMatcher(h);
    if (typeof c === 'string') errors.push(c);
    else headers.push(c);
  }
  const query: QueryMatch[] = [];
  for (const q of asArray(match.query_parameters)) {
    const c = compileQueryMatcher(q);
    if (typeof c === 'string') errors.push(c);
    else query.push(c);
  }
  return { headers, query };
}

