// Whether a finished try may be retried (Envoy/Istio retryOn semantics, idempotent-only by default), back-off and deadline math.
import type { RetryPolicy } from '../route/types.js';

/** How one try ended. `grpcStatus` is the grpc-status of a trailers-only response (or of the trailers, if known). */
export type AttemptOutcome =
  | { kind: 'response'; status: number; grpcStatus?: number }
  | { kind: 'reset' }
  | { kind: 'connect_failure' }
  | { kind: 'refused_stream' }
  | { kind: 'per_try_timeout' };

export interface RetryRequest {
  method: string;
  /** Request body bytes seen so far (0 for no body). */
  bodyBytes: number;
  /** True when the whole body is held in memory and can be sent again. */
  bodyBuffered: boolean;
  /** Set by the proxy from route/cluster config only (never from a request header). */
  retryNonIdempotent?: boolean;
}

export interface RetryVerdict {
  retry: boolean;
  /** The retryOn condition that matched, or why not (static strings: no allocation per call). */
  reason: string;
}

/** Bodies larger than this are streamed, never buffered, and so never retried. */
export const MAX_RETRY_BODY_BYTES = 64 * 1024;

/**
 * retryOn token that lets a route retry POST/PATCH/... on response-level conditions. It lives in the
 * VirtualService `retries.retryOn` (so in RDS), never in a request header a client could set.
 */
export const NON_IDEMPOTENT_TOKEN = 'non-idempotent';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** grpc-status codes by Envoy retryOn name. */
export const GRPC_RETRY_ON: Readonly<Record<string, number>> = Object.freeze({
  cancelled: 1,
  'deadline-exceeded': 4,
  'resource-exhausted': 8,
  internal: 13,
  unavailable: 14,
});

function verdict(retry: boolean, reason: string): RetryVerdict {
  return retry ? RETRY[reason] ?? { retry, reason } : NO[reason] ?? { retry, reason };
}

const REASONS = [
  '5xx', 'gateway-error', 'reset', 'connect-failure', 'refused-stream', 'retriable-4xx', 'retriable-status-codes',
  ...Object.keys(GRPC_RETRY_ON),
  'not_configured', 'attempts_exhausted', 'non_idempotent', 'body_too_large', 'body_not_buffered', 'not_retriable', 'success',
];
const RETRY: Record<string, RetryVerdict> = {};
const NO: Record<string, RetryVerdict> = {};
for (const r of REASONS) {
  RETRY[r] = Object.freeze({ retry: true, reason: r });
  NO[r] = Object.freeze({ retry: false, reason: r });
}

/** The retryOn condition an outcome matches under `on`, or undefined. */
function matchCondition(policy: RetryPolicy, outcome: AttemptOutcome): string | undefined {
  const on = policy.retryOn;
  switch (outcome.kind) {
    case 'connect_failure':
      if (on.has('connect-failure')) return 'connect-failure';
      break;
    case 'refused_stream':
      if (on.has('refused-stream')) return 'refused-stream';
      break;
    case 'reset':
    case 'per_try_timeout':
      break;
    case 'response': {
      const s = outcome.status;
      if (s >= 500 && s <= 599 && on.has('5xx')) return '5xx';
      if ((s === 502 || s === 503 || s === 504) && on.has('gateway-error')) return 'gateway-error';
      if (s === 409 && on.has('retriable-4xx')) return 'retriable-4xx';
      if (on.has('retriable-status-codes') && policy.retriableStatusCodes.includes(s)) return 'retriable-status-codes';
      const g = outcome.grpcStatus;
      if (g !== undefined && g !== 0) {
        if (g === 1 && on.has('cancelled')) return 'cancelled';
        if (g === 4 && on.has('deadline-exceeded')) return 'deadline-exceeded';
        if (g === 8 && on.has('resource-exhausted')) return 'resource-exhausted';
        if (g === 13 && on.has('internal')) return 'internal';
        if (g === 14 && on.has('unavailable')) return 'unavailable';
      }
      return undefined;
    }
  }
  // Envoy: 5xx, gateway-error and reset all cover a try that got no response (reset, connect failure,
  // refused stream, per-try timeout), since the proxy answers those itself with a 5xx.
  if (on.has('5xx')) return '5xx';
  if (on.has('gateway-error')) return 'gateway-error';
  if (on.has('reset')) return 'reset';
  return undefined;
}

/**
 * Decides whether to retry after try number `attempt` (1 = the first try) ended with `outcome`.
 * Order: configured at all, attempts left, outcome matches retryOn, body replayable, method safe.
 * Non-idempotent methods are retried only when the route's retryOn holds `non-idempotent` (or the
 * caller passes retryNonIdempotent from cluster/route config) — except after connect-failure and
 * refused-stream, where the upstream provably never saw the request (RFC 9113 8.7), so a retry cannot duplicate it.
 */
export function shouldRetry(policy: RetryPolicy | undefined, attempt: number, outcome: AttemptOutcome, req: RetryRequest): RetryVerdict {
  if (!policy || policy.numRetries <= 0 || policy.retryOn.size === 0) return NO.not_configured;
  if (outcome.kind === 'response' && outcome.status < 500 && outcome.status !== 409 && (outcome.grpcStatus === undefined || outcome.grpcStatus === 0)) {
    if (!policy.retriableStatusCodes.includes(outcome.status)) return NO.success;
  }
  if (attempt > policy.numRetries) return NO.attempts_exhausted;
  const cond = matchCondition(policy, outcome);
  if (cond === undefined) return NO.not_retriable;
  if (req.bodyBytes > MAX_RETRY_BODY_BYTES) return NO.body_too_large;
  if (req.bodyBytes > 0 && !req.bodyBuffered) return NO.body_not_buffered;
  const neverSent = outcome.kind === 'connect_failure' || outcome.kind === 'refused_stream';
  if (!neverSent && !IDEMPOTENT.has(req.method) && !req.retryNonIdempotent && !policy.retryOn.has(NON_IDEMPOTENT_TOKEN)) {
    return NO.non_idempotent;
  }
  return verdict(true, cond);
}

/**
 * Back-off before retry number `retry` (1 = the first retry): full jitter over an exponentially growing
 * ceiling, min(max, base * 2^(retry-1)). `random` returns [0, 1).
 */
export function backoffMs(retry: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  if (!(baseMs > 0)) return 0;
  const exp = Math.min(30, Math.max(0, retry - 1));
  const ceiling = Math.min(Math.max(maxMs, baseMs), baseMs * 2 ** exp);
  return Math.floor(random() * ceiling);
}

/**
 * True when a retry that waits `delayMs` from `now` still starts before the overall `deadline`
 * (absolute ms on the same clock; 0 = no deadline).
 */
export function retryFitsDeadline(now: number, delayMs: number, deadline: number): boolean {
  return deadline === 0 || now + delayMs < deadline;
}

/**
 * Timeout for a try starting at `now`: the per-try timeout, cut to what is left of the overall deadline.
 * 0 = no timeout at all; a negative result never happens (returns 1 when the deadline is already due,
 * though callers should check retryFitsDeadline first).
 */
export function tryTimeoutMs(now: number, perTryTimeoutMs: number, deadline: number): number {
  if (deadline === 0) return perTryTimeoutMs > 0 ? perTryTimeoutMs : 0;
  const left = Math.max(1, Math.ceil(deadline - now));
  return perTryTimeoutMs > 0 && perTryTimeoutMs < left ? perTryTimeoutMs : left;
}
