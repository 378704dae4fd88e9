import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBalancer, RequestCounters, type LbPolicy } from '../../../src/proxy/balance/balancer.js';
import { hash32 } from '../../../src/proxy/balance/hash.js';
import { at, count, ep, seeded } from './helpers.js';

const NONE = {};

test('round robin: exactly even over healthy endpoints', () => {
  const b = createBalancer({ policy: 'ROUND_ROBIN', endpoints: [ep(1), ep(2), ep(3)], random: seeded(1) });
  assert.deepEqual(Object.values(count(() => b.pick(NONE), 3000)), [1000, 1000, 1000]);
});

test('round robin: consecutive picks cycle', () => {
  const b = createBalancer({ policy: 'ROUND_ROBIN', endpoints: [ep(1), ep(2), ep(3)], random: () => 0 });
  assert.deepEqual([1, 2, 3, 4].map(() => b.pick(NONE)?.id), ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80', '10.0.0.1:80']);
});

test('round robin: weights are honoured and interleaved', () => {
  const b = createBalancer({ policy: 'ROUND_ROBIN', endpoints: [ep(1, { weight: 3 }), ep(2, { weight: 1 })], random: () => 0 });
  const seq = [1, 2, 3, 4].map(() => b.pick(NONE)?.address);
  assert.deepEqual(seq.filter((a) => a === '10.0.0.1').length, 3);
  assert.deepEqual(count(() => b.pick(NONE), 4000), { '10.0.0.1:80': 3000, '10.0.0.2:80': 1000 });
});

test('random: roughly uniform (seeded)', () => {
  const b = createBalancer({ policy: 'RANDOM', endpoints: [ep(1), ep(2), ep(3), ep(4)], random: seeded(7) });
  const c = count(() => b.pick(NONE), 8000);
  for (const v of Object.values(c)) assert.ok(Math.abs(v - 2000) < 200, JSON.stringify(c));
});

test('random: weighted', () => {
  const b = createBalancer({ policy: 'RANDOM', endpoints: [ep(1, { weight: 9 }), ep(2, { weight: 1 })], random: seeded(8) });
  const c = count(() => b.pick(NONE), 10000);
  assert.ok(Math.abs(c['10.0.0.1:80'] - 9000) < 200, JSON.stringify(c));
});

test('least request (P2C) favours the less loaded endpoint', () => {
  const b = createBalancer({ policy: 'LEAST_REQUEST', endpoints: [ep(1), ep(2), ep(3)], random: seeded(3) });
  const busy = b.endpoints[0];
  for (let i = 0; i < 10; i++) b.onRequestStart(busy);
  assert.equal(b.activeRequests(busy), 10);
  const c = count(() => b.pick(NONE), 3000);
  // ep1 only wins when both draws land on it: ~1/9 of picks
  assert.ok((c['10.0.0.1:80'] ?? 0) < 450, JSON.stringify(c));
  assert.ok(c['10.0.0.2:80'] > 1100 && c['10.0.0.3:80'] > 1100, JSON.stringify(c));
  for (let i = 0; i < 10; i++) b.onRequestEnd(busy);
  b.onRequestEnd(busy); // never below zero
  assert.equal(b.activeRequests(busy), 0);
});

test('least request: with full choice the least loaded always wins; ends balance the load', () => {
  const b = createBalancer({ policy: 'LEAST_REQUEST', endpoints: [ep(1), ep(2), ep(3)], choiceCount: 50, random: seeded(4) });
  for (let i = 0; i < 30; i++) {
    const e = b.pick(NONE);
    assert.ok(e);
    b.onRequestStart(e);
  }
  assert.deepEqual(b.endpoints.map((e) => b.activeRequests(e)), [10, 10, 10]);
});

test('least request: counters shared across balancer generations', () => {
  const counters = new RequestCounters();
  const b1 = createBalancer({ policy: 'LEAST_REQUEST', endpoints: [ep(1), ep(2)], counters });
  b1.onRequestStart(b1.endpoints[0]);
  const b2 = createBalancer({ policy: 'LEAST_REQUEST', endpoints: [ep(1), ep(2), ep(3)], counters });
  assert.equal(b2.activeRequests(b2.endpoints[0]), 1);
  b2.onRequestEnd(b1.endpoints[0]);
  assert.equal(b1.activeRequests(b1.endpoints[0]), 0);
});

const ALL: LbPolicy[] = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'];

for (const policy of ALL) {
  test(`${policy}: unhealthy endpoints are never picked while one is healthy`, () => {
    const b = createBalancer({ policy, endpoints: [ep(1, { healthy: false }), ep(2), ep(3, { healthy: false })], random: seeded(5) });
    assert.equal(b.panic, false);
    assert.deepEqual(count(() => b.pick({ hash: Math.floor(Math.random() * 2 ** 32) }), 200), { '10.0.0.2:80': 200 });
  });

  test(`${policy}: all unhealthy means panic: pick among all`, () => {
    const b = createBalancer({ policy, endpoints: [ep(1, { healthy: false }), ep(2, { healthy: false })], random: seeded(6) });
    assert.equal(b.panic, true);
    const c = count(() => b.pick({ hash: hash32(String(Math.random())) }), 400);
    assert.equal(Object.keys(c).length, 2, JSON.stringify(c));
  });

  test(`${policy}: excluded endpoints are skipped; all excluded gives undefined`, () => {
    const b = createBalancer({ policy, endpoints: [ep(1), ep(2), ep(3)], random: seeded(9) });
    const excluded = new Set(['10.0.0.1:80', '10.0.0.3:80']);
    for (let i = 0; i < 100; i++) assert.equal(b.pick({ excluded, hash: i * 7919 })?.id, '10.0.0.2:80');
    assert.equal(b.pick({ excluded: new Set(['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80']), hash: 1 }), undefined);
  });

  test(`${policy}: no endpoints gives undefined`, () => {
    assert.equal(createBalancer({ policy, endpoints: [] }).pick(NONE), undefined);
  });
}

const LOCAL = { region: 'eu', zone: 'eu-1' };
const zoneEps = () => [
  at(1, { region: 'eu', zone: 'eu-1' }),
  at(2, { region: 'eu', zone: 'eu-2' }),
  at(3, { region: 'us', zone: 'us-1' }),
  at(4, { region: 'eu', zone: 'eu-1' }),
];

for (const policy of ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM'] as LbPolicy[]) {
  test(`${policy}: locality failover order: zone, then region, then anywhere`, () => {
    const table: [string, Set<string> | undefined, boolean[], string[]][] = [
      ['same zone first', undefined, [true, true, true, true], ['10.0.0.1:80', '10.0.0.4:80']],
      ['one in zone excluded', new Set(['10.0.0.1:80']), [true, true, true, true], ['10.0.0.4:80']],
      ['zone excluded -> region', new Set(['10.0.0.1:80', '10.0.0.4:80']), [true, true, true, true], ['10.0.0.2:80']],
      ['zone unhealthy -> region', undefined, [false, true, true, false], ['10.0.0.2:80']],
      ['zone and region gone -> anywhere', new Set(['10.0.0.2:80']), [false, true, true, false], ['10.0.0.3:80']],
    ];
    for (const [name, excluded, health, want] of table) {
      const endpoints = zoneEps().map((e, i) => ({ ...e, healthy: health[i] }));
      const b = createBalancer({ policy, endpoints, localLocality: LOCAL, localityAware: true, random: seeded(11) });
      const got = Object.keys(count(() => b.pick({ excluded }), 100)).sort();
      assert.deepEqual(got, want, name);
    }
  });
}

test('locality preference is off unless asked for', () => {
  const b = createBalancer({ policy: 'ROUND_ROBIN', endpoints: zoneEps(), localLocality: LOCAL });
  assert.equal(Object.keys(count(() => b.pick(NONE), 8)).length, 4);
});

test('ring hash: the same key always lands on the same endpoint; different keys spread', () => {
  const endpoints = [1, 2, 3, 4, 5].map((n) => ep(n));
  const b = createBalancer({ policy: 'RING_HASH', endpoints });
  const b2 = createBalancer({ policy: 'RING_HASH', endpoints: endpoints.slice().reverse() });
  for (let k = 0; k < 200; k++) {
    const hash = hash32(`user-${k}`);
    const first = b.pick({ hash })?.id;
    assert.equal(b.pick({ hash })?.id, first);
    assert.equal(b2.pick({ hash })?.id, first, 'independent of endpoint order');
  }
  const c = count(() => b.pick({ hash: hash32(String(Math.random())) }), 5000);
  for (const v of Object.values(c)) assert.ok(v > 600 && v < 1400, JSON.stringify(c));
});

test('ring hash: adding an endpoint moves about 1/N of the keys, all to the new one', () => {
  const before = createBalancer({ policy: 'RING_HASH', endpoints: [1, 2, 3, 4, 5].map((n) => ep(n)) });
  const after = createBalancer({ policy: 'RING_HASH', endpoints: [1, 2, 3, 4, 5, 6].map((n) => ep(n)) });
  let moved = 0;
  const keys = 5000;
  for (let k = 0; k < keys; k++) {
    const hash = hash32(`session-${k}`);
    const a = before.pick({ hash })?.id;
    const b = after.pick({ hash })?.id;
    if (a !== b) {
      moved++;
      assert.equal(b, '10.0.0.6:80');
    }
  }
  const share = moved / keys;
  assert.ok(share > 0.1 && share < 0.25, `moved ${share}`);
});

test('ring hash: an excluded endpoint sends its keys to the next point, others unchanged', () => {
  const b = createBalancer({ policy: 'RING_HASH', endpoints: [1, 2, 3].map((n) => ep(n)) });
  const excluded = new Set(['10.0.0.2:80']);
  for (let k = 0; k < 300; k++) {
    const hash = hash32(`k${k}`);
    const normal = b.pick({ hash })?.id;
    const ex = b.pick({ hash, excluded })?.id;
    if (normal !== '10.0.0.2:80') assert.equal(ex, normal);
    else assert.notEqual(ex, '10.0.0.2:80');
  }
});

test('ring hash: weights shape the share', () => {
  const b = createBalancer({ policy: 'RING_HASH', endpoints: [ep(1, { weight: 3 }), ep(2, { weight: 1 })] });
  const c = count(() => b.pick({ hash: hash32(String(Math.random())) }), 4000);
  assert.ok(c['10.0.0.1:80'] > 2600 && c['10.0.0.1:80'] < 3400, JSON.stringify(c));
});

test('unknown policy falls back to round robin', () => {
  const b = createBalancer({ policy: 'CLUSTER_PROVIDED' as LbPolicy, endpoints: [ep(1)] });
  assert.equal(b.policy, 'ROUND_ROBIN');
});

test('pick without a context', () => {
  for (const policy of ALL) assert.ok(createBalancer({ policy, endpoints: [ep(1)] }).pick(), policy);
});
