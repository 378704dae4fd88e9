// Golden signals from scrape deltas: grouping per view, success and mTLS shares, quantiles, counter resets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePrometheusText } from '../../src/telemetry/prom-text.js';
import { goldenDelta, sampleDelta, totalsFor } from '../../src/telemetry/golden.js';

const base = 'source_workload="frontend",source_namespace="default",source_principal="spiffe://cluster.local/ns/default/sa/frontend",destination_workload="backend",destination_namespace="default",destination_service="backend.default.svc.cluster.local",destination_principal="spiffe://cluster.local/ns/default/sa/backend"';
function scrape(ok: number, fail: number, fast: number, slow: number, plain = 0): string {
  return [
    `trellis_requests_total{reporter="source",${base},route="r1",response_code="200",error_code="",connection_security_policy="mutual_tls"} ${ok}`,
    `trellis_requests_total{reporter="source",${base},route="r1",response_code="503",error_code="upstream_reset",connection_security_policy="mutual_tls"} ${fail}`,
    `trellis_requests_total{reporter="source",${base},route="r2",response_code="200",error_code="",connection_security_policy="none"} ${plain}`,
    `trellis_request_duration_seconds_bucket{reporter="source",${base},route="r1",le="0.01"} ${fast}`,
    `trellis_request_duration_seconds_bucket{reporter="source",${base},route="r1",le="0.1"} ${fast + slow}`,
    `trellis_request_duration_seconds_bucket{reporter="source",${base},route="r1",le="+Inf"} ${fast + slow}`,
    // Destination-side report of the same calls: not counted again for services or edges.
    `trellis_requests_total{reporter="destination",${base},route="inbound",response_code="200",error_code="",connection_security_policy="mutual_tls"} ${ok}`,
  ].join('\n');
}

test('rates, success, mTLS share and quantiles per service, edge and route over a window', () => {
  const prev = parsePrometheusText(scrape(100, 0, 100, 0));
  const cur = parsePrometheusText(scrape(190, 10, 180, 20, 0));
  const d = sampleDelta(prev, cur);
  const [svc] = goldenDelta(undefined, totalsFor('services', d), 10);
  assert.equal(svc.dims.service, 'backend.default.svc.cluster.local');
  assert.equal(svc.requests, 100);
  assert.equal(svc.rps, 10);
  assert.equal(svc.successRate, 0.9);
  assert.equal(svc.mtlsShare, 1);
  assert.deepEqual(svc.errors, { upstream_reset: 10 });
  // 80 of 100 under 10 ms: p50 inside the first bucket, p99 in the second.
  assert.ok(svc.p50Ms! <= 10 && svc.p99Ms! > 10 && svc.p99Ms! <= 100, JSON.stringify(svc));
  const [edge] = goldenDelta(undefined, totalsFor('edges', d), 10);
  assert.equal(edge.dims.source, 'default/frontend');
  assert.equal(edge.dims.destination, 'default/backend');
  assert.equal(edge.dims.sourcePrincipal, 'spiffe://cluster.local/ns/default/sa/frontend');
  const routes = goldenDelta(undefined, totalsFor('routes', d), 10);
  assert.deepEqual(routes.map((r) => r.dims.route), ['r1']);
});

test('a counter that went backwards (proxy restart) counts its new value, not a negative rate', () => {
  const d = sampleDelta(parsePrometheusText(scrape(1000, 0, 1000, 0)), parsePrometheusText(scrape(5, 0, 5, 0)));
  const [svc] = goldenDelta(undefined, totalsFor('services', d), 1);
  assert.equal(svc.requests, 5);
});

test('mixed mTLS and plaintext traffic gives a share; no traffic gives no rates', () => {
  const d = sampleDelta(parsePrometheusText(scrape(0, 0, 0, 0, 0)), parsePrometheusText(scrape(30, 0, 30, 0, 10)));
  const [svc] = goldenDelta(undefined, totalsFor('services', d), 1);
  assert.equal(svc.mtlsShare, 0.75);
  assert.deepEqual(goldenDelta(undefined, totalsFor('services', sampleDelta(parsePrometheusText(scrape(1, 0, 1, 0)), parsePrometheusText(scrape(1, 0, 1, 0)))), 1), []);
});

test('workloads: callers outside the mesh are counted from the destination proxy', () => {
  const text = [
    `trellis_requests_total{reporter="destination",source_workload="unknown",source_namespace="unknown",source_principal="unknown",destination_workload="backend",destination_namespace="default",destination_service="unknown",destination_principal="x",route="inbound",response_code="200",error_code="",connection_security_policy="none"} 4`,
    `trellis_requests_total{reporter="source",${base},route="r1",response_code="200",error_code="",connection_security_policy="mutual_tls"} 6`,
  ].join('\n');
  const [w] = goldenDelta(undefined, totalsFor('workloads', sampleDelta(undefined, parsePrometheusText(text))), 1);
  assert.equal(w.dims.workload, 'default/backend');
  assert.equal(w.requests, 10);
  assert.equal(w.mtlsShare, 0.6);
});
