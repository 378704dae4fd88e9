// ResilienceRegistry: per-cluster state from snapshots, kept across config swaps, dropped with the cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResilienceRegistry, type SnapshotView } from '../../../src/proxy/resilience/index.js';

const view = (clusters: Record<string, [Record<string, unknown>, string[]]>): SnapshotView => ({
  raw: { clusters: new Map(Object.entries(clusters).map(([n, [raw]]) => [n, raw])) },
  clusters: new Map(Object.entries(clusters).map(([n, [, ids]]) => [n, { endpoints: ids.map((id) => ({ id })) }])),
});

test('sync builds, updates in place and drops per-cluster state', () => {
  let t = 0;
  const events: string[] = [];
  const reg = new ResilienceRegistry({ now: () => t, onEject: (c, id, reason) => events.push(`${c} ${id} ${reason}`) });
  const c1 = { name: 'c1', circuit_breakers: { thresholds: [{ max_requests: { value: 1 } }] }, outlier_detection: { max_ejection_percent: { value: 100 } } };
  reg.sync(view({ c1: [c1, ['a:1', 'b:1']], c2: [{ name: 'c2' }, ['x:1']] }));
  const r1 = reg.get('c1')!;
  assert.equal(r1.breaker.tryAcquire('requests'), true);
  assert.equal(r1.breaker.tryAcquire('requests'), false);
  assert.equal(reg.get('c2')!.outlier, undefined, 'no outlier_detection, no detector');
  for (let i = 0; i < 5; i++) r1.outlier!.onResult('a:1', 503);
  assert.deepEqual(events, ['c1 a:1 consecutive_5xx']);

  // New config object for c1: limits change, in-flight count and ejections stay.
  const c1b = { ...c1, circuit_breakers: { thresholds: [{ max_requests: { value: 2 } }] } };
  reg.sync(view({ c1: [c1b, ['a:1', 'b:1']] }));
  assert.equal(reg.get('c1'), r1);
  assert.equal(r1.breaker.active.requests, 1);
  assert.equal(r1.breaker.tryAcquire('requests'), true);
  assert.equal(r1.outlier!.isEjected('a:1'), true);
  assert.equal(reg.get('c2'), undefined, 'removed cluster forgotten');

  // Endpoint removed by EDS: its ejection goes too. Outlier detection removed: detector gone.
  reg.sync(view({ c1: [c1b, ['b:1']] }));
  assert.equal(r1.outlier!.currentlyEjected, 0);
  reg.sync(view({ c1: [{ name: 'c1' }, ['b:1']] }));
  assert.equal(r1.outlier, undefined);
  assert.equal(r1.breaker.limits.requests, 1024);

  const rows = [...reg.metricRows()];
  assert.equal(rows.length, 1);
  assert.equal(rows[0].overflow.requests, 1);
  assert.equal(reg.snapshot().c1.breaker.active.requests, 2);
});
