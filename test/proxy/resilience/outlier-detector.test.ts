// Outlier detection with an injected clock: ejection, exclusion, return, growing ejection time, max ejection percent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OutlierDetector, outlierConfigFromCluster, ENVOY_OUTLIER_DEFAULTS, type OutlierResult } from '../../../src/proxy/resilience/outlier-detector.js';

function detector(config: ConstructorParameters<typeof OutlierDetector>[0] = {}, hosts = ['a', 'b', 'c', 'd']) {
  let t = 0;
  const events: string[] = [];
  const d = new OutlierDetector(config, {
    now: () => t,
    random: () => 0.5,
    onEject: (id, reason, ms) => events.push(`eject ${id} ${reason} ${ms}`),
    onUneject: (id) => events.push(`uneject ${id}`),
  });
  d.setEndpoints(hosts);
  return { d, events, at: (ms: number) => (t = ms) };
}

const fail = (d: OutlierDetector, id: string, n: number, result: OutlierResult = 500) => {
  let ejected = false;
  for (let i = 0; i < n; i++) ejected = d.onResult(id, result) || ejected;
  return ejected;
};

test('5 consecutive 5xx eject; excluded until baseEjectionTime; back after; second ejection lasts 2x', () => {
  const { d, events, at } = detector({ maxEjectionPercent: 100 });
  assert.equal(fail(d, 'a', 4), false);
  assert.equal(d.isEjected('a'), false);
  assert.equal(fail(d, 'a', 1), true);
  assert.equal(d.isEjected('a'), true);
  assert.deepEqual([...d.ejectedSet()], ['a']);
  assert.equal(d.currentlyEjected, 1);
  at(29_999);
  assert.equal(d.isEjected('a'), true);
  at(30_000);
  assert.equal(d.ejectedSet().has('a'), false, 'back after 30 s');
  assert.equal(d.isEjected('a'), false);
  // Ejected again: 2 x base.
  assert.equal(fail(d, 'a', 5), true);
  at(30_000 + 59_999);
  assert.equal(d.isEjected('a'), true);
  at(30_000 + 60_000);
  assert.equal(d.isEjected('a'), false);
  assert.deepEqual(events, ['eject a consecutive_5xx 30000', 'uneject a', 'eject a consecutive_5xx 60000', 'uneject a']);
  assert.equal(d.ejectionsTotal, 2);
});

test('a success resets the count; results while ejected are ignored', () => {
  const { d } = detector();
  fail(d, 'a', 4);
  d.onResult('a', 200);
  assert.equal(fail(d, 'a', 4), false);
  assert.equal(d.onResult('a', 404), false, '4xx is a success for outlier detection');
  assert.equal(fail(d, 'a', 4), false);
  assert.equal(fail(d, 'a', 1), true);
  assert.equal(fail(d, 'a', 10), false);
  assert.equal(d.ejectionsTotal, 1);
});

test('gateway failures: not enforced by Envoy default; enforced when the cluster says so (Istio consecutiveGatewayErrors)', () => {
  {
    const { d } = detector({ consecutive5xx: 0 });
    assert.equal(fail(d, 'a', 20, 503), false, 'enforcing_consecutive_gateway_failure defaults to 0');
  }
  {
    const { d } = detector({ consecutiveGateway: 3, enforcingGateway: 100, enforcing5xx: 0 });
    assert.equal(fail(d, 'a', 3, 500), false, '500 is not a gateway error, and 5xx is not enforced');
    assert.equal(fail(d, 'a', 2, 502), false);
    assert.equal(fail(d, 'a', 1, 'connect_failure'), true, 'local failures count as gateway errors');
    assert.equal(d.ejectionsByReason.consecutive_gateway_failure, 1);
  }
  {
    const { d } = detector({ consecutiveGateway: 3, enforcingGateway: 100 });
    fail(d, 'a', 2, 503);
    d.onResult('a', 500); // breaks the gateway run, continues the 5xx run
    assert.equal(fail(d, 'a', 2, 503), true, '5 consecutive 5xx');
    assert.equal(d.snapshot().hosts.find((h) => h.id === 'a')!.lastReason, 'consecutive_5xx');
  }
  {
    const { d } = detector({ enforcing5xx: 40 }); // random() is 0.5: not enforced
    assert.equal(fail(d, 'a', 10), false);
  }
});

test('maxEjectionPercent: respected, but one host is always ejectable', () => {
  {
    const { d } = detector({ maxEjectionPercent: 10 }); // 4 hosts: 10% is less than one
    assert.equal(fail(d, 'a', 5), true, 'at least one host');
    assert.equal(fail(d, 'b', 5), false, 'a second would be 50%');
    assert.equal(d.ejectionsOverflow, 1);
    assert.deepEqual([...d.ejectedSet()], ['a']);
  }
  {
    const { d } = detector({ maxEjectionPercent: 50 });
    assert.equal(fail(d, 'a', 5), true);
    assert.equal(fail(d, 'b', 5), true);
    assert.equal(fail(d, 'c', 5), false, '75% > 50%');
    assert.equal(d.currentlyEjected, 2);
  }
  {
    const { d } = detector({ maxEjectionPercent: 0 }, ['only']);
    assert.equal(fail(d, 'only', 5), true, 'single host, 0%: still ejectable (Envoy)');
  }
  {
    // Once the ejected host returns, another can go.
    const { d, at } = detector({ maxEjectionPercent: 10 });
    fail(d, 'a', 5);
    assert.equal(fail(d, 'b', 5), false);
    at(30_000);
    d.tick();
    assert.equal(fail(d, 'b', 5), true);
  }
});

test('ejection time: capped at max_ejection_time; multiplier decays one per healthy interval', () => {
  const { d, at } = detector({ baseEjectionMs: 100_000, maxEjectionMs: 150_000, maxEjectionPercent: 100 });
  fail(d, 'a', 5);
  at(100_000);
  d.tick();
  fail(d, 'a', 5);
  assert.equal(d.snapshot().hosts[0].ejectedForMs, 150_000, 'min(2 x 100 s, 150 s)');
  at(250_000);
  d.tick(); // back
  assert.equal(d.snapshot().hosts[0].ejections, 2);
  at(250_000 + 10_000);
  d.tick();
  assert.equal(d.snapshot().hosts[0].ejections, 1, 'one healthy interval');
  fail(d, 'a', 5);
  assert.equal(d.snapshot().hosts[0].ejectedForMs, 150_000, '2 x base again, capped');
});

test('endpoints removed by EDS are forgotten; snapshot for describe', () => {
  const { d } = detector({ maxEjectionPercent: 100 });
  fail(d, 'a', 5);
  fail(d, 'b', 2);
  d.setEndpoints(['b', 'c']);
  assert.equal(d.currentlyEjected, 0);
  const s = d.snapshot();
  assert.deepEqual(s.hosts.map((h) => [h.id, h.consecutive5xx]), [['b', 2]]);
  assert.equal(s.ejectionsTotal, 1);
  assert.equal(s.config.consecutive5xx, 5);
});

test('config from a decoded xDS cluster', () => {
  assert.equal(outlierConfigFromCluster({ name: 'c' }), undefined, 'no outlier_detection: no detection');
  assert.deepEqual(outlierConfigFromCluster({ outlier_detection: {} }), ENVOY_OUTLIER_DEFAULTS);
  const warnings: string[] = [];
  const cfg = outlierConfigFromCluster(
    {
      name: 'outbound|80||r.default.svc.cluster.local',
      outlier_detection: {
        consecutive_5xx: { value: 3 },
        enforcing_consecutive_5xx: {},
        consecutive_gateway_failure: { value: 2 },
        enforcing_consecutive_gateway_failure: { value: 100 },
        interval: { seconds: '5' },
        base_ejection_time: { seconds: '1', nanos: 500_000_000 },
        max_ejection_percent: { value: 50 },
        failure_percentage_threshold: { value: 80 },
      },
    },
    warnings,
  );
  assert.deepEqual(cfg, { ...ENVOY_OUTLIER_DEFAULTS, consecutive5xx: 3, enforcing5xx: 0, consecutiveGateway: 2, enforcingGateway: 100, intervalMs: 5000, baseEjectionMs: 1500, maxEjectionPercent: 50 });
  assert.match(warnings[0], /failure_percentage_threshold is not supported/);
});
