// RateLimitPolicy -> local_ratelimit: selection, shape, warnings, and a round trip through packAny/unpackAny into the proxy's limiter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../../../src/api/types.js';
import { compileRateLimits, LOCAL_RATELIMIT_FILTER } from '../../../../src/control/compile/ratelimit/index.js';
import { setStrictPacking } from '../../../../src/control/compile/pack.js';
import type { MeshSettings, WorkloadInstance } from '../../../../src/control/model.js';
import { LOCAL_RATELIMIT_TYPE, unpackAny } from '../../../../src/xds/protos.js';
import { rateLimiterFromConfig, DESCRIPTOR_CALLER, DESCRIPTOR_PATH, DESCRIPTOR_POLICY, DESCRIPTOR_ROUTE } from '../../../../src/proxy/resilience/rate-limiter.js';
import * as compileSide from '../../../../src/control/compile/ratelimit/index.js';

setStrictPacking(true);

const MESH: MeshSettings = { trustDomain: 'cluster.local', rootNamespaces: ['trellis-system', 'istio-system'], certificateTtlSeconds: 86400 };
const WL: WorkloadInstance = {
  name: 'reviews-v1', namespace: 'default', labels: { app: 'reviews' }, serviceAccount: 'reviews', identity: 'spiffe://cluster.local/ns/default/sa/reviews',
  services: ['reviews.default.svc.cluster.local'], address: '127.0.0.1', ports: [], health: 'HEALTHY', source: 'Workload',
};
const rl = (name: string, spec: Record<string, unknown>, namespace = 'default'): Resource<any> =>
  ({ apiVersion: 'trellis.dev/v1alpha1', kind: 'RateLimitPolicy', metadata: { name, namespace }, spec });

test('selection: selector, targetRef Service, namespace and root namespace, as for AuthorizationPolicy', () => {
  const limits = { total: { requests: 10, per: '1s' } };
  const cases: [string, Resource<any>, boolean][] = [
    ['selector matches', rl('a', { selector: { matchLabels: { app: 'reviews' } }, limits }), true],
    ['selector misses', rl('a', { selector: { matchLabels: { app: 'ratings' } }, limits }), false],
    ['other namespace', rl('a', { selector: { matchLabels: { app: 'reviews' } }, limits }, 'other'), false],
    ['root namespace, no selector', rl('a', { limits }, 'trellis-system'), true],
    ['targetRef member service', rl('a', { targetRef: { kind: 'Service', name: 'reviews' }, limits }), true],
    ['targetRef other service', rl('a', { targetRef: { kind: 'Service', name: 'ratings' }, limits }), false],
  ];
  for (const [name, p, applies] of cases) assert.equal(compileRateLimits([p], WL, MESH) !== undefined, applies, name);
  assert.equal(compileRateLimits([], WL, MESH), undefined);
});

test('shape: filter-level bucket from the slowest unscoped total; per-caller and scoped limits as descriptors', () => {
  const f = compileRateLimits(
    [
      rl('b-fast', { targetRef: { kind: 'Service', name: 'reviews' }, limits: { total: { requests: 100, per: '1s' }, perCaller: { requests: 10, per: '1s' } } }),
      rl('a-slow', { selector: { matchLabels: { app: 'reviews' } }, limits: { total: { requests: 600, per: '1m' } } }),
      rl('c-api', { selector: {}, limits: { total: { requests: 5, per: '1s' } }, paths: ['/api/*'], routes: ['checkout'] }),
    ],
    WL,
    MESH,
  )!;
  assert.equal(f.name, LOCAL_RATELIMIT_FILTER);
  assert.equal(f.typed_config.type_url, LOCAL_RATELIMIT_TYPE);
  const cfg = unpackAny<any>(f.typed_config);
  const tb = (n: number, seconds: number) => ({ max_tokens: n, tokens_per_fill: { value: n }, fill_interval: { seconds: String(seconds) } });
  assert.deepEqual(cfg, {
    stat_prefix: 'ratelimit|default/a-slow', // 600/min = 10/s, slower than 100/s
    status: { code: 'TooManyRequests' },
    token_bucket: tb(600, 60),
    filter_enabled: { default_value: { numerator: 100, denominator: 'HUNDRED' }, runtime_key: 'trellis_local_rate_limit' },
    filter_enforced: { default_value: { numerator: 100, denominator: 'HUNDRED' }, runtime_key: 'trellis_local_rate_limit' },
    response_headers_to_add: [{ header: { key: 'x-trellis-error', value: 'rate_limited' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
    descriptors: [
      { entries: [{ key: 'trellis.policy', value: 'default/b-fast' }], token_bucket: tb(100, 1) },
      { entries: [{ key: 'trellis.policy', value: 'default/b-fast' }, { key: 'source.principal', value: '*' }], token_bucket: tb(10, 1) },
      {
        entries: [{ key: 'trellis.policy', value: 'default/c-api' }, { key: 'trellis.path', value: '/api/*' }, { key: 'trellis.route', value: 'checkout' }],
        token_bucket: tb(5, 1),
      },
    ],
  });
});

test('descriptor keys are the same strings on both sides', () => {
  assert.deepEqual(
    [compileSide.DESCRIPTOR_POLICY, compileSide.DESCRIPTOR_CALLER, compileSide.DESCRIPTOR_PATH, compileSide.DESCRIPTOR_ROUTE],
    [DESCRIPTOR_POLICY, DESCRIPTOR_CALLER, DESCRIPTOR_PATH, DESCRIPTOR_ROUTE],
  );
});

test('round trip: compile -> packAny -> unpackAny -> rateLimiterFromConfig enforces every limit', () => {
  const f = compileRateLimits(
    [
      rl('total', { selector: {}, limits: { total: { requests: 3, per: '1s' } } }),
      rl('callers', { selector: {}, limits: { perCaller: { requests: 2, per: '1s' } } }),
      rl('api', { selector: {}, limits: { total: { requests: 1, per: '1m' } }, paths: ['/api'] }),
    ],
    WL,
    MESH,
  )!;
  let t = 0;
  const warnings: string[] = [];
  const l = rateLimiterFromConfig(unpackAny(f.typed_config), { now: () => t }, warnings)!;
  assert.deepEqual(warnings, []);
  assert.deepEqual(l.ruleNames.sort(), ['default/api', 'default/callers', 'default/total']);
  const A = 'spiffe://cluster.local/ns/default/sa/a';
  const B = 'spiffe://cluster.local/ns/default/sa/b';
  assert.equal(l.take(A, undefined, '/api/x').allowed, true);
  assert.deepEqual(l.take(B, undefined, '/api/y'), { allowed: false, retryAfterSeconds: 60, limit: 'total', rule: 'default/api' });
  assert.equal(l.take(A, undefined, '/').allowed, true);
  assert.deepEqual(l.take(A, undefined, '/'), { allowed: false, retryAfterSeconds: 1, limit: 'per_caller', rule: 'default/callers' });
  assert.equal(l.take(B, undefined, '/').allowed, true);
  assert.deepEqual(l.take(B, undefined, '/'), { allowed: false, retryAfterSeconds: 1, limit: 'total', rule: 'default/total' });
  t = 1000;
  assert.equal(l.take(B, undefined, '/').allowed, true);
});

test('bad limits warn with the field and never throw; sub-50ms windows keep their rate', () => {
  const warnings: string[] = [];
  const f = compileRateLimits(
    [
      rl('bad', { selector: {}, limits: { total: { requests: 0, per: '1s' }, perCaller: { requests: 5, per: 'soon' } } }),
      rl('weird', { selector: {}, limits: 'lots', paths: 'x' }),
      rl('fast', { selector: {}, limits: { total: { requests: 1, per: '10ms' } }, paths: ['/ok', 7] }),
    ],
    WL,
    MESH,
    warnings,
  )!;
  assert.deepEqual(warnings, [
    'RateLimitPolicy default/bad: spec.limits.total.requests: expected a whole number >= 1, got 0; limit ignored',
    'RateLimitPolicy default/bad: spec.limits.perCaller.per: expected a duration such as 1s or 1m, got "soon"; limit ignored',
    'RateLimitPolicy default/bad: no usable limit (set spec.limits.total and/or spec.limits.perCaller); policy ignored',
    'RateLimitPolicy default/fast: spec.paths: entry 7 is not a non-empty string; ignored',
    'RateLimitPolicy default/weird: no usable limit (set spec.limits.total and/or spec.limits.perCaller); policy ignored',
  ]);
  const cfg = unpackAny<any>(f.typed_config);
  assert.deepEqual(cfg.descriptors[0].token_bucket, { max_tokens: 5, tokens_per_fill: { value: 5 }, fill_interval: { seconds: '0', nanos: 50_000_000 } });
  assert.equal(cfg.token_bucket, undefined, 'only a path-scoped total: no filter-level bucket');
  assert.equal(cfg.stat_prefix, 'ratelimit|default/reviews-v1');
});

test('spec.routes: names other than the inbound route are warned about, naming the policy and the field', () => {
  const warnings: string[] = [];
  compileRateLimits([rl('vs-route', { selector: {}, limits: { total: { requests: 5, per: '1s' } }, routes: ['checkout', 'inbound'] })], WL, MESH, warnings);
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(warnings[0], /RateLimitPolicy default\/vs-route: spec\.routes "checkout" never match/);
  assert.match(warnings[0], /use spec\.paths/);
  const none: string[] = [];
  compileRateLimits([rl('inbound-only', { selector: {}, limits: { total: { requests: 5, per: '1s' } }, routes: ['inbound'] })], WL, MESH, none);
  assert.deepEqual(none, []);
});
