import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRouteTable } from '../../../src/proxy/route/table.js';
import { selectRoute } from '../../../src/proxy/route/select.js';
import type { RouteRequest } from '../../../src/proxy/route/types.js';
import { req, vhost } from './helpers.js';

function location(match: object, redirect: object, r: RouteRequest): [number, string] {
  const t = compileRouteTable({ virtual_hosts: [vhost('h', ['*'], [{ name: 'r', match, redirect }])] });
  assert.deepEqual(t.warnings, []);
  const d = selectRoute(t, r);
  assert.equal(d.kind, 'redirect');
  return d.kind === 'redirect' ? [d.status, d.location] : [0, ''];
}

const P = { prefix: '/' };
const cases: [string, object, object, RouteRequest, number, string][] = [
  ['https_redirect drops default port 80', P, { https_redirect: true }, req('a.com:80', '/x', { query: 'q=1' }), 301, 'https://a.com/x?q=1'],
  ['https_redirect without port', P, { https_redirect: true }, req('a.com', '/x'), 301, 'https://a.com/x'],
  ['https_redirect keeps a non-default port', P, { https_redirect: true }, req('a.com:8080', '/x'), 301, 'https://a.com:8080/x'],
  ['scheme_redirect', P, { scheme_redirect: 'HTTPS' }, req('a.com', '/'), 301, 'https://a.com/'],
  ['host_redirect keeps the original port', P, { host_redirect: 'b.com' }, req('a.com:8080', '/x'), 301, 'http://b.com:8080/x'],
  ['host_redirect with its own port', P, { host_redirect: 'b.com:9000' }, req('a.com:8080', '/x'), 301, 'http://b.com:9000/x'],
  ['port_redirect', P, { port_redirect: 8443 }, req('a.com', '/x'), 301, 'http://a.com:8443/x'],
  ['port_redirect to the scheme default is not printed', P, { https_redirect: true, port_redirect: 443 }, req('a.com:8080', '/'), 301, 'https://a.com/'],
  ['path_redirect keeps the query', P, { path_redirect: '/new' }, req('a', '/old', { query: 'x=1' }), 301, 'http://a/new?x=1'],
  ['path_redirect with its own query', P, { path_redirect: '/new?y=2' }, req('a', '/old', { query: 'x=1' }), 301, 'http://a/new?y=2'],
  ['strip_query', P, { path_redirect: '/new', strip_query: true }, req('a', '/old', { query: 'x=1' }), 301, 'http://a/new'],
  ['prefix_rewrite', { prefix: '/old/' }, { prefix_rewrite: '/new/' }, req('a', '/old/x/y'), 301, 'http://a/new/x/y'],
  ['prefix_rewrite on a path match', { path: '/old' }, { prefix_rewrite: '/new' }, req('a', '/old'), 301, 'http://a/new'],
  ['regex_rewrite', P, { regex_rewrite: { pattern: { regex: '^/v1/(.*)$' }, substitution: '/v2/\\1' } }, req('a', '/v1/x'), 301, 'http://a/v2/x'],
  ['x-forwarded-proto is the original scheme', P, { host_redirect: 'b' }, req('a', '/', { headers: { 'x-forwarded-proto': 'https' } }), 301, 'https://b/'],
  ['MOVED_PERMANENTLY', P, { response_code: 'MOVED_PERMANENTLY', path_redirect: '/z' }, req('a', '/'), 301, 'http://a/z'],
  ['FOUND', P, { response_code: 'FOUND', path_redirect: '/z' }, req('a', '/'), 302, 'http://a/z'],
  ['SEE_OTHER', P, { response_code: 'SEE_OTHER', path_redirect: '/z' }, req('a', '/'), 303, 'http://a/z'],
  ['TEMPORARY_REDIRECT', P, { response_code: 'TEMPORARY_REDIRECT', path_redirect: '/z' }, req('a', '/'), 307, 'http://a/z'],
  ['PERMANENT_REDIRECT', P, { response_code: 'PERMANENT_REDIRECT', path_redirect: '/z' }, req('a', '/'), 308, 'http://a/z'],
  ['numeric enum', P, { response_code: 3, path_redirect: '/z' }, req('a', '/'), 307, 'http://a/z'],
  ['IPv6 authority', P, { https_redirect: true }, req('[::1]:80', '/'), 301, 'https://[::1]/'],
];

for (const [name, match, redirect, r, status, loc] of cases) {
  test(`redirect: ${name}`, () => assert.deepEqual(location(match, redirect, r), [status, loc]));
}

test('redirect decision names the route', () => {
  const t = compileRouteTable({ virtual_hosts: [vhost('h', ['*'], [{ name: 'ns/vs#2', match: { prefix: '/' }, redirect: { https_redirect: true } }])] });
  const d = selectRoute(t, req('a', '/'));
  assert.equal(d.kind === 'redirect' && d.routeName, 'ns/vs#2');
});
