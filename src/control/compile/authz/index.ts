// Layer-7 security compilers: AuthorizationPolicy -> RBAC filters, RequestAuthentication -> jwt_authn filter.
export { compileAuthorization, policyKey, RBAC_FILTER_NAME } from './authorization.js';
export type { AuthorizationResult, AppliedPolicy, HttpFilter } from './authorization.js';
export { compileJwtAuthn, jwtAuthnConfig, JWT_AUTHN_FILTER_NAME, JWT_PAYLOAD_METADATA_KEY, jwksClusterName } from './jwt-authn.js';
export { AUTHN_METADATA_FILTER } from './rules.js';
export { selectPolicies, appliesTo } from './select.js';
