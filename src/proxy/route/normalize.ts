// Request-path normalization, done once per request so routing and authorization see the same path.

export type EscapedSlashes = 'reject' | 'keep' | 'decode-and-merge';

export interface NormalizeOptions {
  /** What to do with %2F and %5C: reject the request (default), keep them encoded, or decode them to '/'. */
  escapedSlashes?: EscapedSlashes;
  /**
   * RFC 3986 normalization (Envoy normalize_path, Istio BASE): unreserved escapes decoded, other escapes' hex
   * uppercased, '\' turned into '/', '.' and '..' segments resolved. Default true; false leaves the path as received.
   */
  normalize?: boolean;
  /** Merge consecutive slashes (Envoy merge_slashes, Istio MERGE_SLASHES). Default true. */
  mergeSlashes?: boolean;
}

export type NormalizeResult = { ok: true; path: string; query: string } | { ok: false; reason: string };

const HEX = '0123456789ABCDEF';

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

function isUnreserved(c: number): boolean {
  return (
    (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 /* - */ || c === 46 /* . */ || c === 95 /* _ */ || c === 126 /* ~ */
  );
}

/** True when the path needs no work: no escapes, backslashes, empty or dot segments, or odd characters. */
function isClean(p: string): boolean {
  if (p.length === 0 || p.charCodeAt(0) !== 47) return false;
  let prevSlash = true;
  for (let i = 1; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c <= 32 || c >= 127 || c === 37 /* % */ || c === 92 /* \ */) return false;
    if (c === 47) {
      if (prevSlash) return false;
      prevSlash = true;
    } else {
      if (c === 46 && prevSlash) return false; // a segment starting with '.'
      prevSlash = false;
    }
  }
  return true;
}

/**
 * Normalizes a request target's path: percent-decodes unreserved characters only (other escapes kept,
 * hex uppercased), applies the %2F/%5C policy, turns '\' into '/', merges '//', removes '.' and '..'
 * segments (also `..;params` / `.;params`, which some servers treat as dot segments), drops the
 * fragment and returns the raw query separately. Absolute-form targets are reduced to their path.
 */
export function normalizePath(rawPath: string, opts: NormalizeOptions = {}): NormalizeResult {
  const policy = opts.escapedSlashes ?? 'reject';
  const rfc = opts.normalize !== false;
  const merge = opts.mergeSlashes !== false;
  let target = rawPath;
  const hash = target.indexOf('#');
  if (hash >= 0) target = target.slice(0, hash);
  const qm = target.indexOf('?');
  let path = qm >= 0 ? target.slice(0, qm) : target;
  const query = qm >= 0 ? target.slice(qm + 1) : '';
  if (path.length > 0 && path.charCodeAt(0) !== 47) {
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*/.exec(path);
    if (!m) return { ok: false, reason: `path must start with '/': ${JSON.stringify(rawPath.slice(0, 64))}` };
    path = path.slice(m[0].length);
  }
  if (path === '') return { ok: true, path: '/', query };
  if (isClean(path)) return { ok: true, path, query };

  // 1. decode unreserved escapes, apply the escaped-slash policy, '\' -> '/' (without rfc: only the escaped-slash policy)
  let decoded = '';
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c <= 32 || c >= 127) return { ok: false, reason: `invalid character in path at offset ${i}` };
    if (c === 92) {
      decoded += rfc ? '/' : '\\';
      continue;
    }
    if (c !== 37) {
      decoded += path[i];
      continue;
    }
    const hi = i + 2 < path.length ? hexVal(path.charCodeAt(i + 1)) : -1;
    const lo = hi >= 0 ? hexVal(path.charCodeAt(i + 2)) : -1;
    if (hi < 0 || lo < 0) return { ok: false, reason: `invalid percent-encoding in path at offset ${i}` };
    const v = hi * 16 + lo;
    i += 2;
    if (v === 47 || v === 92) {
      if (policy === 'reject') return { ok: false, reason: `escaped slash (%${HEX[hi]}${HEX[lo]}) in path` };
      decoded += policy === 'decode-and-merge' ? '/' : rfc ? '%' + HEX[hi] + HEX[lo] : path.slice(i - 2, i + 1);
    } else if (!rfc) decoded += path.slice(i - 2, i + 1);
    else if (isUnreserved(v)) decoded += String.fromCharCode(v);
    else decoded += '%' + HEX[hi] + HEX[lo];
  }
  if (!rfc) return { ok: true, path: merge ? decoded.replace(/\/{2,}/g, '/') : decoded, query };

  // 2. segments: merge empty ones, resolve dot segments
  const segs = decoded.split('/');
  const out: string[] = [];
  let trailingSlash = false;
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i];
    const last = i === segs.length - 1;
    const semi = s.indexOf(';');
    const bare = semi >= 0 ? s.slice(0, semi) : s;
    if (s === '') {
      if (!merge) {
        // BASE keeps empty segments: `/a//b` stays, and a `..` after one removes just it (RFC 3986 5.2.4).
        out.push(s);
        trailingSlash = false;
      } else if (last) trailingSlash = true;
      continue;
    }
    if (bare === '.') {
      if (last) trailingSlash = true;
      continue;
    }
    if (bare === '..') {
      out.pop();
      if (last) trailingSlash = true;
      continue;
    }
    out.push(s);
    trailingSlash = false;
  }
  let result = '/' + out.join('/');
  if (trailingSlash && out.length > 0) result += '/';
  return { ok: true, path: result, query };
}
