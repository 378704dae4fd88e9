// Precompiles Envoy RBAC Permission and Principal trees into predicates over one request; throws on what it cannot evaluate.
import { type Cidr, cidrContains, compileCidr, parseIp } from './ip.js';
import { type StringPredicate, compileStringMatcher, compileValueMatcher } from './string-matcher.js';
import type { AuthzRequest } from './types.js';

/** Per-request state: addresses are parsed at most once however many CIDR rules look at them. */
export class EvalContext {
  private direct?: Uint8Array | null;
  private remote?: Uint8Array | null;
  private dest?: Uint8Array | null;
  constructor(readonly req: AuthzRequest) {}
  directIp(): Uint8Array | undefined {
    if (this.direct === undefined) this.direct = parseIp(this.req.directRemoteIp) ?? null;
    return this.direct ?? undefined;
  }
  remoteIp(): Uint8Array | undefined {
    if (this.remote === undefined) this.remote = parseIp(this.req.sourceIp || this.req.directRemoteIp) ?? null;
    return this.remote ?? undefined;
  }
  destIp(): Uint8Array | undefined {
    if (this.dest === undefined) this.dest = parseIp(this.req.destinationIp) ?? null;
    return this.dest ?? undefined;
  }
}

export type Predicate = (c: EvalContext) => boolean;

type Obj = Record<string, any>;

function headerValue(req: AuthzRequest, name: string): string | undefined {
  switch (name) {
    case ':authority':
    case 'host':
      return req.host;
    case ':method':
      return req.method;
    case ':path':
      return req.path;
    default: {
      const v = req.headers[name];
      // Envoy matches repeated headers as one comma-joined value.
      return Array.isArray(v) ? v.join(',') : v;
    }
  }
}

function compileHeader(h: Obj | undefined): Predicate {
  if (!h || typeof h.name !== 'string' || h.name === '') throw new Error('header matcher without name');
  const name = h.name.toLowerCase();
  const invert = h.invert_match === true;
  const missingAsEmpty = h.treat_missing_header_as_empty === true;
  let test: StringPredicate;
  let presentOnly: boolean | undefined;
  if (h.string_match) test = compileStringMatcher(h.string_match);
  else if (h.exact_match !== undefined) test = compileStringMatcher({ exact: h.exact_match });
  else if (h.prefix_match !== undefined) test = compileStringMatcher({ prefix: h.prefix_match });
  else if (h.suffix_match !== undefined) test = compileStringMatcher({ suffix: h.suffix_match });
  else if (h.contains_match !== undefined) test = compileStringMatcher({ contains: h.contains_match });
  else if (h.safe_regex_match !== undefined) test = compileStringMatcher({ safe_regex: h.safe_regex_match });
  else if (h.range_match !== undefined) {
    const lo = Number(h.range_match.start);
    const hi = Number(h.range_match.end);
    test = (v) => v !== undefined && /^-?\d+$/.test(v) && Number(v) >= lo && Number(v) < hi;
  } else if (h.present_match !== undefined) {
    presentOnly = h.present_match === true;
    test = () => true;
  } else {
    // An Envoy HeaderMatcher with no match specifier checks presence.
    presentOnly = true;
    test = () => true;
  }
  return (c) => {
    let v = headerValue(c.req, name);
    if (v === undefined && missingAsEmpty) v = '';
    const m = presentOnly !== undefined ? (v !== undefined) === presentOnly : v !== undefined && test(v);
    return invert ? !m : m;
  };
}

function compilePath(p: Obj | undefined): Predicate {
  if (!p?.path) throw new Error('url_path without path matcher');
  const sm = compileStringMatcher(p.path);
  return (c) => sm(c.req.path);
}

function compileCidrPred(range: Obj | undefined, pick: (c: EvalContext) => Uint8Array | undefined): Predicate {
  const cidr: Cidr = compileCidr(range);
  return (c) => cidrContains(cidr, pick(c));
}

/** Walks a JWT payload along metadata path keys. */
function lookup(root: unknown, keys: string[], from: number): unknown {
  let v = root;
  for (let i = from; i < keys.length; i++) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[keys[i]];
  }
  return v;
}

function compileMetadata(m: Obj | undefined): Predicate {
  if (!m) throw new Error('empty metadata matcher');
  const keys: string[] = (m.path ?? []).map((s: Obj) => {
    if (typeof s?.key !== 'string') throw new Error('metadata path segment without key');
    return s.key;
  });
  if (keys.length === 0) throw new Error('metadata matcher without path');
  const value = compileValueMatcher(m.value);
  const invert = m.invert === true;
  let get: (c: EvalContext) => unknown;
  if (m.filter === 'istio_authn') {
    switch (keys[0]) {
      case 'request.auth.principal':
        if (keys.length !== 1) throw new Error('request.auth.principal has no sub-keys');
        get = (c) => c.req.jwt?.principal;
        break;
      case 'request.auth.audiences':
        get = (c) => c.req.jwt?.payload.aud;
        break;
      case 'request.auth.presenter':
        get = (c) => c.req.jwt?.payload.azp;
        break;
      case 'request.auth.claims':
        if (keys.length < 2) throw new Error('request.auth.claims needs a claim name');
        get = (c) => (c.req.jwt ? lookup(c.req.jwt.payload, keys, 1) : undefined);
        break;
      default:
        throw new Error(`unknown istio_authn metadata key ${keys[0]}`);
    }
  } else if (m.filter === 'envoy.filters.http.jwt_authn') {
    // The first key is the provider's payload_in_metadata name; the rest walk the payload.
    get = (c) => (c.req.jwt ? lookup(c.req.jwt.payload, keys, 1) : undefined);
  } else {
    throw new Error(`unknown metadata filter ${JSON.stringify(m.filter)}`);
  }
  return (c) => value(get(c)) !== invert;
}

function all(preds: Predicate[]): Predicate {
  if (preds.length === 0) throw new Error('empty and-set');
  if (preds.length === 1) return preds[0];
  return (c) => {
    for (const p of preds) if (!p(c)) return false;
    return true;
  };
}

function some(preds: Predicate[]): Predicate {
  if (preds.length === 0) throw new Error('empty or-set');
  if (preds.length === 1) return preds[0];
  return (c) => {
    for (const p of preds) if (p(c)) return true;
    return false;
  };
}

const always: Predicate = () => true;

export function compilePermission(p: Obj | undefined): Predicate {
  if (!p) throw new Error('empty permission');
  if (p.any === true) return always;
  if (p.and_rules) return all((p.and_rules.rules ?? []).map(compilePermission));
  if (p.or_rules) return some((p.or_rules.rules ?? []).map(compilePermission));
  if (p.not_rule) {
    const inner = compilePermission(p.not_rule);
    return (c) => !inner(c);
  }
  if (p.header) return compileHeader(p.header);
  if (p.url_path) return compilePath(p.url_path);
  if (p.destination_ip) return compileCidrPred(p.destination_ip, (c) => c.destIp());
  if (p.destination_port !== undefined) {
    const port = Number(p.destination_port);
    return (c) => c.req.destinationPort === port;
  }
  if (p.destination_port_range) {
    const lo = Number(p.destination_port_range.start ?? 0);
    const hi = Number(p.destination_port_range.end ?? 0);
    return (c) => c.req.destinationPort >= lo && c.req.destinationPort < hi;
  }
  if (p.metadata) return compileMetadata(p.metadata);
  if (p.requested_server_name) {
    const sm = compileStringMatcher(p.requested_server_name);
    return (c) => sm(c.req.sni ?? '');
  }
  throw new Error(`unsupported permission ${JSON.stringify(Object.keys(p).filter((k) => k !== 'rule'))}`);
}

export function compilePrincipal(p: Obj | undefined): Predicate {
  if (!p) throw new Error('empty principal');
  if (p.any === true) return always;
  if (p.and_ids) return all((p.and_ids.ids ?? []).map(compilePrincipal));
  if (p.or_ids) return some((p.or_ids.ids ?? []).map(compilePrincipal));
  if (p.not_id) {
    const inner = compilePrincipal(p.not_id);
    return (c) => !inner(c);
  }
  if (p.authenticated) {
    if (!p.authenticated.principal_name) return (c) => c.req.principal !== undefined;
    const sm = compileStringMatcher(p.authenticated.principal_name);
    return (c) => c.req.principal !== undefined && sm(c.req.principal);
  }
  // source_ip is the deprecated spelling of direct_remote_ip.
  if (p.direct_remote_ip) return compileCidrPred(p.direct_remote_ip, (c) => c.directIp());
  if (p.source_ip) return compileCidrPred(p.source_ip, (c) => c.directIp());
  if (p.remote_ip) return compileCidrPred(p.remote_ip, (c) => c.remoteIp());
  if (p.header) return compileHeader(p.header);
  if (p.url_path) return compilePath(p.url_path);
  if (p.metadata) return compileMetadata(p.metadata);
  throw new Error(`unsupported principal ${JSON.stringify(Object.keys(p).filter((k) => k !== 'identifier'))}`);
}
