// Verifies request JWTs per an Envoy jwt_authn config (Istio RequestAuthentication semantics) using jose.
import { type JWTPayload, decodeJwt, errors as joseErrors, jwtVerify } from 'jose';
import { type FetchJwks, type KeySource, asJwks, httpFetchJwks, localKeySource, remoteKeySource } from './jwks.js';

export type JwtResult =
  | { kind: 'none' }
  | {
      kind: 'ok';
      payload: Record<string, unknown>;
      /** `iss/sub`, Istio's request principal. */
      principal: string;
      /** Headers to set on the request forwarded to the app (payload and claim outputs). */
      headersToAdd: [string, string][];
      /** The header that carried the token, to remove when the provider does not forward it. */
      removeHeader?: string;
    }
  | { kind: 'invalid'; reason: string };

export interface JwtVerifyRequest {
  /** Lowercase header names. */
  headers: Record<string, string | string[] | undefined>;
  /** The raw query string, with or without the leading `?`. */
  query: string;
}

export interface JwtVerifier {
  verify(req: JwtVerifyRequest): Promise<JwtResult>;
  /** Header names this verifier outputs: the proxy strips them from every client request first, so they cannot be forged. */
  readonly outputHeaders: readonly string[];
  /** Providers that could not be set up (their tokens are rejected). */
  readonly errors: readonly string[];
}

type Location = { kind: 'header'; name: string; prefix: string } | { kind: 'param'; name: string } | { kind: 'cookie'; name: string };

interface Provider {
  name: string;
  issuer: string;
  audiences: string[];
  locations: Location[];
  forward: boolean;
  payloadHeader?: string;
  claimHeaders: [header: string, claim: string][];
  keys?: KeySource;
  setupError?: string;
  clockSkewSeconds: number;
}

/** Algorithms accepted; never `none`. Symmetric ones only ever match `oct` keys from an inline set. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'HS256', 'HS384', 'HS512'];
const DEFAULT_LOCATIONS: Location[] = [
  { kind: 'header', name: 'authorization', prefix: 'Bearer ' },
  { kind: 'param', name: 'access_token' },
];

type Obj = Record<string, any>;

function durationMs(d: Obj | undefined, fallback: number): number {
  if (!d) return fallback;
  const ms = Number(d.seconds ?? 0) * 1000 + Number(d.nanos ?? 0) / 1e6;
  return ms > 0 ? ms : fallback;
}

export interface JwtOptions {
  /** Minimum gap between JWKS refetches caused by unknown key ids or failures (default 10s). */
  minJwksRefetchMs?: number;
  now?: () => number;
}

function compileProvider(name: string, p: Obj, fetchJwks: FetchJwks, o: JwtOptions): Provider {
  const locations: Location[] = [
    ...(p.from_headers ?? []).map((h: Obj): Location => ({ kind: 'header', name: String(h.name).toLowerCase(), prefix: h.value_prefix ?? '' })),
    ...(p.from_params ?? []).map((n: string): Location => ({ kind: 'param', name: n })),
    ...(p.from_cookies ?? []).map((n: string): Location => ({ kind: 'cookie', name: n })),
  ];
  const provider: Provider = {
    name,
    issuer: String(p.issuer ?? ''),
    audiences: (p.audiences ?? []).map(String),
    locations: locations.length ? locations : DEFAULT_LOCATIONS,
    forward: p.forward === true,
    payloadHeader: p.forward_payload_header ? String(p.forward_payload_header).toLowerCase() : undefined,
    claimHeaders: (p.claim_to_headers ?? []).map((c: Obj): [string, string] => [String(c.header_name).toLowerCase(), String(c.claim_name)]),
    clockSkewSeconds: p.clock_skew_seconds !== undefined ? Number(p.clock_skew_seconds) : 60,
  };
  try {
    if (!provider.issuer) throw new Error('no issuer');
    if (p.local_jwks) {
      const text = p.local_jwks.inline_string ?? (p.local_jwks.inline_bytes ? Buffer.from(p.local_jwks.inline_bytes).toString() : undefined);
      if (text === undefined) throw new Error('local_jwks must be inline');
      provider.keys = localKeySource(asJwks(JSON.parse(text)));
    } else if (p.remote_jwks?.http_uri?.uri) {
      provider.keys = remoteKeySource({
        uri: String(p.remote_jwks.http_uri.uri),
        fetch: fetchJwks,
        timeoutMs: durationMs(p.remote_jwks.http_uri.timeout, 5000),
        cacheMs: durationMs(p.remote_jwks.cache_duration, 300_000),
        minRefetchMs: o.minJwksRefetchMs,
        now: o.now,
      });
    } else throw new Error('no key set (local_jwks or remote_jwks)');
  } catch (e) {
    provider.setupError = `provider ${name} (${provider.issuer}): ${(e as Error).message}`;
  }
  return provider;
}

function sameLocation(a: Location, b: Location): boolean {
  return a.kind === b.kind && a.name === b.name && (a.kind !== 'header' || a.prefix.toLowerCase() === (b as typeof a).prefix.toLowerCase());
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function cookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function extract(loc: Location, req: JwtVerifyRequest, query: () => URLSearchParams): string | undefined {
  if (loc.kind === 'header') {
    const v = first(req.headers[loc.name]);
    if (v === undefined) return undefined;
    if (!loc.prefix) return v.trim() || undefined;
    // Auth schemes are case-insensitive ("bearer" == "Bearer").
    if (v.length < loc.prefix.length || v.slice(0, loc.prefix.length).toLowerCase() !== loc.prefix.toLowerCase()) return undefined;
    return v.slice(loc.prefix.length).trim() || undefined;
  }
  if (loc.kind === 'param') return query().get(loc.name) || undefined;
  return cookie(first(req.headers.cookie), loc.name) || undefined;
}

function reasonOf(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return 'Jwt is expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'aud') return 'Audiences in Jwt are not allowed';
    if (e.claim === 'nbf') return 'Jwt not yet valid';
    if (e.claim === 'iss') return 'Jwt issuer is not configured';
    return `Jwt claim ${e.claim} is invalid`;
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return 'Jwt algorithm is not allowed';
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'Jwt verification fails';
  if (e instanceof joseErrors.JWKSNoMatchingKey || e instanceof joseErrors.JWKSMultipleMatchingKeys) return 'Jwks doesn\'t have key to match kid or alg from Jwt';
  if (e instanceof joseErrors.JWSInvalid || e instanceof joseErrors.JWTInvalid) return 'Jwt is not in the form of Header.Payload.Signature';
  if (e instanceof joseErrors.JOSENotSupported) return 'Jwt algorithm or key type is not supported';
  return `Jwt verification fails (${(e as Error)?.message ?? String(e)})`;
}

function claimString(payload: JWTPayload, path: string): string | undefined {
  let v: unknown = payload[path];
  if (v === undefined && path.includes('.')) {
    v = payload;
    for (const k of path.split('.')) v = v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj)[k] : undefined;
  }
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

async function verifyWith(p: Provider, token: string): Promise<{ payload: JWTPayload } | { error: string }> {
  if (p.setupError || !p.keys) return { error: `Jwks for issuer ${p.issuer} is unavailable` };
  let getter;
  try {
    getter = await p.keys.get();
  } catch (e) {
    return { error: `Jwks remote fetch is failed (${(e as Error).message})` };
  }
  const opts = {
    issuer: p.issuer,
    algorithms: ALGORITHMS,
    clockTolerance: p.clockSkewSeconds,
    ...(p.audiences.length ? { audience: p.audiences } : {}),
  };
  try {
    return { payload: (await jwtVerify(token, getter, opts)).payload };
  } catch (e) {
    if (e instanceof joseErrors.JWKSNoMatchingKey && (await p.keys.refreshForUnknownKey())) {
      try {
        return { payload: (await jwtVerify(token, await p.keys.get(), opts)).payload };
      } catch (e2) {
        return { error: reasonOf(e2) };
      }
    }
    return { error: reasonOf(e) };
  }
}

interface Found {
  token: string;
  loc: Location;
}

/**
 * Builds a verifier from an unpacked `JwtAuthentication`. Semantics (Istio's requires_any + allow_missing): no token
 * -> `none`; every token found must verify against a provider listing its issuer and location, else `invalid`.
 */
export function compileJwt(config: Obj | undefined, fetchJwks: FetchJwks = httpFetchJwks, options: JwtOptions = {}): JwtVerifier {
  const providers = Object.entries((config?.providers ?? {}) as Record<string, Obj>)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, p]) => compileProvider(name, p, fetchJwks, options));
  const locations: Location[] = [];
  for (const p of providers) for (const l of p.locations) if (!locations.some((x) => sameLocation(x, l))) locations.push(l);
  const outputHeaders = [...new Set(providers.flatMap((p) => [...(p.payloadHeader ? [p.payloadHeader] : []), ...p.claimHeaders.map(([h]) => h)]))];
  const errors = providers.filter((p) => p.setupError).map((p) => p.setupError!);

  async function verifyOne(f: Found): Promise<JwtResult> {
    let iss: unknown;
    try {
      iss = decodeJwt(f.token).iss;
    } catch {
      return { kind: 'invalid', reason: 'Jwt is not in the form of Header.Payload.Signature' };
    }
    if (typeof iss !== 'string') return { kind: 'invalid', reason: 'Jwt has no issuer' };
    const byIssuer = providers.filter((p) => p.issuer === iss);
    if (byIssuer.length === 0) return { kind: 'invalid', reason: `Jwt issuer ${iss} is not configured` };
    const candidates = byIssuer.filter((p) => p.locations.some((l) => sameLocation(l, f.loc)));
    if (candidates.length === 0) return { kind: 'invalid', reason: `Jwt from issuer ${iss} is not accepted in ${f.loc.kind} ${f.loc.name}` };
    let firstError = '';
    for (const p of candidates) {
      const r = await verifyWith(p, f.token);
      if ('error' in r) {
        firstError ||= r.error;
        continue;
      }
      const payload = r.payload;
      const headersToAdd: [string, string][] = [];
      if (p.payloadHeader) headersToAdd.push([p.payloadHeader, f.token.split('.')[1]]);
      for (const [header, claim] of p.claimHeaders) {
        const v = claimString(payload, claim);
        if (v !== undefined) headersToAdd.push([header, v]);
      }
      return {
        kind: 'ok',
        payload: payload as Record<string, unknown>,
        principal: `${iss}/${typeof payload.sub === 'string' ? payload.sub : ''}`,
        headersToAdd,
        ...(!p.forward && f.loc.kind === 'header' ? { removeHeader: f.loc.name } : {}),
      };
    }
    return { kind: 'invalid', reason: firstError };
  }

  return {
    outputHeaders,
    errors,
    async verify(req) {
      let params: URLSearchParams | undefined;
      const query = () => (params ??= new URLSearchParams(req.query.startsWith('?') ? req.query.slice(1) : req.query));
      let ok: JwtResult | undefined;
      for (const loc of locations) {
        const token = extract(loc, req, query);
        if (token === undefined) continue;
        const r = await verifyOne({ token, loc });
        if (r.kind === 'invalid') return r;
        ok ??= r;
      }
      return ok ?? { kind: 'none' };
    },
  };
}
