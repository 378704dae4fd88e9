// Picks the rbac and jwt_authn filters out of an inbound HCM's http_filters and builds their evaluators.
import { type AnyMessage, JWT_AUTHN_TYPE, RBAC_TYPE, unpackAny } from '../../xds/protos.js';
import { type AuthzEngine, compileRbac } from './engine.js';
import type { FetchJwks } from './jwks.js';
import { type JwtVerifier, compileJwt } from './jwt.js';

export interface HttpFilterEntry {
  name?: string;
  typed_config?: AnyMessage | Record<string, unknown>;
}

export interface InboundSecurity {
  engine: AuthzEngine;
  /** Absent when no RequestAuthentication applies. */
  jwt?: JwtVerifier;
  /** Filters that could not be decoded or evaluated; the engine fails closed on them. */
  errors: string[];
}

function decoded(tc: HttpFilterEntry['typed_config'], typeUrl: string): Record<string, unknown> | undefined {
  if (!tc) return undefined;
  const any = tc as AnyMessage;
  if (any.type_url !== typeUrl) return undefined;
  return any.value instanceof Uint8Array ? unpackAny(any) : (tc as Record<string, unknown>);
}

/**
 * Builds the RBAC engine (every rbac filter, in order) and the JWT verifier (the jwt_authn filter) from http_filters.
 * A filter that fails to decode becomes a deny-all stage: policy the proxy cannot read must not open the door.
 */
export function authzFiltersOf(httpFilters: readonly HttpFilterEntry[], fetchJwks?: FetchJwks): InboundSecurity {
  const errors: string[] = [];
  const rbac: Record<string, unknown>[] = [];
  let jwt: JwtVerifier | undefined;
  for (const f of httpFilters) {
    const typeUrl = (f.typed_config as AnyMessage | undefined)?.type_url;
    try {
      if (typeUrl === RBAC_TYPE) rbac.push(decoded(f.typed_config, RBAC_TYPE)!);
      else if (typeUrl === JWT_AUTHN_TYPE) jwt = compileJwt(decoded(f.typed_config, JWT_AUTHN_TYPE), fetchJwks);
    } catch (e) {
      errors.push(`${f.name ?? typeUrl}: ${(e as Error).message}; denying every request`);
      rbac.push({ matcher: {} });
    }
  }
  const engine = compileRbac(rbac);
  errors.push(...engine.errors, ...(jwt?.errors ?? []));
  return { engine, jwt, errors };
}
