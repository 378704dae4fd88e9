// The demo's pass/fail checks: each expected traffic pattern is judged from the tally and the edges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyTally, checkTally } from '../../src/local/demo-traffic.js';

const edges = ['productpage', 'details', 'reviews', 'ratings'].map((d) => ({ source: 'default/x', destination: `default/${d}`, requests: 10, mtls: true }));

function good() {
  const t = emptyTally();
  t.sent = 400;
  t.ok = 400;
  t.normal = { v1: 324, v2: 36 };
  t.testUser = { v2: 40 };
  t.intruder = { attempts: 20, denied: 20, allowed: 0, other: 0 };
  return t;
}

const byName = (t: ReturnType<typeof good>, e = edges) => Object.fromEntries(checkTally(t, e).map((c) => [c.name, c.ok]));

test('a healthy run passes every check', () => {
  assert.deepEqual(byName(good()), {
    'traffic flows': true,
    'canary split 90/10': true,
    'test-user routed to v2': true,
    'mTLS on every edge': true,
    'intruder denied': true,
  });
});

test('each broken pattern fails its own check', () => {
  const split = good();
  split.normal = { v1: 180, v2: 180 };
  assert.equal(byName(split)['canary split 90/10'], false);
  const v3 = good();
  v3.normal = { v1: 300, v2: 30, v3: 30 };
  assert.equal(byName(v3)['canary split 90/10'], false);
  const tu = good();
  tu.testUser = { v1: 1, v2: 39 };
  assert.equal(byName(tu)['test-user routed to v2'], false);
  assert.equal(byName(good(), [...edges, { source: 'default/y', destination: 'default/z', requests: 3, mtls: false }])['mTLS on every edge'], false);
  const intr = good();
  intr.intruder = { attempts: 20, denied: 19, allowed: 1, other: 0 };
  assert.equal(byName(intr)['intruder denied'], false);
  const failing = good();
  failing.failed = 50;
  assert.equal(byName(failing)['traffic flows'], false);
});
