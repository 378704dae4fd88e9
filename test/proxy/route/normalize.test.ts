import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { normalizePath, type EscapedSlashes } from '../../../src/proxy/route/normalize.js';

const ok = (path: string, query = '') => ({ ok: true, path, query });

const cases: [string, string, EscapedSlashes | undefined, object][] = [
  ['clean path unchanged', '/a/b.txt', undefined, ok('/a/b.txt')],
  ['root', '/', undefined, ok('/')],
  ['empty', '', undefined, ok('/')],
  ['query split off, kept raw', '/a?x=%2F&y', undefined, ok('/a', 'x=%2F&y')],
  ['fragment dropped', '/a#frag?x', undefined, ok('/a')],
  ['fragment after query dropped', '/a?x=1#f', undefined, ok('/a', 'x=1')],
  ['unreserved decoded', '/%61%64%6D%69%6E', undefined, ok('/admin')],
  ['unreserved lowercase hex decoded', '/%7e%2d%5f%2e', undefined, ok('/~-_.')],
  ['reserved kept, hex uppercased', '/a%3fb%20c%25', undefined, ok('/a%3Fb%20c%25')],
  ['double encoding stays encoded', '/%252e%252e/admin', undefined, ok('/%252e%252e/admin')],
  ['%2F rejected by default', '/a%2Fb', undefined, { ok: false, reason: 'escaped slash (%2F) in path' }],
  ['%5c rejected by default', '/a%5cb', undefined, { ok: false, reason: 'escaped slash (%5C) in path' }],
  ['%2F kept', '/a%2fb', 'keep', ok('/a%2Fb')],
  ['%2F decoded and merged', '/a%2F%2Fb', 'decode-and-merge', ok('/a/b')],
  ['%5C decoded and merged', '/a%5Cb', 'decode-and-merge', ok('/a/b')],
  ['backslash to slash', '/a\\b\\\\c', undefined, ok('/a/b/c')],
  ['slashes merged', '//a///b//', undefined, ok('/a/b/')],
  ['dot segments', '/a/./b/../c', undefined, ok('/a/c')],
  ['trailing dot', '/a/b/.', undefined, ok('/a/b/')],
  ['trailing dot-dot', '/a/b/..', undefined, ok('/a/')],
  ['above root clamps', '/../../a', undefined, ok('/a')],
  ['encoded dot segments', '/a/%2e%2E/admin', undefined, ok('/admin')],
  ['mixed encoded dots', '/x/.%2e/admin', undefined, ok('/admin')],
  ['..;params', '/public/..;jsessionid=1/admin', undefined, ok('/admin')],
  ['.;params', '/a/.;x/b', undefined, ok('/a/b')],
  ['params on normal segments kept', '/a;v=1/b', undefined, ok('/a;v=1/b')],
  ['dots inside names kept', '/a/..b/c../.d', undefined, ok('/a/..b/c../.d')],
  ['absolute-form', 'http://example.com/a/../b?q', undefined, ok('/b', 'q')],
  ['absolute-form without path', 'http://example.com', undefined, ok('/')],
  ['relative rejected', 'a/b', undefined, { ok: false, reason: 'path must start with \'/\': "a/b"' }],
  ['bad percent', '/a%zz', undefined, { ok: false, reason: 'invalid percent-encoding in path at offset 2' }],
  ['truncated percent', '/a%2', undefined, { ok: false, reason: 'invalid percent-encoding in path at offset 2' }],
  ['control character', '/a\u0000b', undefined, { ok: false, reason: 'invalid character in path at offset 2' }],
  ['space', '/a b', undefined, { ok: false, reason: 'invalid character in path at offset 2' }],
  ['non-ASCII', '/é', undefined, { ok: false, reason: 'invalid character in path at offset 1' }],
];

for (const [name, raw, policy, want] of cases) {
  test(`normalize: ${name}`, () => assert.deepEqual(normalizePath(raw, policy ? { escapedSlashes: policy } : {}), want));
}

const POLICIES: EscapedSlashes[] = ['reject', 'keep', 'decode-and-merge'];
const pathChar = fc.constantFrom('a', 'B', '/', '.', '..', '%2e', '%2F', '%5c', '%41', '%20', '%25', '\\', ';', ';x', '~', '-', '%zz', '?', '#', '%');

test('property: normalize is idempotent', () => {
  fc.assert(
    fc.property(fc.array(pathChar, { maxLength: 16 }), fc.constantFrom(...POLICIES), (parts, policy) => {
      const r1 = normalizePath('/' + parts.join(''), { escapedSlashes: policy });
      if (!r1.ok) return;
      const r2 = normalizePath(r1.path, { escapedSlashes: policy });
      assert.deepEqual(r2, { ok: true, path: r1.path, query: '' });
    }),
    { numRuns: 500, seed: 7 },
  );
});

/** One way to spell a character of "/admin" (or a whole segment) that a server might accept. */
const encodeChar = (ch: string) => {
  const code = ch.charCodeAt(0).toString(16);
  return fc.constantFrom(ch, `%${code}`, `%${code.toUpperCase()}`);
};
const slash = fc.constantFrom('/', '//', '\\', '/./', '/%2e/', '/%2F', '/%5C', '/x/../', '/x/..;y/', '/x/%2e%2e/', '/.;p/');
const encodedAdmin = fc
  .tuple(slash, ...'admin'.split('').map(encodeChar), fc.constantFrom('', '?q=1', '#f'))
  .map(([s, ...rest]) => s + rest.join(''));

test('property: no encoding of /admin normalizes to anything but /admin (or is rejected)', () => {
  fc.assert(
    fc.property(encodedAdmin, fc.constantFrom<EscapedSlashes>('reject', 'decode-and-merge'), (raw, policy) => {
      const r = normalizePath(raw, { escapedSlashes: policy });
      if (r.ok) assert.equal(r.path, '/admin', raw);
    }),
    { numRuns: 500, seed: 11 },
  );
});
