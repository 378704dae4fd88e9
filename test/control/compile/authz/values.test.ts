// Istio value forms -> Envoy matchers: exact/prefix/suffix/*, principals, namespaces, paths, CIDRs, ports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { istioStringMatch, namespaceMatch, parseCidr, parsePort, pathMatch } from '../../../../src/control/compile/authz/values.js';

test('istioStringMatch forms', () => {
  const rows: [string, object, object?][] = [
    ['GET', { exact: 'GET' }],
    ['/api/*', { prefix: '/api/' }],
    ['*.png', { suffix: '.png' }],
    ['*', { safe_regex: { regex: '.+' } }],
    ['cluster.local/ns/a/sa/b', { exact: 'spiffe://cluster.local/ns/a/sa/b' }, { prefixWith: 'spiffe://' }],
    ['cluster.local/ns/a/*', { prefix: 'spiffe://cluster.local/ns/a/' }, { prefixWith: 'spiffe://' }],
    ['Example.com', { exact: 'Example.com', ignore_case: true }, { ignoreCase: true }],
  ];
  for (const [input, want, opts] of rows) assert.deepEqual(istioStringMatch(input, opts), want, input);
});

test('namespaceMatch escapes the name and pins the segment', () => {
  const re = new RegExp(`^(?:${namespaceMatch('a.b').safe_regex!.regex})$`);
  assert.ok(re.test('spiffe://cluster.local/ns/a.b/sa/x'));
  assert.ok(!re.test('spiffe://cluster.local/ns/aXb/sa/x'));
  assert.ok(!re.test('spiffe://cluster.local/ns/a.bc/sa/x'));
  const wild = new RegExp(`^(?:${namespaceMatch('team-*').safe_regex!.regex})$`);
  assert.ok(wild.test('spiffe://td/ns/team-a/sa/x'));
  assert.ok(!wild.test('spiffe://td/ns/other/sa/team-a/x'));
});

test('pathMatch templates', () => {
  assert.deepEqual(pathMatch('/a/{*}/b'), { safe_regex: { regex: '/a/[^/]+/b' } });
  assert.deepEqual(pathMatch('/a/{**}'), { safe_regex: { regex: '/a/.*' } });
  assert.deepEqual(pathMatch('/x.y'), { exact: '/x.y' });
});

test('parseCidr and parsePort', () => {
  assert.deepEqual(parseCidr('10.0.0.0/8'), { address_prefix: '10.0.0.0', prefix_len: { value: 8 } });
  assert.deepEqual(parseCidr('1.2.3.4'), { address_prefix: '1.2.3.4', prefix_len: { value: 32 } });
  assert.deepEqual(parseCidr('::1'), { address_prefix: '::1', prefix_len: { value: 128 } });
  for (const bad of ['10.0.0.0/33', 'x', '1.2.3.4/8/9', '10.0.0.0/', '::1/129']) assert.equal(parseCidr(bad), undefined, bad);
  assert.equal(parsePort('8080'), 8080);
  for (const bad of ['0', '65536', 'http', '']) assert.equal(parsePort(bad), undefined, bad);
});
