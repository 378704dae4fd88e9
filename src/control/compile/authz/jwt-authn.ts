// Compiles the RequestAuthentications that apply to a workload into one Envoy jwt_authn HTTP filter (Istio semantics).
import type { JWTRule, RequestAuthenticationSpec, Resource } from '../../../api/types.js';
import { parseDuration } from '../../../api/duration.js';
import { type AnyMessage, JWT_AUTHN_TYPE, packAny } from '../../../xds/protos.js';
import type { MeshSettings, WorkloadInstance } from '../../model.js';
import { policyNamespace, selectPolicies } from './select.js';

export const JWT_AUTHN_FILTER_NAME = 'envoy.filters.http.jwt_authn';
/** Where the verified payload goes in dynamic metadata (`envoy.filters.http.jwt_authn` namespace). */
export const JWT_PAYLOAD_METADATA_KEY = 'jwt_payload';
export const DEFAULT_JWKS_CACHE_SECONDS = 300;
export const DEFAULT_JWKS_TIMEOUT_MS = 5000;
const EMPTY_JWKS = '{"keys":[]}';

function msDuration(ms: number): { seconds: number; nanos?: number } {
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  return nanos ? { seconds, nanos } : { seconds };
}

/** The cluster name a jwks URI is fetched through, for Envoy (`jwks|<host[:port]>`). */
export function jwksClusterName(uri: string): string {
  try {
    return `jwks|${new URL(uri).host}`;
  } catch {
    return 'jwks|invalid';
  }
}

function jwksSource(rule: JWTRule, where: string, warnings: string[]): Record<string, unknown> {
  if (rule.jwks !== undefined) {
    if (typeof rule.jwks !== 'string') {
      warnings.push(`${where}.jwks must be a string holding a JSON Web Key Set; tokens from ${rule.issuer} are rejected`);
      return { local_jwks: { inline_string: EMPTY_JWKS } };
    }
    try {
      const parsed = JSON.parse(rule.jwks) as { keys?: unknown };
      if (!parsed || !Array.isArray(parsed.keys)) throw new Error('no "keys" list');
      return { local_jwks: { inline_string: rule.jwks } };
    } catch (e) {
      warnings.push(`${where}.jwks is not a JSON Web Key Set (${(e as Error).message}); tokens from ${rule.issuer} are rejected`);
      return { local_jwks: { inline_string: EMPTY_JWKS } };
    }
  }
  if (rule.jwksUri !== undefined) {
    let ok = false;
    try {
      const u = new URL(String(rule.jwksUri));
      ok = u.protocol === 'https:' || u.protocol === 'http:';
    } catch {
      ok = false;
    }
    if (!ok) {
      warnings.push(`${where}.jwksUri ${JSON.stringify(rule.jwksUri)} is not an http(s) URL; tokens from ${rule.issuer} are rejected`);
      return { local_jwks: { inline_string: EMPTY_JWKS } };
    }
    let timeoutMs = DEFAULT_JWKS_TIMEOUT_MS;
    if (rule.timeout !== undefined) {
      const t = parseDuration(rule.timeout);
      if (t === undefined || t <= 0) warnings.push(`${where}.timeout ${JSON.stringify(rule.timeout)} is not a duration; using 5s`);
      else timeoutMs = t;
    }
    return {
      remote_jwks: {
        http_uri: { uri: rule.jwksUri, cluster: jwksClusterName(rule.jwksUri), timeout: msDuration(timeoutMs) },
        cache_duration: { seconds: DEFAULT_JWKS_CACHE_SECONDS },
      },
    };
  }
  warnings.push(
    `${where}: neither jwks nor jwksUri is set and OpenID discovery is not supported; tokens from ${rule.issuer} are rejected`,
  );
  return { local_jwks: { inline_string: EMPTY_JWKS } };
}

const KNOWN_FIELDS = new Set([
  'issuer', 'audiences', 'jwksUri', 'jwks', 'fromHeaders', 'fromParams', 'fromCookies',
  'outputPayloadToHeader', 'forwardOriginalToken', 'outputClaimToHeaders', 'timeout',
]);

/** A list field as strings, or [] with a warning when it is not a list of strings. */
function stringList(v: unknown, field: string, warnings: string[]): string[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  warnings.push(`${field} must be a list of strings; ignored`);
  return [];
}

function headerList(v: unknown, field: string, warnings: string[]): { name: string; prefix?: string }[] {
  if (v === undefined || v === null) return [];
  const ok = Array.isArray(v) && v.every((h) => h && typeof h.name === 'string' && h.name !== '' && (h.prefix === undefined || typeof h.prefix === 'string'));
  if (ok) return v;
  warnings.push(`${field} must be a list of {name, prefix}; ignored`);
  return [];
}

function provider(rule: JWTRule, where: string, warnings: string[]): Record<string, unknown> {
  for (const k of Object.keys(rule)) if (!KNOWN_FIELDS.has(k)) warnings.push(`${where}.${k} is not supported; ignored`);
  const audiences = stringList(rule.audiences, `${where}.audiences`, warnings);
  const fromHeaders = headerList(rule.fromHeaders, `${where}.fromHeaders`, warnings);
  const fromParams = stringList(rule.fromParams, `${where}.fromParams`, warnings);
  const fromCookies = stringList(rule.fromCookies, `${where}.fromCookies`, warnings);
  const claims = Array.isArray(rule.outputClaimToHeaders) ? rule.outputClaimToHeaders : [];
  if (rule.outputClaimToHeaders !== undefined && !Array.isArray(rule.outputClaimToHeaders)) {
    warnings.push(`${where}.outputClaimToHeaders must be a list; ignored`);
  }
  // A location list that was given but unusable must not silently widen to the default locations.
  if (rule.fromHeaders !== undefined || rule.fromParams !== undefined || rule.fromCookies !== undefined) {
    if (fromHeaders.length + fromParams.length + fromCookies.length === 0) fromHeaders.push({ name: 'x-trellis-no-jwt-location' });
  }
  const p: Record<string, unknown> = {
    issuer: rule.issuer,
    ...jwksSource(rule, where, warnings),
    forward: rule.forwardOriginalToken === true,
    payload_in_metadata: JWT_PAYLOAD_METADATA_KEY,
  };
  if (audiences.length) p.audiences = audiences;
  if (fromHeaders.length) {
    p.from_headers = fromHeaders.map((h) => ({
      name: String(h.name).toLowerCase(),
      ...(h.prefix ? { value_prefix: h.prefix } : {}),
    }));
  }
  if (fromParams.length) p.from_params = fromParams;
  if (fromCookies.length) p.from_cookies = fromCookies;
  if (typeof rule.outputPayloadToHeader === 'string' && rule.outputPayloadToHeader) {
    p.forward_payload_header = rule.outputPayloadToHeader.toLowerCase();
  }
  if (claims.length) {
    p.claim_to_headers = claims
      .filter((c) => {
        const good = c && typeof c.header === 'string' && c.header !== '' && typeof c.claim === 'string' && c.claim !== '';
        if (!good) warnings.push(`${where}.outputClaimToHeaders needs header and claim; entry ignored`);
        return good;
      })
      .map((c) => ({ header_name: c.header.toLowerCase(), claim_name: c.claim }));
  }
  return p;
}

/**
 * One `envoy.filters.http.jwt_authn` filter holding a provider per jwtRule of every RequestAuthentication that applies,
 * and one rule for all paths: requires_any(all providers, allow_missing). A request without a token passes (authz
 * decides); a token that is invalid or from an unlisted issuer is rejected (401). Undefined when nothing applies.
 * Warnings (fields Trellis cannot honour) are pushed into `warnings` when given.
 */
export function compileJwtAuthn(
  reqAuths: Resource<RequestAuthenticationSpec>[],
  workload: WorkloadInstance,
  mesh: MeshSettings,
  warnings: string[] = [],
): { name: string; typed_config: AnyMessage } | undefined {
  const config = jwtAuthnConfig(reqAuths, workload, mesh, warnings);
  return config && { name: JWT_AUTHN_FILTER_NAME, typed_config: packAny(JWT_AUTHN_TYPE, config) };
}

/** The JwtAuthentication config compileJwtAuthn packs, as a plain proto-shaped object; undefined when nothing applies. */
export function jwtAuthnConfig(
  reqAuths: Resource<RequestAuthenticationSpec>[],
  workload: WorkloadInstance,
  mesh: MeshSettings,
  warnings: string[] = [],
): Record<string, unknown> | undefined {
  const selected = selectPolicies(reqAuths, workload, mesh, warnings);
  const providers: Record<string, Record<string, unknown>> = {};
  let n = 0;
  for (const ra of selected) {
    const where = `RequestAuthentication ${policyNamespace(ra)}/${ra.metadata?.name ?? ''}`;
    const rules = Array.isArray(ra.spec?.jwtRules) ? ra.spec.jwtRules : [];
    rules.forEach((rule, i) => {
      const w = `${where} jwtRules[${i}]`;
      if (!rule || typeof rule !== 'object' || typeof rule.issuer !== 'string' || rule.issuer === '') {
        warnings.push(`${w}.issuer is required; rule ignored`);
        return;
      }
      providers[`origins-${n++}`] = provider(rule, w, warnings);
    });
  }
  const names = Object.keys(providers);
  if (names.length === 0) return undefined;
  return {
    providers,
    rules: [
      {
        match: { prefix: '/' },
        requires: {
          requires_any: { requirements: [...names.map((provider_name) => ({ provider_name })), { allow_missing: {} }] },
        },
      },
    ],
  };
}
