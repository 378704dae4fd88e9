// retryOn semantics from tables, idempotency and body rules, back-off bounds, the overall deadline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RetryPolicy } from '../../../src/proxy/route/types.js';
import {
  backoffMs,
  MAX_RETRY_BODY_BYTES,
  retryFitsDeadline,
  shouldRetry,
  tryTimeoutMs,
  type AttemptOutcome,
  type RetryRequest,
} from '../../../src/proxy/resilience/retry-policy.js';

const policy = (retryOn: string, extra: Partial<RetryPolicy> = {}): RetryPolicy => ({
  retryOn: new Set(retryOn.split(',').filter(Boolean)),
  numRetries: 2,
  perTryTimeoutMs: 0,
  backoffBaseMs: 25,
  backoffMaxMs: 250,
  retriableStatusCodes: [],
  ...extra,
});
const GET: RetryRequest = { method: 'GET', bodyBytes: 0, bodyBuffered: true };
const POST: RetryRequest = { method: 'POST', bodyBytes: 10, bodyBuffered: true };
const resp = (status: number, grpcStatus?: number): AttemptOutcome => ({ kind: 'response', status, grpcStatus });
const RESET: AttemptOutcome = { kind: 'reset' };
const CONNECT: AttemptOutcome = { kind: 'connect_failure' };
const REFUSED: AttemptOutcome = { kind: 'refused_stream' };
const TIMEOUT: AttemptOutcome = { kind: 'per_try_timeout' };

// [retryOn, outcome, retry?, reason]
const TABLE: [string, AttemptOutcome, boolean, string][] = [
  ['5xx', resp(500), true, '5xx'],
  ['5xx', resp(503), true, '5xx'],
  ['5xx', resp(599), true, '5xx'],
  ['5xx', resp(404), false, 'success'],
  ['5xx', resp(200), false, 'success'],
  ['5xx', RESET, true, '5xx'],
  ['5xx', CONNECT, true, '5xx'],
  ['5xx', REFUSED, true, '5xx'],
  ['5xx', TIMEOUT, true, '5xx'],
  ['gateway-error', resp(502), true, 'gateway-error'],
  ['gateway-error', resp(503), true, 'gateway-error'],
  ['gateway-error', resp(504), true, 'gateway-error'],
  ['gateway-error', resp(500), false, 'not_retriable'],
  ['gateway-error', resp(501), false, 'not_retriable'],
  ['gateway-error', TIMEOUT, true, 'gateway-error'],
  ['gateway-error', RESET, true, 'gateway-error'],
  ['reset', RESET, true, 'reset'],
  ['reset', TIMEOUT, true, 'reset'],
  ['reset', CONNECT, true, 'reset'],
  ['reset', resp(503), false, 'not_retriable'],
  ['connect-failure', CONNECT, true, 'connect-failure'],
  ['connect-failure', RESET, false, 'not_retriable'],
  ['connect-failure', resp(503), false, 'not_retriable'],
  ['connect-failure', TIMEOUT, false, 'not_retriable'],
  ['refused-stream', REFUSED, true, 'refused-stream'],
  ['refused-stream', RESET, false, 'not_retriable'],
  ['retriable-4xx', resp(409), true, 'retriable-4xx'],
  ['retriable-4xx', resp(429), false, 'success'],
  ['retriable-4xx', resp(503), false, 'not_retriable'],
  ['', resp(503), false, 'not_configured'],
  // gRPC by grpc-status (HTTP 200, trailers-only)
  ['cancelled', resp(200, 1), true, 'cancelled'],
  ['deadline-exceeded', resp(200, 4), true, 'deadline-exceeded'],
  ['resource-exhausted', resp(200, 8), true, 'resource-exhausted'],
  ['internal', resp(200, 13), true, 'internal'],
  ['unavailable', resp(200, 14), true, 'unavailable'],
  ['unavailable', resp(200, 0), false, 'success'],
  ['unavailable', resp(200, 4), false, 'not_retriable'],
  ['cancelled,deadline-exceeded,resource-exhausted', resp(200, 14), false, 'not_retriable'],
  ['5xx', resp(200, 14), false, 'not_retriable'],
  // Istio's default retryOn
  ['connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', resp(503), false, 'not_retriable'],
];

test('retryOn table (GET)', () => {
  for (const [on, outcome, retry, reason] of TABLE) {
    const v = shouldRetry(policy(on), 1, outcome, GET);
    assert.deepEqual({ retry: v.retry, reason: v.reason }, { retry, reason }, `${on} / ${JSON.stringify(outcome)}`);
  }
});

test('retriable-status-codes retries exactly the listed codes', () => {
  const p = policy('retriable-status-codes', { retriableStatusCodes: [503, 404] });
  assert.equal(shouldRetry(p, 1, resp(503), GET).reason, 'retriable-status-codes');
  assert.equal(shouldRetry(p, 1, resp(404), GET).reason, 'retriable-status-codes');
  assert.equal(shouldRetry(p, 1, resp(500), GET).retry, false);
  assert.equal(shouldRetry(p, 1, resp(200), GET).retry, false);
  // Codes without the token do nothing (Envoy).
  assert.equal(shouldRetry(policy('5xx', { retriableStatusCodes: [404] }), 1, resp(404), GET).retry, false);
});

test('no retries unless configured: undefined policy, 0 retries, empty retryOn', () => {
  assert.deepEqual(shouldRetry(undefined, 1, resp(503), GET), { retry: false, reason: 'not_configured' });
  assert.equal(shouldRetry(policy('5xx', { numRetries: 0 }), 1, resp(503), GET).reason, 'not_configured');
  assert.equal(shouldRetry(policy(''), 1, RESET, GET).reason, 'not_configured');
});

test('attempts: numRetries retries after the first try, then no more', () => {
  const p = policy('5xx', { numRetries: 2 });
  assert.equal(shouldRetry(p, 1, resp(503), GET).retry, true);
  assert.equal(shouldRetry(p, 2, resp(503), GET).retry, true);
  assert.deepEqual(shouldRetry(p, 3, resp(503), GET), { retry: false, reason: 'attempts_exhausted' });
});

test('non-idempotent methods: not retried by default; non-idempotent token or route flag allows; never-sent failures always retry', () => {
  const p = policy('5xx,connect-failure,refused-stream,reset');
  for (const method of ['POST', 'PATCH', 'CONNECT']) {
    const req = { ...POST, method };
    assert.deepEqual(shouldRetry(p, 1, resp(503), req), { retry: false, reason: 'non_idempotent' }, method);
    assert.equal(shouldRetry(p, 1, RESET, req).reason, 'non_idempotent', `${method} reset may have reached the app`);
    assert.equal(shouldRetry(p, 1, TIMEOUT, req).reason, 'non_idempotent');
    // The upstream never saw it: retrying cannot duplicate it.
    assert.equal(shouldRetry(p, 1, CONNECT, req).retry, true, `${method} connect failure`);
    assert.equal(shouldRetry(p, 1, REFUSED, req).retry, true, `${method} refused stream`);
  }
  for (const method of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']) {
    assert.equal(shouldRetry(p, 1, resp(503), { ...GET, method }).retry, true, method);
  }
  assert.equal(shouldRetry(policy('5xx,non-idempotent'), 1, resp(503), POST).retry, true);
  assert.equal(shouldRetry(p, 1, resp(503), { ...POST, retryNonIdempotent: true }).retry, true);
});

test('bodies: over 64 KiB never retried, unbuffered bodies never retried, exactly 64 KiB is', () => {
  const p = policy('5xx,connect-failure');
  assert.deepEqual(shouldRetry(p, 1, resp(503), { method: 'PUT', bodyBytes: 100 * 1024, bodyBuffered: false }), { retry: false, reason: 'body_too_large' });
  assert.equal(shouldRetry(p, 1, CONNECT, { method: 'PUT', bodyBytes: 100 * 1024, bodyBuffered: true }).reason, 'body_too_large');
  assert.equal(shouldRetry(p, 1, resp(503), { method: 'PUT', bodyBytes: 10, bodyBuffered: false }).reason, 'body_not_buffered');
  assert.equal(shouldRetry(p, 1, resp(503), { method: 'PUT', bodyBytes: MAX_RETRY_BODY_BYTES, bodyBuffered: true }).retry, true);
  assert.equal(shouldRetry(p, 1, resp(503), { method: 'GET', bodyBytes: 0, bodyBuffered: false }).retry, true);
});

test('backoffMs: full jitter within [0, min(max, base*2^(n-1)))', () => {
  const cases: [number, number, number, number][] = [
    // retry, base, max, ceiling
    [1, 25, 250, 25],
    [2, 25, 250, 50],
    [3, 25, 250, 100],
    [4, 25, 250, 200],
    [5, 25, 250, 250],
    [40, 25, 250, 250],
    [1, 100, 50, 100], // max below base: base wins (Envoy)
  ];
  for (const [n, base, max, ceiling] of cases) {
    assert.equal(backoffMs(n, base, max, () => 0), 0);
    assert.equal(backoffMs(n, base, max, () => 0.999999), ceiling - 1, `retry ${n}`);
    assert.equal(backoffMs(n, base, max, () => 0.5), Math.floor(ceiling / 2));
  }
  assert.equal(backoffMs(1, 0, 0, () => 0.5), 0);
  for (let i = 0; i < 200; i++) {
    const v = backoffMs(3, 25, 250);
    assert.ok(v >= 0 && v < 100 && Number.isInteger(v));
  }
});

test('deadline: no retry starts at or past the overall deadline; a try never outlives it', () => {
  assert.equal(retryFitsDeadline(1000, 50, 0), true, 'no deadline');
  assert.equal(retryFitsDeadline(1000, 50, 1100), true);
  assert.equal(retryFitsDeadline(1000, 100, 1100), false);
  assert.equal(retryFitsDeadline(1100, 0, 1100), false);
  assert.equal(tryTimeoutMs(1000, 0, 0), 0, 'no timeouts at all');
  assert.equal(tryTimeoutMs(1000, 300, 0), 300);
  assert.equal(tryTimeoutMs(1000, 300, 2000), 300);
  assert.equal(tryTimeoutMs(1000, 300, 1200), 200, 'cut to the deadline');
  assert.equal(tryTimeoutMs(1000, 0, 1200), 200, 'route timeout bounds each try');
  // Simulated retry loop: every try starts and ends within the deadline.
  const deadline = 1000;
  const p = policy('5xx', { numRetries: 10, perTryTimeoutMs: 150 });
  let now = 0;
  let attempt = 1;
  for (;;) {
    const t = tryTimeoutMs(now, p.perTryTimeoutMs, deadline);
    now += t; // the try timed out
    assert.ok(now <= deadline, `try ${attempt} ended at ${now}`);
    const v = shouldRetry(p, attempt, TIMEOUT, GET);
    if (!v.retry) break;
    const wait = backoffMs(attempt, p.backoffBaseMs, p.backoffMaxMs, () => 0.9);
    if (!retryFitsDeadline(now, wait, deadline)) break;
    now += wait;
    attempt++;
  }
  assert.ok(attempt > 1 && now <= deadline);
});
