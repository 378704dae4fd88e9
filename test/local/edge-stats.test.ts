// Edge stats from Prometheus text: parsing, quantiles, and per-edge deltas as the demo's live view uses them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePrometheusText, histogramQuantile } from '../../src/local/prom-text.js';
import { edgeTotals, edgeDelta } from '../../src/local/edge-stats.js';

const L = (extra: string) =>
  `reporter="source",source_workload="a",source_namespace="default",destination_workload="b",destination_namespace="default",destination_service="b.default.svc.cluster.local",${extra}`;

function expo(ok: number, failed: number, denied: number, buckets: [string, number][]): string {
  return [
    '# HELP trellis_requests_total x',
    '# TYPE trellis_requests_total counter',
    `trellis_requests_total{${L('response_code="200",error_code="",connection_security_policy="mutual_tls"')}} ${ok}`,
    `trellis_requests_total{${L('response_code="503",error_code="upstream_reset",connection_security_policy="mutual_tls"')}} ${failed}`,
    `trellis_requests_total{${L('response_code="403",error_code="denied",connection_security_policy="mutual_tls"')}} ${denied}`,
    // Refused by the destination's proxy: the source records the status without a local error code.
    `trellis_requests_total{${L('response_code="403",error_code="",connection_security_policy="mutual_tls"')}} ${denied * 2}`,
    // Destination-side series are not counted twice.
    `trellis_requests_total{reporter="destination",source_workload="a",destination_workload="b",response_code="200"} 999`,
    ...buckets.map(([le, n]) => `trellis_request_duration_seconds_bucket{${L(`le="${le}"`)}} ${n}`),
  ].join('\n');
}

test('parsePrometheusText reads names, labels with escapes, and special values', () => {
  const s = parsePrometheusText('# HELP x y\nm{a="1",b="q\\"x"} 2.5\nn +Inf\nbad line here\n');
  assert.deepEqual(s[0], { name: 'm', labels: { a: '1', b: 'q"x' }, value: 2.5 });
  assert.equal(s[1].value, Infinity);
  assert.equal(s.length, 3);
});

test('histogramQuantile interpolates within the bucket that holds the rank', () => {
  const b = [
    { le: 0.01, count: 50 },
    { le: 0.1, count: 90 },
    { le: 1, count: 100 },
    { le: Infinity, count: 100 },
  ];
  assert.equal(histogramQuantile(0.5, b), 0.01);
  assert.ok(Math.abs(histogramQuantile(0.9, b)! - 0.1) < 1e-9);
  assert.ok(Math.abs(histogramQuantile(0.95, b)! - 0.55) < 1e-9);
  assert.equal(histogramQuantile(0.5, []), undefined);
});

test('edgeDelta turns two scrapes into rate, success, p99, mTLS and error counts per edge', () => {
  const t0 = edgeTotals(parsePrometheusText(expo(100, 0, 0, [['0.005', 90], ['0.05', 100], ['+Inf', 100]])));
  const t1 = edgeTotals(parsePrometheusText(expo(290, 5, 5, [['0.005', 270], ['0.05', 300], ['+Inf', 300]])));
  const [e] = edgeDelta(t0, t1, 2);
  assert.equal(e.source, 'default/a');
  assert.equal(e.destination, 'default/b');
  assert.equal(e.requests, 210);
  assert.equal(e.rps, 105);
  assert.equal(e.successRate, 205 / 210);
  assert.equal(e.mtls, true);
  assert.deepEqual(e.errors, { upstream_reset: 5, denied: 5, 'HTTP 403': 10 });
  assert.ok(e.p99Ms! > 5 && e.p99Ms! <= 50, `p99 ${e.p99Ms}`);
});
