// Turns Istio AuthorizationPolicy value strings (exact, `x*`, `*x`, `*`, CIDRs, ports) into Envoy matcher fragments.
import { isIP } from 'node:net';

export interface StringMatcher {
  exact?: string;
  prefix?: string;
  suffix?: string;
  contains?: string;
  safe_regex?: { regex: string };
  ignore_case?: boolean;
}

/** Escapes a literal for an RE2 pattern (and for JavaScript's RegExp, which the proxy uses). */
export function escapeRe2(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Any non-empty value: Istio's meaning of `*`. */
export const ANY_VALUE: StringMatcher = { safe_regex: { regex: '.+' } };

/**
 * Istio's value matching: `*` any non-empty value, `x*` prefix, `*x` suffix, otherwise exact.
 * `prefixWith` is added in front of exact and prefix forms (principals carry `spiffe://` on the wire).
 */
export function istioStringMatch(value: string, opts: { prefixWith?: string; ignoreCase?: boolean } = {}): StringMatcher {
  const pre = opts.prefixWith ?? '';
  const ic = opts.ignoreCase ? { ignore_case: true } : {};
  if (value === '*') return { ...ANY_VALUE };
  if (value.endsWith('*')) {
    const p = pre + value.slice(0, -1);
    return p === '' ? { ...ANY_VALUE } : { prefix: p, ...ic };
  }
  if (value.startsWith('*')) return { suffix: value.slice(1), ...ic };
  return { exact: pre + value, ...ic };
}

/**
 * Path matching, with Istio's templates: `{*}` one segment, `{**}` any remainder. Other values as istioStringMatch.
 */
export function pathMatch(value: string): StringMatcher {
  if (value.includes('{*}') || value.includes('{**}')) {
    const parts = value.split(/(\{\*\*\}|\{\*\})/);
    const re = parts.map((p) => (p === '{**}' ? '.*' : p === '{*}' ? '[^/]+' : escapeRe2(p))).join('');
    return { safe_regex: { regex: re } };
  }
  return istioStringMatch(value);
}

// Principal regex for a namespace value, `.*` + `/ns/<ns>/` + `.*`; a `*` inside the name matches within the segment.
export function namespaceMatch(value: string): StringMatcher {
  const ns = value.split('*').map(escapeRe2).join('[^/]*');
  return { safe_regex: { regex: `.*/ns/${ns}/.*` } };
}

export interface CidrRange {
  address_prefix: string;
  prefix_len: { value: number };
}

/** Parses `10.0.0.0/8`, `10.1.2.3` (host), `::1/128`; undefined when malformed. */
export function parseCidr(value: string): CidrRange | undefined {
  const [addr, len, extra] = value.trim().split('/');
  if (extra !== undefined) return undefined;
  const family = isIP(addr);
  if (family === 0) return undefined;
  const max = family === 4 ? 32 : 128;
  if (len === undefined) return { address_prefix: addr, prefix_len: { value: max } };
  if (!/^\d{1,3}$/.test(len)) return undefined;
  const n = Number(len);
  if (n > max) return undefined;
  return { address_prefix: addr, prefix_len: { value: n } };
}

/** A port number 1..65535 from its string form; undefined when malformed. */
export function parsePort(value: string | number): number | undefined {
  const s = String(value).trim();
  if (!/^\d{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}
