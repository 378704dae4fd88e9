// CertTracker: latest certificate per (proxy, identity), who still holds an old root, expiry problems, pruning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CertTracker } from '../../src/control/cert-tracker.js';

const A = 'spiffe://cluster.local/ns/default/sa/a';
const B = 'spiffe://cluster.local/ns/default/sa/b';
const T0 = Date.parse('2030-01-01T00:00:00Z');

function setup(connected: string[] = ['p1', 'p2']) {
  let now = T0;
  const conn = new Set(connected);
  const tracker = new CertTracker({ now: () => now, isConnected: (id) => conn.has(id) });
  const sign = (proxyId: string | undefined, spiffeId: string, root: string, ttlS: number, serial = `${Math.random()}`) =>
    tracker.record(spiffeId, {
      proxyId,
      serial,
      rootFingerprint: root,
      notBefore: new Date(now - 300_000), // the CA back-dates notBefore
      notAfter: new Date(now + ttlS * 1000),
    });
  return { tracker, sign, conn, advance: (ms: number) => (now += ms), now: () => now };
}

test('the latest signature per (proxy, identity) replaces the previous one; expiry per proxy is the earliest', () => {
  const { tracker, sign } = setup();
  sign('p1', A, 'old', 100, 's1');
  sign('p1', A, 'new', 200, 's2');
  sign('p1', B, 'new', 50, 's3');
  sign('p2', A, 'old', 300, 's4');
  assert.deepEqual(tracker.forProxy('p1').map((c) => c.serial).sort(), ['s2', 's3']);
  assert.equal(tracker.proxyExpiry('p1')!.getTime(), T0 + 50_000);
  assert.equal(tracker.proxyExpiry('p2')!.getTime(), T0 + 300_000);
  assert.equal(tracker.proxyExpiry('nobody'), undefined);
});

test('pendingFor: identities of connected proxies without a certificate from the given root', () => {
  const { tracker, sign } = setup();
  sign('p1', A, 'new', 100);
  sign('p2', A, 'old', 100);
  const cases: [string, { id: string; identities: string[] }[], string[]][] = [
    ['all new', [{ id: 'p1', identities: [A] }], []],
    ['one on the old root', [{ id: 'p1', identities: [A] }, { id: 'p2', identities: [A] }], ['p2 old']],
    ['an identity never signed here', [{ id: 'p1', identities: [A, B] }], ['p1 -']],
    ['a shared identity counts once', [{ id: 'p1', identities: [A, A] }], []],
    ['no proxies', [], []],
  ];
  for (const [name, proxies, want] of cases) {
    const got = tracker.pendingFor('new', proxies).map((p) => `${p.proxyId} ${p.rootFingerprint ?? '-'}`);
    assert.deepEqual(got, want, name);
  }
});

test('problems: expired and past 75% of the lifetime (counted from signing, not the back-dated notBefore)', () => {
  const { tracker, sign, advance, conn } = setup(['p1', 'p2', 'p3']);
  sign('p1', A, 'r', 100); // will be at 80%
  sign('p2', A, 'r', 10); // will be expired
  sign('p3', A, 'r', 1000); // fine
  sign(undefined, B, 'r', 10); // unknown holder: never a proxy problem
  assert.deepEqual(tracker.problems((id) => conn.has(id)), [], 'fresh certificates are fine although notBefore is 5 minutes back');
  advance(80_000);
  const got = tracker.problems((id) => conn.has(id)).map((p) => `${p.proxyId} ${p.kind} ${p.used.toFixed(2)}`);
  assert.deepEqual(got, ['p1 not_renewed 0.80', 'p2 expired 1.00']);
  conn.delete('p2');
  assert.deepEqual(tracker.problems((id) => conn.has(id)).map((p) => p.proxyId), ['p1'], 'a proxy that left is not a problem');
});

test('prune drops expired entries of proxies that left and of unnamed callers, keeps connected ones', () => {
  const { tracker, sign, advance, conn } = setup(['p1', 'p2']);
  sign('p1', A, 'r', 10);
  sign('p2', A, 'r', 10);
  sign('p2', B, 'r', 1000);
  sign(undefined, A, 'r', 10);
  conn.delete('p2');
  advance(20_000);
  tracker.prune();
  assert.deepEqual(tracker.all().map((c) => `${c.proxyId ?? '-'} ${c.spiffeId.slice(-1)}`).sort(), ['p1 a', 'p2 b']);
});

test('unaccountedFrom: unexpired certificates from a root held by callers that are not connected', () => {
  const { tracker, sign, conn } = setup(['p1']);
  sign('p1', A, 'old', 100);
  sign('gone', A, 'old', 100);
  sign(undefined, B, 'old', 100);
  sign('gone', B, 'new', 100);
  const got = tracker.unaccountedFrom('old', (id) => conn.has(id)).map((c) => c.proxyId ?? '-').sort();
  assert.deepEqual(got, ['-', 'gone']);
});
