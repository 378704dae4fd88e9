import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseSpiffeId, formatSpiffeId, SpiffeIdError } from '../../src/identity/spiffe.js';

test('valid SPIFFE IDs parse', () => {
  const cases: [string, object][] = [
    ['spiffe://cluster.local/ns/default/sa/web', { trustDomain: 'cluster.local', path: '/ns/default/sa/web', namespace: 'default', serviceAccount: 'web' }],
    ['spiffe://example.org/workload', { trustDomain: 'example.org', path: '/workload' }],
    ['spiffe://a_b-c.9/x/y/z', { trustDomain: 'a_b-c.9', path: '/x/y/z' }],
    ['spiffe://td/ns/a/sa/b/extra', { trustDomain: 'td', path: '/ns/a/sa/b/extra' }],
    ['spiffe://td/Mixed.Case_-1', { trustDomain: 'td', path: '/Mixed.Case_-1' }],
  ];
  for (const [uri, want] of cases) assert.deepEqual({ ...parseSpiffeId(uri) }, want, uri);
});

test('invalid SPIFFE IDs are rejected with the reason', () => {
  const cases: [string, string][] = [
    ['http://cluster.local/ns/a/sa/b', 'wrong_scheme'],
    ['SPIFFE://cluster.local/ns/a/sa/b', 'wrong_scheme'],
    ['cluster.local/ns/a/sa/b', 'wrong_scheme'],
    ['', 'wrong_scheme'],
    ['spiffe:///ns/a/sa/b', 'empty_trust_domain'],
    ['spiffe://', 'empty_trust_domain'],
    ['spiffe://Cluster.local/ns/a', 'invalid_trust_domain'],
    ['spiffe://cluster.local:8080/ns/a', 'invalid_trust_domain'],
    ['spiffe://user@cluster.local/ns/a', 'invalid_trust_domain'],
    ['spiffe://cluster.local', 'no_path'],
    ['spiffe://cluster.local/', 'trailing_slash'],
    ['spiffe://cluster.local/ns/a/', 'trailing_slash'],
    ['spiffe://cluster.local//ns/a', 'empty_segment'],
    ['spiffe://cluster.local/ns//a', 'empty_segment'],
    ['spiffe://cluster.local/ns/./a', 'dot_segment'],
    ['spiffe://cluster.local/ns/../a', 'dot_segment'],
    ['spiffe://cluster.local/..', 'dot_segment'],
    ['spiffe://cluster.local/ns/a%2Fb', 'percent_encoding'],
    ['spiffe://cluster.local/ns/a b', 'bad_character'],
    ['spiffe://cluster.local/ns/a?x=1', 'bad_character'],
    ['spiffe://cluster.local/ns/a#frag', 'bad_character'],
    ['spiffe://cluster.local/ns/é', 'bad_character'],
    [`spiffe://cluster.local/${'a'.repeat(2040)}`, 'too_long'],
  ];
  for (const [uri, reason] of cases) {
    assert.throws(
      () => parseSpiffeId(uri),
      (e: unknown) => e instanceof SpiffeIdError && e.reason === reason && e.message.length > 0,
      `${uri.slice(0, 60)} -> ${reason}`,
    );
  }
});

test('exactly 2048 bytes is allowed', () => {
  const base = 'spiffe://td/';
  const id = base + 'a'.repeat(2048 - base.length);
  assert.equal(parseSpiffeId(id).trustDomain, 'td');
});

test('formatSpiffeId rejects parts that are not one segment', () => {
  assert.equal(formatSpiffeId('cluster.local', 'default', 'web'), 'spiffe://cluster.local/ns/default/sa/web');
  assert.throws(() => formatSpiffeId('cluster.local', 'a/b', 'web'), SpiffeIdError);
  assert.throws(() => formatSpiffeId('cluster.local', '', 'web'), SpiffeIdError);
  assert.throws(() => formatSpiffeId('Bad', 'a', 'web'), SpiffeIdError);
});

test('formatSpiffeId then parseSpiffeId round-trips (property)', () => {
  const tdChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789.-_'.split(''));
  const segChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_'.split(''));
  const segment = fc
    .array(segChar, { minLength: 1, maxLength: 30 })
    .map((a) => a.join(''))
    .filter((s) => s !== '.' && s !== '..');
  const td = fc.array(tdChar, { minLength: 1, maxLength: 40 }).map((a) => a.join(''));
  fc.assert(
    fc.property(td, segment, segment, (t, ns, sa) => {
      const id = parseSpiffeId(formatSpiffeId(t, ns, sa));
      assert.equal(id.trustDomain, t);
      assert.equal(id.namespace, ns);
      assert.equal(id.serviceAccount, sa);
    }),
    { numRuns: 300 },
  );
});
