// The resilience building blocks the proxy's request path binds: retries, budget, breaker, outlier detection, rate limit.
export { shouldRetry, backoffMs, retryFitsDeadline, tryTimeoutMs, MAX_RETRY_BODY_BYTES, NON_IDEMPOTENT_TOKEN, GRPC_RETRY_ON } from './retry-policy.js';
export type { AttemptOutcome, RetryRequest, RetryVerdict } from './retry-policy.js';
export { RetryBudget, retryBudgetOptionsFromCluster, DEFAULT_RETRY_BUDGET, type RetryBudgetOptions } from './retry-budget.js';
export { CircuitBreaker, breakerLimitsFromCluster, BREAKER_KINDS, DEFAULT_LIMITS, type BreakerKind, type BreakerLimits } from './circuit-breaker.js';
export { OutlierDetector, outlierConfigFromCluster, ENVOY_OUTLIER_DEFAULTS } from './outlier-detector.js';
export type { OutlierConfig, OutlierResult, OutlierSnapshot, EjectionReason } from './outlier-detector.js';
export { LocalRateLimiter, TokenBucket, rateLimiterFromConfig } from './rate-limiter.js';
export type { RateLimitRule, RateLimitVerdict, BucketSpec, LimiterOptions } from './rate-limiter.js';
export { ResilienceRegistry, type ClusterResilience, type ResilienceOptions, type SnapshotView } from './cluster-resilience.js';
