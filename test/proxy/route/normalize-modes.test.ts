// Path normalization modes (Mesh pathNormalization as the HCM carries it): NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { normalizePath, type NormalizeOptions } from '../../../src/proxy/route/normalize.js';

const MODES: Record<string, NormalizeOptions> = {
  NONE: { normalize: false, mergeSlashes: false },
  BASE: { normalize: true, mergeSlashes: false },
  MERGE_SLASHES: { normalize: true, mergeSlashes: true },
  DECODE_AND_MERGE_SLASHES: { normalize: true, mergeSlashes: true, escapedSlashes: 'decode-and-merge' },
};

// [raw, NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES]; undefined = refused (400)
const cases: [string, ...(string | undefined)[]][] = [
  ['/a//b', '/a//b', '/a//b', '/a/b', '/a/b'],
  ['/a/./b/../c', '/a/./b/../c', '/a/c', '/a/c', '/a/c'],
  ['/%61%7e', '/%61%7e', '/a~', '/a~', '/a~'],
  ['/a\\b', '/a\\b', '/a/b', '/a/b', '/a/b'],
  ['/a%2Fb', undefined, undefined, undefined, '/a/b'],
  ['/a%5cb', undefined, undefined, undefined, '/a/b'],
  ['/x//y/', '/x//y/', '/x//y/', '/x/y/', '/x/y/'],
  ['/a//../b', '/a//../b', '/a/b', '/b', '/b'],
  ['/a b', undefined, undefined, undefined, undefined],
  ['/a%zz', undefined, undefined, undefined, undefined],
];
const names = Object.keys(MODES);
for (const [raw, ...want] of cases) {
  test(`normalize modes: ${JSON.stringify(raw)}`, () => {
    names.forEach((m, i) => {
      const r = normalizePath(raw, MODES[m]);
      assert.deepEqual(r.ok ? r.path : undefined, want[i], m);
    });
  });
}

test('normalize modes: no options is MERGE_SLASHES with %2F refused (the default)', () => {
  for (const [raw] of cases) assert.deepEqual(normalizePath(raw), normalizePath(raw, MODES.MERGE_SLASHES), raw);
});

test('normalize modes: every mode is idempotent', () => {
  const seg = fc.constantFrom('a', 'b', '.', '..', '', '%2F', '%41', '%7e', '\\', 'c;x');
  fc.assert(
    fc.property(fc.array(seg, { maxLength: 8 }), fc.constantFrom(...names), (parts, m) => {
      const r1 = normalizePath('/' + parts.join('/'), MODES[m]);
      if (!r1.ok) return;
      const r2 = normalizePath(r1.path, MODES[m]);
      assert.ok(r2.ok);
      assert.equal(r2.path, r1.path);
    }),
    { numRuns: 500 },
  );
});
