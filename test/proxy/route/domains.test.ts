import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRouteTable } from '../../../src/proxy/route/table.js';
import { selectRoute } from '../../../src/proxy/route/select.js';
import { canonicalHost } from '../../../src/proxy/route/domains.js';
import { req, vhost, fwd } from './helpers.js';

const table = compileRouteTable({
  name: 'rc',
  virtual_hosts: [
    vhost('reviews:9080', ['reviews', 'reviews:9080', 'reviews.default.svc.cluster.local:9080'], [fwd('r', { prefix: '/' }, 'reviews')]),
    vhost('ratings', ['ratings', 'RATINGS.default'], [fwd('r', { prefix: '/' }, 'ratings')]),
    vhost('suffix-long', ['*.foo.example.com'], [fwd('r', { prefix: '/' }, 'suffix-long')]),
    vhost('suffix-short', ['*.example.com'], [fwd('r', { prefix: '/' }, 'suffix-short')]),
    vhost('prefix', ['api.*'], [fwd('r', { prefix: '/' }, 'prefix')]),
    vhost('exact-wins', ['www.example.com'], [fwd('r', { prefix: '/' }, 'exact-wins')]),
    vhost('catch-all', ['*'], [fwd('r', { prefix: '/' }, 'catch-all')]),
  ],
});

const cases: [string, string][] = [
  ['reviews', 'reviews'],
  ['reviews:9080', 'reviews'],
  ['REVIEWS:9080', 'reviews'],
  ['reviews.default.svc.cluster.local:9080', 'reviews'],
  ['reviews.:9080', 'reviews'], // trailing dot ignored
  ['reviews.', 'reviews'],
  ['reviews:9999', 'catch-all'], // reviews vhost carries ports: a different port does not fall back to the bare name
  ['ratings', 'ratings'],
  ['ratings:8080', 'ratings'], // no port-qualified domain: the bare name matches any port
  ['ratings.default:1', 'ratings'], // domains are lowercased too
  ['a.foo.example.com', 'suffix-long'], // longest suffix wins
  ['b.example.com', 'suffix-short'],
  ['b.example.com:443', 'suffix-short'],
  ['www.example.com', 'exact-wins'], // exact beats wildcard
  ['api.anything', 'prefix'],
  ['example.com', 'catch-all'], // the wildcard stands for at least one character
  ['unknown', 'catch-all'],
];

for (const [host, cluster] of cases) {
  test(`domain ${host} -> ${cluster}`, () => {
    const d = selectRoute(table, req(host));
    assert.equal(d.kind, 'forward');
    assert.equal(d.kind === 'forward' && d.cluster, cluster);
  });
}

test('without a catch-all, an unknown host is no_route naming the host', () => {
  const t = compileRouteTable({ virtual_hosts: [vhost('a', ['a'], [fwd('r', { prefix: '/' }, 'a')])] });
  assert.deepEqual(selectRoute(t, req('reviews:9080')), { kind: 'no_route', reason: 'no virtual host for reviews:9080' });
  assert.deepEqual(selectRoute(t, req('')), { kind: 'no_route', reason: 'no virtual host for a request without Host' });
});

test('duplicate domain across virtual hosts: first wins, warned', () => {
  const t = compileRouteTable({
    virtual_hosts: [vhost('a', ['x'], [fwd('r', { prefix: '/' }, 'a')]), vhost('b', ['x'], [fwd('r', { prefix: '/' }, 'b')])],
  });
  const d = selectRoute(t, req('x'));
  assert.equal(d.kind === 'forward' && d.cluster, 'a');
  assert.match(t.warnings.join('\n'), /domain x already belongs/);
});

test('canonicalHost', () => {
  assert.equal(canonicalHost('A.B.:80'), 'a.b:80');
  assert.equal(canonicalHost('[::1]:80'), '[::1]:80');
  assert.equal(canonicalHost('[::1]'), '[::1]');
  assert.equal(canonicalHost('x.'), 'x');
});
