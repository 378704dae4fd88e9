// RBAC engine on hand-written Envoy configs: fail-closed handling, Envoy matcher details, shadow rules, http_filters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RBAC_TYPE, JWT_AUTHN_TYPE, ROUTER_TYPE, packAny } from '../../../src/xds/protos.js';
import { authzFiltersOf, compileRbac, evaluate } from '../../../src/proxy/authz/index.js';
import { cidrContains, compileCidr, parseIp } from '../../../src/proxy/authz/ip.js';
import { BASE_REQUEST } from './helpers.js';

const anyPol = { permissions: [{ any: true }], principals: [{ any: true }] };
const req = (over = {}) => ({ ...BASE_REQUEST, ...over });

test('an unevaluable DENY policy matches everything; an unevaluable ALLOW policy matches nothing', () => {
  const cel = { ...anyPol, condition: { const_expr: { bool_value: true } } };
  const deny = compileRbac([{ rules: { action: 'DENY', policies: { cel } } }]);
  assert.equal(evaluate(deny, req()).allowed, false);
  assert.match(deny.errors[0], /cel: CEL conditions are not supported; treated as matching every request/);
  const allow = compileRbac([{ rules: { policies: { cel, ok: { permissions: [{ url_path: { path: { exact: '/ok' } } }], principals: [{ any: true }] } } } }]);
  assert.equal(evaluate(allow, req({ path: '/x' })).allowed, false);
  assert.equal(evaluate(allow, req({ path: '/ok' })).allowed, true);
  const unknownMeta = compileRbac([{ rules: { action: 'DENY', policies: { m: { permissions: [{ any: true }], principals: [{ metadata: { filter: 'mystery', path: [{ key: 'k' }], value: { present_match: true } } }] } } } }]);
  assert.equal(evaluate(unknownMeta, req()).allowed, false);
  const matcherTree = compileRbac([{ matcher: { matcher_list: {} } }]);
  assert.equal(evaluate(matcherTree, req()).allowed, false);
  const badAction = compileRbac([{ rules: { action: 'SOMETHING', policies: {} } }]);
  assert.equal(evaluate(badAction, req()).allowed, false);
});

test('Envoy header matcher details: repeated values join with commas, invert, presence', () => {
  const pol = (header: object) => compileRbac([{ rules: { policies: { h: { permissions: [{ header }], principals: [{ any: true }] } } } }]);
  assert.equal(evaluate(pol({ name: 'x-a', string_match: { exact: '1,2' } }), req({ headers: { 'x-a': ['1', '2'] } })).allowed, true);
  assert.equal(evaluate(pol({ name: 'x-a', present_match: true }), req({ headers: {} })).allowed, false);
  assert.equal(evaluate(pol({ name: 'x-a', present_match: true, invert_match: true }), req({ headers: {} })).allowed, true);
  assert.equal(evaluate(pol({ name: 'X-A', string_match: { prefix: 'b' }, invert_match: true }), req({ headers: { 'x-a': 'bad' } })).allowed, false);
  assert.equal(evaluate(pol({ name: ':method', string_match: { exact: 'GET' } }), req()).allowed, true);
});

test('shadow rules are reported as dry-run and never enforced', () => {
  const e = compileRbac([{ shadow_rules: { action: 'DENY', policies: { would: anyPol } } }]);
  const d = evaluate(e, req());
  assert.equal(d.allowed, true);
  assert.deepEqual(d.auditMatches, ['dry-run:would']);
});

test('later stages still apply after an ALLOW match (Envoy filter chain order)', () => {
  const e = compileRbac([{ rules: { policies: { a: anyPol } } }, { rules: { action: 'DENY', policies: { d: anyPol } } }]);
  assert.deepEqual(evaluate(e, req()), { allowed: false, action: 'DENY', decidedBy: 'd', reason: 'denied by d', auditMatches: undefined });
});

test('authzFiltersOf picks rbac and jwt_authn out of http_filters and skips the rest', async () => {
  const filters = [
    { name: 'envoy.filters.http.jwt_authn', typed_config: packAny(JWT_AUTHN_TYPE, { providers: { p: { issuer: 'i', local_jwks: { inline_string: '{"keys":[]}' } } } }) },
    { name: 'envoy.filters.http.rbac', typed_config: packAny(RBAC_TYPE, { rules: { action: 'DENY', policies: { d: { permissions: [{ url_path: { path: { exact: '/admin' } } }], principals: [{ any: true }] } } } }) },
    { name: 'envoy.filters.http.router', typed_config: packAny(ROUTER_TYPE, {}) },
  ];
  const sec = authzFiltersOf(filters);
  assert.deepEqual(sec.errors, []);
  assert.ok(sec.jwt);
  assert.equal((await sec.jwt.verify({ headers: {}, query: '' })).kind, 'none');
  assert.equal(evaluate(sec.engine, req({ path: '/admin' })).allowed, false);
  assert.equal(evaluate(sec.engine, req({ path: '/' })).allowed, true);
  const broken = authzFiltersOf([{ name: 'envoy.filters.http.rbac', typed_config: { type_url: RBAC_TYPE, value: Buffer.from([0xff, 0xff, 0xff]) } }]);
  assert.equal(evaluate(broken.engine, req()).allowed, false);
  assert.ok(broken.errors.length > 0);
});

test('IP parsing and CIDR membership', () => {
  const rows: [string, number, string, boolean][] = [
    ['10.0.0.0', 8, '10.255.1.1', true],
    ['10.0.0.0', 8, '11.0.0.0', false],
    ['10.0.0.0', 8, '::ffff:10.1.1.1', true],
    ['10.0.0.0', 8, '::ffff:a01:101', true],
    ['192.168.1.128', 25, '192.168.1.200', true],
    ['192.168.1.128', 25, '192.168.1.127', false],
    ['0.0.0.0', 0, '8.8.8.8', true],
    ['0.0.0.0', 0, '::1', false],
    ['2001:db8::', 32, '2001:db8:ffff::1', true],
    ['2001:db8::', 33, '2001:db8:8000::1', false],
    ['::1', 128, '::1', true],
    ['::ffff:10.0.0.0', 104, '10.0.0.5', true],
  ];
  for (const [addr, len, ip, want] of rows) {
    assert.equal(cidrContains(compileCidr({ address_prefix: addr, prefix_len: { value: len } }), parseIp(ip)), want, `${ip} in ${addr}/${len}`);
  }
  assert.equal(parseIp('nonsense'), undefined);
  assert.throws(() => compileCidr({ address_prefix: 'x', prefix_len: { value: 1 } }));
  assert.throws(() => compileCidr({ address_prefix: '1.2.3.4', prefix_len: { value: 33 } }));
});
