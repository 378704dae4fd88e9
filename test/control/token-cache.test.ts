// cachingVerifier: a token that verified is not verified again until it expires; failures are never remembered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cachingVerifier } from '../../src/control/token-cache.js';

function counting(expiresAt: number, fail = new Set<string>()) {
  const calls: string[] = [];
  const verify = async (t: string) => {
    calls.push(t);
    if (fail.has(t)) throw new Error(`bad token ${t}`);
    return { expiresAt: new Date(expiresAt), sub: t };
  };
  return { calls, verify };
}

test('a token that verified is verified once, even by streams that ask together', async () => {
  const { calls, verify } = counting(10_000);
  const v = cachingVerifier(verify, { now: () => 1_000 });
  const grants = await Promise.all([v('a'), v('a'), v('a')]);
  assert.deepEqual(await v('a'), grants[0]);
  assert.deepEqual(grants.map((g) => g.sub), ['a', 'a', 'a']);
  assert.deepEqual(calls, ['a']);
  await v('b');
  assert.deepEqual(calls, ['a', 'b']);
});

test('an expired grant is verified again (and the verifier decides)', async () => {
  let now = 1_000;
  const { calls, verify } = counting(5_000);
  const v = cachingVerifier(verify, { now: () => now });
  await v('a');
  now = 4_999;
  await v('a');
  assert.equal(calls.length, 1);
  now = 5_000;
  await v('a');
  assert.equal(calls.length, 2, 'checked again once its expiry has passed');
});

test('a rejected token is not remembered: every attempt is checked and fails', async () => {
  const fail = new Set(['bad']);
  const { calls, verify } = counting(10_000, fail);
  const v = cachingVerifier(verify, { now: () => 0 });
  await assert.rejects(v('bad'), /bad token bad/);
  await assert.rejects(v('bad'), /bad token bad/);
  assert.equal(calls.length, 2);
  fail.delete('bad');
  assert.equal((await v('bad')).sub, 'bad');
});

test('bounded: the oldest token is forgotten first', async () => {
  const { calls, verify } = counting(10_000);
  const v = cachingVerifier(verify, { now: () => 0, max: 2 });
  await v('a');
  await v('b');
  await v('c'); // forgets a
  await v('b');
  assert.deepEqual(calls, ['a', 'b', 'c']);
  await v('a');
  assert.deepEqual(calls, ['a', 'b', 'c', 'a']);
});
