// Inbound local rate limit end to end: RateLimitPolicy compiled by the control plane, enforced by proxy B for mesh callers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMesh, type Mesh } from './helpers/mesh.js';
import { compileRateLimits } from '../../src/control/compile/ratelimit/index.js';
import { compileAuthorization } from '../../src/control/compile/authz/index.js';
import type { AuthorizationPolicySpec, RateLimitPolicySpec } from '../../src/api/types.js';
import type { Proxy } from '../../src/proxy/proxy.js';
import { onRequest, type RequestEvent } from '../../src/telemetry/request-events.js';
import { accessLogEntry } from '../../src/telemetry/access-log.js';
import { MESH_SETTINGS, closeAgent, metricsText, pushInboundFilters, request, resource, startCaller, workloadB, type FilterEntry } from './security-helpers.js';

let mesh: Mesh;
let caller: { proxy: Proxy; port: number };
before(async () => {
  mesh = await startMesh();
  caller = await startCaller(mesh, 'c');
});
after(async () => {
  closeAgent();
  await caller?.proxy.close();
  await mesh?.close();
});

function limits(spec: Omit<RateLimitPolicySpec, 'selector'>): FilterEntry {
  const warnings: string[] = [];
  const f = compileRateLimits([resource<RateLimitPolicySpec>('RateLimitPolicy', 'limit', { selector: { matchLabels: { app: 'b' } }, ...spec }, 'trellis.dev/v1alpha1')], workloadB(mesh.ports.http), MESH_SETTINGS, warnings);
  assert.deepEqual(warnings, []);
  assert.ok(f);
  return f as FilterEntry;
}

const viaA = (path: string) => request(mesh.outPort, 'b', path);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('N per second: about N allowed per second (within 10%) over 3 s, the rest 429 rate_limited with Retry-After', async () => {
  const N = 20;
  const filter = limits({ limits: { total: { requests: N, per: '1s' } } });
  assert.equal(pushInboundFilters(mesh, [filter]), undefined);
  // Spend the initial burst (the bucket starts full).
  let first429;
  for (let i = 0; i < 3 * N && !first429; i++) {
    const r = await viaA('/burst');
    if (r.status === 429) first429 = r;
    else assert.equal(r.status, 200, r.body);
  }
  assert.ok(first429, 'the burst never ran out');
  assert.equal(first429.headers['x-trellis-error'], 'rate_limited');
  assert.match(first429.headers['retry-after'] ?? '', /^[1-9]\d*$/);
  assert.match(first429.body, /^rate_limited: request rate limit exceeded/);
  assert.doesNotMatch(first429.body, /default\/limit/);

  const start = Date.now();
  const pending: Promise<number>[] = [];
  let last = start;
  while (Date.now() - start < 3000) {
    pending.push(viaA('/steady').then((r) => r.status));
    last = Date.now();
    await sleep(1000 / (3 * N));
  }
  const statuses = await Promise.all(pending);
  const allowed = statuses.filter((s) => s === 200).length;
  assert.deepEqual(new Set(statuses.filter((s) => s !== 200)), new Set([429]));
  const expected = (N * (last - start)) / 1000;
  if (process.env.TRELLIS_TEST_LOG) console.log(`allowed ${allowed}/${statuses.length} expected ${expected}`);
  assert.ok(Math.abs(allowed - expected) <= expected * 0.1, `allowed ${allowed} of ${statuses.length}, expected about ${expected.toFixed(1)}`);

  // An unchanged config push (new objects, same content) keeps the buckets: still limited right away.
  assert.equal(pushInboundFilters(mesh, [limits({ limits: { total: { requests: N, per: '1s' } } })]), undefined);
  let limited = false;
  for (let i = 0; i < 5 && !limited; i++) limited = (await viaA('/again')).status === 429;
  assert.ok(limited, 'a re-pushed identical config must not refill the bucket');
  const text = await metricsText(mesh.b);
  assert.match(text, /trellis_rate_limited_total\{limit="total"\} [1-9]/);
  assert.match(text, /trellis_requests_total\{reporter="destination",[^}]*response_code="429"[^}]*error_code="rate_limited"/);
});

test('per-caller limits count each caller SPIFFE ID separately; paths outside the policy are not limited', async () => {
  assert.equal(pushInboundFilters(mesh, [limits({ limits: { perCaller: { requests: 2, per: '10s' } }, paths: ['/api/*'] })]), undefined);
  const a = [await viaA('/api/1'), await viaA('/api/2'), await viaA('/api/3')].map((r) => r.status);
  assert.deepEqual(a, [200, 200, 429]);
  const c = [await request(caller.port, 'b', '/api/1'), await request(caller.port, 'b', '/api/2'), await request(caller.port, 'b', '/api/3')].map((r) => r.status);
  assert.deepEqual(c, [200, 200, 429]);
  assert.equal((await viaA('/other')).status, 200);
  const text = await metricsText(mesh.b);
  assert.match(text, /trellis_rate_limited_total\{limit="per_caller"\} [1-9]/);
});

test('a limit on every path is served without the HTTP stack, still reports destination requests, and an AuthorizationPolicy pushed later applies to the already pooled connection', async () => {
  const N = 1000;
  const limit = limits({ limits: { total: { requests: N, per: '1s' } } });
  assert.equal(pushInboundFilters(mesh, [limit]), undefined);
  const before = await metricsText(mesh.b);
  const countOf = (text: string) =>
    [...text.matchAll(/trellis_requests_total\{reporter="destination",[^}]*route="inbound\|[^}]*response_code="200"[^}]*\} (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  // A caller whose pool is new: a's connections may still be on the HTTP stack from the tests above (they stay there).
  const d = await startCaller(mesh, 'd');
  const viaD = (path: string) => request(d.port, 'b', path);
  // Tap and access logs (subscribers of the request events) see metered requests at the destination.
  const events: RequestEvent[] = [];
  const unsubscribe = onRequest(mesh.b.metrics, (e) => events.push(e));
  for (let i = 0; i < 5; i++) {
    const r = await viaD(`/metered/${i}?q=${i}`);
    assert.equal(r.status, 200);
    // The metered path forwards the request unchanged: no x-forwarded-client-cert is added (the L7 stack adds one).
    assert.equal(echoedHeaders(r)['x-forwarded-client-cert'], undefined);
  }
  assert.equal(countOf(await metricsText(mesh.b)) - countOf(before), 5);
  unsubscribe();
  const inbound = events.filter((e) => e.direction === 'inbound').map(accessLogEntry);
  assert.equal(inbound.length, 5);
  assert.equal(inbound[0].method, 'GET');
  assert.equal(inbound[0].path, '/metered/0?q=0');
  assert.equal(inbound[0].status, 200);
  assert.equal(inbound[0].source_principal, 'spiffe://cluster.local/ns/default/sa/d');
  assert.equal(inbound[0].mtls, true);
  assert.ok(inbound[0].request_id, 'the x-request-id added by the calling proxy is logged');
  // Now deny everything but /open: the pooled connection from d's outbound must not bypass it.
  const rbac = compileAuthorization(
    [resource<AuthorizationPolicySpec>('AuthorizationPolicy', 'only-open', { selector: { matchLabels: { app: 'b' } }, action: 'ALLOW', rules: [{ to: [{ operation: { paths: ['/open'] } }] }] })],
    workloadB(mesh.ports.http),
    MESH_SETTINGS,
  );
  assert.deepEqual(rbac.warnings, []);
  assert.equal(pushInboundFilters(mesh, [...rbac.filters, limit]), undefined);
  assert.equal((await viaD('/closed')).status, 403);
  const open = await viaD('/open');
  assert.equal(open.status, 200);
  assert.match(echoedHeaders(open)['x-forwarded-client-cert'] ?? '', /URI=spiffe:\/\/cluster.local\/ns\/default\/sa\/d/);
  await d.proxy.close();
});

test('a request the metered inbound refuses shows in tap and access logs with the rule that decided', async () => {
  assert.equal(pushInboundFilters(mesh, [limits({ limits: { total: { requests: 1, per: '1m' } } })]), undefined);
  const d = await startCaller(mesh, 'e');
  const events: RequestEvent[] = [];
  const unsubscribe = onRequest(mesh.b.metrics, (e) => events.push(e));
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await request(d.port, 'b', '/limited')).status);
    assert.ok(statuses.includes(429), `statuses ${statuses}`);
    const refused = events.filter((e) => e.direction === 'inbound').map(accessLogEntry).find((e) => e.status === 429);
    assert.ok(refused, 'the 429 is published');
    assert.equal(refused.error_code, 'rate_limited');
    assert.equal(refused.decided_by, 'default/limit');
    assert.match(refused.decision_reason ?? '', /total limit of default\/limit exceeded/);
  } finally {
    unsubscribe();
    await d.proxy.close();
  }
});

function echoedHeaders(r: { body: string }): Record<string, string> {
  return (JSON.parse(r.body) as { headers: Record<string, string> }).headers;
}
