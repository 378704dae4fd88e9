// Proxy-side layer-7 security: JWT verification (jwt_authn) and RBAC evaluation of the inbound listener's filters.
export { compileRbac, evaluate, ALLOW_ALL } from './engine.js';
export type { AuthzEngine } from './engine.js';
export type { AuthzDecision, AuthzRequest } from './types.js';
export { compileJwt } from './jwt.js';
export type { JwtOptions, JwtResult, JwtVerifier, JwtVerifyRequest } from './jwt.js';
export { httpFetchJwks } from './jwks.js';
export type { FetchJwks } from './jwks.js';
export { authzFiltersOf } from './filters.js';
