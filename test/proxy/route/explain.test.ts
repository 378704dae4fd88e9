import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRouteTable } from '../../../src/proxy/route/table.js';
import { explainRoute } from '../../../src/proxy/route/explain.js';
import { req, vhost } from './helpers.js';

test('explainRoute names the first failing condition of each route', () => {
  const t = compileRouteTable({
    virtual_hosts: [
      vhost('reviews:9080', ['reviews'], [
        { name: 'a', match: { prefix: '/api' }, route: { cluster: 'c' } },
        { name: 'b', match: { prefix: '/', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] }, route: { cluster: 'c' } },
        { name: 'c', match: { prefix: '/', query_parameters: [{ name: 'debug', present_match: true }] }, route: { cluster: 'c' } },
        { name: 'd', match: { prefix: '/', tls_context: {}, grpc: {} }, route: { cluster: 'c' } },
        { name: 'e', match: { safe_regex: { regex: '/x/[0-9]+' } }, route: { cluster: 'c' } },
        { name: 'f', match: { prefix: '/' }, route: { cluster: 'c' } },
      ]),
    ],
  });
  assert.deepEqual(explainRoute(t, req('reviews', '/x/y')), {
    virtualHost: 'reviews:9080',
    routes: [
      'a: prefix /api did not match /x/y',
      'b: header end-user did not match',
      'c: query parameter debug did not match',
      'd: unusable (see the table warnings)',
      'e: regex ^(?:\\/x\\/[0-9]+)$ did not match /x/y',
      'f: matches',
    ],
  });
  assert.deepEqual(explainRoute(t, req('nowhere')), { routes: [] });
});
