// Token buckets and the local rate limiter with an injected clock: rate, per-caller isolation, Retry-After, scoping, LRU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalRateLimiter, TokenBucket, rateLimiterFromConfig, type RateLimitRule } from '../../../src/proxy/resilience/rate-limiter.js';

const perSecond = (n: number) => ({ maxTokens: n, tokensPerFill: n, fillIntervalMs: 1000 });

function limiter(rules: RateLimitRule[], maxCallers?: number) {
  let t = 0;
  const l = new LocalRateLimiter(rules, { now: () => t, maxCallers });
  return { l, at: (ms: number) => (t = ms) };
}

test('token bucket: starts full, refills lazily, caps at capacity', () => {
  const b = new TokenBucket(10, 5, 1000, 0);
  assert.equal(b.tokens, 10);
  b.tokens = 0;
  b.refill(500);
  assert.equal(b.tokens, 2.5);
  assert.equal(b.msUntilToken(500), 0);
  b.tokens = 0.5;
  assert.equal(b.msUntilToken(500), 100);
  b.refill(100_000);
  assert.equal(b.tokens, 10);
  assert.equal(b.full(100_000), true);
});

test('the configured rate is allowed within 10% over a simulated 10 s, whatever the offered load', () => {
  for (const [rate, offered] of [[10, 100], [100, 1000], [50, 60]] as const) {
    const { l, at } = limiter([{ name: 'ns/p', total: perSecond(rate) }]);
    let allowed = 0;
    for (let i = 0; i < offered * 10; i++) {
      at((i * 1000) / offered);
      if (l.take('spiffe://cluster.local/ns/a/sa/a').allowed) allowed++;
    }
    const want = rate * 10;
    assert.ok(Math.abs(allowed - want) <= 0.1 * want + rate /* the initial full bucket */, `${rate}/s offered ${offered}/s: ${allowed}`);
    assert.equal(l.allowedTotal, allowed);
    assert.equal(l.limited.total, offered * 10 - allowed);
  }
});

test('per-caller isolation: one noisy caller does not use another caller\'s tokens', () => {
  const { l, at } = limiter([{ name: 'ns/p', perCaller: perSecond(5) }]);
  at(0);
  for (let i = 0; i < 5; i++) assert.equal(l.take('noisy').allowed, true);
  const v = l.take('noisy');
  assert.deepEqual(v, { allowed: false, retryAfterSeconds: 1, limit: 'per_caller', rule: 'ns/p' });
  for (let i = 0; i < 5; i++) assert.equal(l.take('quiet').allowed, true, `quiet #${i}`);
  assert.equal(l.take('unauthenticated').allowed, true);
  assert.equal(l.limited.per_caller, 1);
});

test('total and per-caller together: a refused request costs no token anywhere', () => {
  const { l } = limiter([{ name: 'ns/p', total: perSecond(3), perCaller: perSecond(2) }]);
  assert.equal(l.take('a').allowed, true);
  assert.equal(l.take('a').allowed, true);
  assert.equal((l.take('a') as { limit: string }).limit, 'per_caller');
  assert.equal(l.take('b').allowed, true, 'the refused request did not spend a total token');
  assert.equal((l.take('c') as { limit: string }).limit, 'total');
});

test('Retry-After: whole seconds until a token, at least 1', () => {
  const cases: [number, number, number][] = [
    // requests, per ms, expected Retry-After after the bucket is emptied at t=0
    [1, 1000, 1],
    [1, 60_000, 60],
    [10, 60_000, 6],
    [100, 1000, 1],
  ];
  for (const [n, per, want] of cases) {
    const { l } = limiter([{ name: 'ns/p', total: { maxTokens: n, tokensPerFill: n, fillIntervalMs: per } }]);
    for (let i = 0; i < n; i++) l.take('x');
    const v = l.take('x');
    assert.equal(v.allowed, false);
    assert.equal((v as { retryAfterSeconds: number }).retryAfterSeconds, want, `${n} per ${per} ms`);
  }
  const { l, at } = limiter([{ name: 'ns/p', total: { maxTokens: 1, tokensPerFill: 1, fillIntervalMs: 60_000 } }]);
  l.take('x');
  at(45_000);
  assert.equal((l.take('x') as { retryAfterSeconds: number }).retryAfterSeconds, 15);
});

test('paths and routes scope a rule; unscoped rules apply to everything', () => {
  const { l } = limiter([
    { name: 'ns/api', paths: ['/api/*', '/v2'], total: perSecond(1) },
    { name: 'ns/route', routes: ['default/reviews#0'], total: perSecond(1) },
  ]);
  assert.equal(l.take('c', undefined, '/api/x').allowed, true);
  assert.equal(l.take('c', undefined, '/api/y').allowed, false);
  assert.equal(l.take('c', undefined, '/v2/z').allowed, false);
  assert.equal(l.take('c', undefined, '/other').allowed, true);
  assert.equal(l.take('c', undefined, undefined).allowed, true, 'no path: path-scoped rule does not apply');
  assert.equal(l.take('c', 'default/reviews#0', '/x').allowed, true);
  assert.deepEqual(l.take('c', 'default/reviews#0', '/x'), { allowed: false, retryAfterSeconds: 1, limit: 'total', rule: 'ns/route' });
});

test('per-caller map is bounded (least recently used goes) and full buckets are swept', () => {
  const { l, at } = limiter([{ name: 'ns/p', perCaller: perSecond(1) }], 2);
  l.take('a');
  l.take('b');
  l.take('a'); // refused, but a is now most recently used
  l.take('c'); // evicts b
  assert.equal(l.trackedCallers(), 2);
  assert.equal(l.take('a').allowed, false, 'a kept its empty bucket');
  at(10_000);
  l.sweep();
  assert.equal(l.trackedCallers(), 0);
});

test('rateLimiterFromConfig: Envoy defaults (disabled/unenforced when unset), shadow mode, descriptors merged per policy', () => {
  const always = { default_value: { numerator: 100, denominator: 'HUNDRED' } };
  const tb = (n: number) => ({ max_tokens: n, tokens_per_fill: { value: n }, fill_interval: { seconds: '1' } });
  assert.equal(rateLimiterFromConfig({ stat_prefix: 'x', token_bucket: tb(1) }), undefined, 'filter_enabled unset = 0%');
  assert.equal(rateLimiterFromConfig({ stat_prefix: 'x', filter_enabled: always }), undefined, 'nothing to limit');
  let t = 0;
  const shadow = rateLimiterFromConfig({ stat_prefix: 'x', filter_enabled: always, token_bucket: tb(1) }, { now: () => t })!;
  assert.equal(shadow.take('a').allowed, true);
  assert.equal(shadow.take('a').allowed, true, 'filter_enforced unset = 0%: counted, not refused');
  assert.equal(shadow.shadowLimited, 1);
  const warnings: string[] = [];
  const l = rateLimiterFromConfig(
    {
      stat_prefix: 'ratelimit|ns/top',
      filter_enabled: always,
      filter_enforced: always,
      token_bucket: tb(100),
      descriptors: [
        { entries: [{ key: 'trellis.policy', value: 'ns/p' }, { key: 'trellis.path', value: '/a' }], token_bucket: tb(5) },
        { entries: [{ key: 'trellis.policy', value: 'ns/p' }, { key: 'source.principal', value: '*' }, { key: 'trellis.path', value: '/a' }], token_bucket: tb(2) },
        { entries: [{ key: 'remote_address', value: '1.2.3.4' }], token_bucket: tb(1) },
      ],
    },
    { now: () => t },
    warnings,
  )!;
  assert.deepEqual(l.ruleNames, ['ns/top', 'ns/p']);
  assert.match(warnings[0], /remote_address/);
  assert.equal(l.take('a', undefined, '/a').allowed, true);
  assert.equal(l.take('a', undefined, '/a').allowed, true);
  assert.deepEqual(l.take('a', undefined, '/a'), { allowed: false, retryAfterSeconds: 1, limit: 'per_caller', rule: 'ns/p' });
});

test('repeated requests from the same caller keep LRU order and buckets exact (last-caller fast path)', () => {
  const { l, at } = limiter([{ name: 'ns/p', perCaller: perSecond(2) }], 2);
  assert.equal(l.take('a').allowed, true);
  assert.equal(l.take('b').allowed, true);
  assert.equal(l.take('a').allowed, true); // a: most recently used, bucket now empty
  assert.equal(l.take('a').allowed, false, 'the cached bucket is the same bucket: still 2 per second');
  l.take('c'); // evicts b, the least recently used
  assert.equal(l.trackedCallers(), 2);
  assert.equal(l.take('a').allowed, false, 'a kept its empty bucket');
  assert.equal(l.take('b').allowed, true, 'b was evicted: a fresh bucket');
  // A swept caller is forgotten even when it was the last one seen; its next request starts a fresh bucket.
  at(10_000);
  l.take('b');
  l.sweep();
  assert.equal(l.trackedCallers(), 1, 'b (just used) stays, the idle ones go');
  at(20_000);
  l.sweep();
  assert.equal(l.trackedCallers(), 0);
  assert.equal(l.take('b').allowed, true);
  assert.equal(l.trackedCallers(), 1, 'after a sweep the last caller is tracked again, not served from a stale cache');
});
