// Circuit breaker: opens at exactly the limit, releases, counts overflow by kind; limits from xDS clusters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreaker, breakerLimitsFromCluster, BREAKER_KINDS, DEFAULT_LIMITS } from '../../../src/proxy/resilience/circuit-breaker.js';

test('each kind admits exactly its limit, overflows after, admits again after a release', () => {
  for (const kind of BREAKER_KINDS) {
    for (const limit of [0, 1, 3]) {
      const cb = new CircuitBreaker({ [kind]: limit });
      for (let i = 0; i < limit; i++) assert.equal(cb.tryAcquire(kind), true, `${kind} #${i + 1} of ${limit}`);
      assert.equal(cb.isOpen(kind), true);
      assert.equal(cb.tryAcquire(kind), false, `${kind} over ${limit}`);
      assert.equal(cb.tryAcquire(kind), false);
      assert.equal(cb.overflow[kind], 2);
      assert.equal(cb.active[kind], limit);
      if (limit > 0) {
        cb.release(kind);
        assert.equal(cb.isOpen(kind), false);
        assert.equal(cb.tryAcquire(kind), true);
      }
      // Other kinds are independent.
      for (const other of BREAKER_KINDS) if (other !== kind) assert.equal(cb.overflow[other], 0);
    }
  }
});

test('release never goes below zero; new limits keep active counts', () => {
  const cb = new CircuitBreaker({ requests: 2 });
  cb.release('requests');
  assert.equal(cb.active.requests, 0);
  cb.tryAcquire('requests');
  cb.tryAcquire('requests');
  cb.setLimits({ ...cb.limits, requests: 1 });
  assert.equal(cb.tryAcquire('requests'), false);
  cb.release('requests');
  assert.equal(cb.tryAcquire('requests'), false, 'still one in flight at limit 1');
  cb.release('requests');
  cb.release('requests');
  assert.equal(cb.tryAcquire('requests'), true);
  assert.deepEqual(cb.snapshot().overflow, { connections: 0, pending: 0, requests: 2, retries: 0 });
});

test('limits from a decoded xDS cluster', () => {
  const cases: [string, Record<string, unknown> | undefined, Partial<typeof DEFAULT_LIMITS>][] = [
    ['no cluster', undefined, {}],
    ['no thresholds', { name: 'c' }, {}],
    [
      'DestinationRule connectionPool',
      {
        circuit_breakers: { thresholds: [{ priority: 'DEFAULT', max_connections: { value: 10 }, max_pending_requests: { value: 5 }, max_requests: { value: 20 }, max_retries: { value: 2 } }] },
        common_http_protocol_options: { max_requests_per_connection: { value: 7 } },
      },
      { connections: 10, pending: 5, requests: 20, retries: 2, maxRequestsPerConnection: 7 },
    ],
    ['empty wrapper is 0 (protobuf default)', { circuit_breakers: { thresholds: [{ max_requests: {} }] } }, { requests: 0 }],
    ['HIGH priority entry skipped', { circuit_breakers: { thresholds: [{ priority: 'HIGH', max_requests: { value: 1 } }, { max_requests: { value: 9 } }] } }, { requests: 9 }],
    ['deprecated cluster-level max_requests_per_connection', { max_requests_per_connection: { value: 3 } }, { maxRequestsPerConnection: 3 }],
  ];
  for (const [name, cluster, want] of cases) assert.deepEqual(breakerLimitsFromCluster(cluster), { ...DEFAULT_LIMITS, ...want }, name);
  assert.equal(DEFAULT_LIMITS.connections, 1024);
});
