// The retry budget under a simulated 503 storm, window sliding, config from cluster metadata.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RetryBudget, retryBudgetOptionsFromCluster, DEFAULT_RETRY_BUDGET } from '../../../src/proxy/resilience/retry-budget.js';

test('a 503 storm over a simulated minute: retries <= 20% of requests + 10/s, and the budget is used', () => {
  for (const rps of [10, 100, 1000]) {
    const b = new RetryBudget();
    let requests = 0;
    let retries = 0;
    // Every request fails and wants up to 3 retries; requests evenly spread over each second.
    for (let ms = 0; ms < 60_000; ms += 1000 / rps) {
      b.onRequest(ms);
      requests++;
      for (let k = 0; k < 3; k++) if (b.tryRetry(ms)) retries++;
    }
    const cap = 0.2 * requests + 10 * 60;
    assert.ok(retries <= cap, `${rps} rps: ${retries} retries > ${cap}`);
    assert.ok(retries >= 0.9 * Math.min(cap, 3 * requests), `${rps} rps: budget barely used (${retries} of ${cap})`);
    assert.equal(b.allowed, retries);
    assert.ok(b.exhausted > 0);
  }
});

test('floor: with no traffic, minPerSecond x window retries are allowed, then none until the window slides', () => {
  const b = new RetryBudget({ ratio: 0.2, minPerSecond: 2, windowSeconds: 5 });
  let ok = 0;
  for (let i = 0; i < 20; i++) if (b.tryRetry(100)) ok++;
  assert.equal(ok, 10);
  assert.equal(b.tryRetry(4999), false, 'same window');
  assert.equal(b.tryRetry(5000), true, 'the bucket of second 0 left the window');
  assert.deepEqual(b.window(5000), { requests: 0, retries: 1, limit: 10 });
});

test('ratio: 100 requests allow 20 retries beyond the floor; old requests stop counting after the window', () => {
  const b = new RetryBudget({ ratio: 0.2, minPerSecond: 0, windowSeconds: 10 });
  for (let i = 0; i < 100; i++) b.onRequest(0);
  let ok = 0;
  for (let i = 0; i < 50; i++) if (b.tryRetry(500)) ok++;
  assert.equal(ok, 20);
  assert.equal(b.tryRetry(9_999), false);
  assert.equal(b.window(10_000).requests, 0);
  assert.equal(b.tryRetry(10_000), false, 'no requests, no floor');
  // A jump longer than the window clears everything; a backwards clock keeps counting.
  b.onRequest(100_000);
  b.onRequest(99_000);
  assert.equal(b.window(100_000).requests, 2);
});

test('options from cluster metadata (Mesh retryBudget shape), defaults otherwise', () => {
  assert.deepEqual(retryBudgetOptionsFromCluster(undefined), DEFAULT_RETRY_BUDGET);
  const cluster = { metadata: { filter_metadata: { trellis: { fields: { retryBudget: { structValue: { fields: {
    retryRatio: { numberValue: 50 }, minRetriesPerSecond: { numberValue: 3 }, ttl: { stringValue: '30s' },
  } } } } } } } };
  assert.deepEqual(retryBudgetOptionsFromCluster(cluster), { ratio: 0.5, minPerSecond: 3, windowSeconds: 30 });
  const odd = { metadata: { filter_metadata: { trellis: { fields: { retryBudget: { structValue: { fields: {
    retryRatio: { numberValue: -1 }, ttl: { stringValue: 'soon' },
  } } } } } } } };
  assert.deepEqual(retryBudgetOptionsFromCluster(odd), DEFAULT_RETRY_BUDGET);
});
