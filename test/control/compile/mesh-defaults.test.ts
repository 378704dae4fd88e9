// Mesh spec.defaults (timeout, retries, connectTimeout, idleTimeout), accessLog and pathNormalization -> compiled xDS,
// and what the proxy's parser reads back from it: the Mesh value applies where the resource sets none, the resource wins.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileForProxy } from '../../../src/control/compile/index.js';
import { meshSettings } from '../../../src/control/mesh.js';
import { parseCluster, parseListener } from '../../../src/proxy/config/parse.js';
import { accessLogFromListeners, effectiveAccessLog } from '../../../src/proxy/config/access-log.js';
import { CLUSTER_TYPE, HCM_TYPE, LISTENER_TYPE, packAny, unpackAny } from '../../../src/xds/protos.js';
import { validateResource } from '../../../src/api/validate.js';
import type { Resource } from '../../../src/api/types.js';
import { bookinfo, res, trellisProxy } from './fixtures.js';
import { clusters, listeners, outboundRoutes, unpack, vhost } from './helpers.js';

const RV = 'reviews.default.svc.cluster.local';
const PP = 'default/productpage-v1';

function mesh(spec: Record<string, unknown>): Resource {
  return res('Mesh', 'default', spec, { namespace: 'trellis-system', apiVersion: 'trellis.dev/v1alpha1' });
}

function compiled(resources: Resource[]) {
  const b = bookinfo(resources);
  return compileForProxy({ ...b.input, mesh: meshSettings(resources) }, trellisProxy(b.productpage));
}

/** The route action of the first route for reviews:9080 as productpage sees it. */
function reviewsAction(resources: Resource[]): any {
  return vhost(outboundRoutes(compiled(resources), PP), `${RV}:9080`).routes[0].route;
}

const VS = (http: Record<string, unknown>) => res('VirtualService', 'reviews', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }], ...http }] });
const ROUTE = (rule: Record<string, unknown>) =>
  res('HTTPRoute', 'reviews', { parentRefs: [{ kind: 'Service', group: '', name: 'reviews' }], rules: [{ backendRefs: [{ name: 'reviews', port: 9080 }], ...rule }] }, { apiVersion: 'gateway.networking.k8s.io/v1' });
const SPLIT = res('TrafficSplit', 'reviews', { service: 'reviews', backends: [{ service: 'reviews', weight: 1 }] }, { apiVersion: 'split.smi-spec.io/v1alpha4' });

const timeoutCases: { name: string; resources: Resource[]; want: object }[] = [
  { name: 'no Mesh: no timeout', resources: [], want: { seconds: 0 } },
  { name: 'default route gets the Mesh timeout', resources: [mesh({ defaults: { timeout: '2s' } })], want: { seconds: 2 } },
  { name: 'VirtualService without timeout gets it', resources: [mesh({ defaults: { timeout: '1.5s' } }), VS({})], want: { seconds: 1, nanos: 500_000_000 } },
  { name: 'VirtualService timeout wins', resources: [mesh({ defaults: { timeout: '2s' } }), VS({ timeout: '7s' })], want: { seconds: 7 } },
  { name: 'VirtualService 0s wins (no timeout)', resources: [mesh({ defaults: { timeout: '2s' } }), VS({ timeout: '0s' })], want: { seconds: 0 } },
  { name: 'HTTPRoute without timeouts gets it', resources: [mesh({ defaults: { timeout: '3s' } }), ROUTE({})], want: { seconds: 3 } },
  { name: 'HTTPRoute timeouts.request wins', resources: [mesh({ defaults: { timeout: '3s' } }), ROUTE({ timeouts: { request: '9s' } })], want: { seconds: 9 } },
  { name: 'TrafficSplit gets it', resources: [mesh({ defaults: { timeout: '4s' } }), SPLIT], want: { seconds: 4 } },
];
for (const c of timeoutCases) {
  test(`Mesh defaults.timeout: ${c.name}`, () => assert.deepEqual(reviewsAction(c.resources).timeout, c.want));
}

const RETRIES = { attempts: 3, perTryTimeout: '500ms', retryOn: '5xx,reset,non-idempotent' };
const retryCases: { name: string; resources: Resource[]; want: Record<string, unknown> | undefined }[] = [
  { name: 'no Mesh: none', resources: [], want: undefined },
  { name: 'attempts 0: none', resources: [mesh({ defaults: { retries: { attempts: 0, retryOn: '5xx' } } })], want: undefined },
  {
    name: 'default route: the Mesh policy, non-idempotent dropped',
    resources: [mesh({ defaults: { retries: RETRIES } })],
    want: { retry_on: '5xx,reset', num_retries: 3, per_try_timeout: { seconds: 0, nanos: 500_000_000 } },
  },
  {
    name: 'retryOn unset: the documented default conditions',
    resources: [mesh({ defaults: { retries: { attempts: 2 } } })],
    want: { retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', num_retries: 2, per_try_timeout: undefined },
  },
  { name: 'VirtualService without retries gets it', resources: [mesh({ defaults: { retries: RETRIES } }), VS({})], want: { retry_on: '5xx,reset', num_retries: 3, per_try_timeout: { seconds: 0, nanos: 500_000_000 } } },
  { name: 'VirtualService retries win', resources: [mesh({ defaults: { retries: RETRIES } }), VS({ retries: { attempts: 1, retryOn: 'gateway-error' } })], want: { retry_on: 'gateway-error', num_retries: 1, per_try_timeout: undefined } },
  { name: 'VirtualService attempts 0 wins (no retries)', resources: [mesh({ defaults: { retries: RETRIES } }), VS({ retries: { attempts: 0 } })], want: undefined },
  { name: 'HTTPRoute gets it', resources: [mesh({ defaults: { retries: RETRIES } }), ROUTE({})], want: { retry_on: '5xx,reset', num_retries: 3, per_try_timeout: { seconds: 0, nanos: 500_000_000 } } },
  {
    name: 'HTTPRoute with its own retry block gets that instead',
    resources: [mesh({ defaults: { retries: RETRIES } }), ROUTE({ retry: { attempts: 1 } })],
    want: { retry_on: 'connect-failure,refused-stream,unavailable,cancelled', num_retries: 1, per_try_timeout: undefined },
  },
  { name: 'HTTPRoute retry attempts 0: none, and no Mesh default', resources: [mesh({ defaults: { retries: RETRIES } }), ROUTE({ retry: { attempts: 0 } })], want: undefined },
  { name: 'TrafficSplit gets it', resources: [mesh({ defaults: { retries: RETRIES } }), SPLIT], want: { retry_on: '5xx,reset', num_retries: 3, per_try_timeout: { seconds: 0, nanos: 500_000_000 } } },
];
for (const c of retryCases) {
  test(`Mesh defaults.retries: ${c.name}`, () => {
    const rp = reviewsAction(c.resources).retry_policy;
    if (c.want === undefined) return assert.equal(rp, undefined);
    assert.deepEqual({ retry_on: rp.retry_on, num_retries: rp.num_retries.value, per_try_timeout: rp.per_try_timeout }, c.want);
  });
}

test('Mesh defaults.retries: non-idempotent in retryOn is reported (TRL0402), the rest is valid', () => {
  const d = validateResource(mesh({ defaults: { retries: RETRIES } }));
  assert.deepEqual(d.map((x) => [x.code, x.field]), [['TRL0402', 'spec.defaults.retries.retryOn']]);
  assert.deepEqual(validateResource(mesh({ defaults: { retries: { attempts: 2, retryOn: '5xx' } } })), []);
});

const DR = (pool: Record<string, unknown>) => res('DestinationRule', 'reviews', { host: 'reviews', trafficPolicy: { connectionPool: pool } });
const clusterCases: { name: string; resources: Resource[]; connectMs: number; idle: object | undefined }[] = [
  { name: 'no Mesh: 10s, no idle timeout (proxy default)', resources: [], connectMs: 10_000, idle: undefined },
  { name: 'Mesh values apply', resources: [mesh({ defaults: { connectTimeout: '250ms', idleTimeout: '30s' } })], connectMs: 250, idle: { seconds: 30 } },
  { name: 'DestinationRule values win', resources: [mesh({ defaults: { connectTimeout: '250ms', idleTimeout: '30s' } }), DR({ tcp: { connectTimeout: '2s' }, http: { idleTimeout: '5s' } })], connectMs: 2000, idle: { seconds: 5 } },
  { name: 'DestinationRule pool without them keeps the Mesh values', resources: [mesh({ defaults: { connectTimeout: '250ms', idleTimeout: '30s' } }), DR({ tcp: { maxConnections: 5 } })], connectMs: 250, idle: { seconds: 30 } },
];
for (const c of clusterCases) {
  test(`Mesh defaults.connectTimeout/idleTimeout: ${c.name}`, () => {
    const cl = clusters(compiled(c.resources))[`outbound|9080||${RV}`];
    assert.deepEqual(cl.common_http_protocol_options?.idle_timeout, c.idle);
    // As the proxy reads it after an xDS round trip.
    assert.equal(parseCluster(unpackAny(packAny(CLUSTER_TYPE, cl))).connectTimeoutMs, c.connectMs);
  });
}

/** Decoded listeners of productpage's snapshot, as the proxy receives them. */
function wireListeners(resources: Resource[]): Record<string, any>[] {
  return Object.values(listeners(compiled(resources))).map((l) => unpackAny(packAny(LISTENER_TYPE, l)));
}

const normCases: { mode?: string; want: { normalize: boolean; mergeSlashes: boolean; escapedSlashes?: string } }[] = [
  { mode: undefined, want: { normalize: true, mergeSlashes: true } },
  { mode: 'NONE', want: { normalize: false, mergeSlashes: false } },
  { mode: 'BASE', want: { normalize: true, mergeSlashes: false } },
  { mode: 'MERGE_SLASHES', want: { normalize: true, mergeSlashes: true } },
  { mode: 'DECODE_AND_MERGE_SLASHES', want: { normalize: true, mergeSlashes: true, escapedSlashes: 'decode-and-merge' } },
];
for (const c of normCases) {
  test(`Mesh pathNormalization ${c.mode ?? '(unset)'}: both listeners' HCMs, as the proxy parses them`, () => {
    const ls = wireListeners(c.mode ? [mesh({ pathNormalization: c.mode })] : []);
    const out = parseListener(ls.find((l) => l.name === `outbound|${PP}`)!);
    const inb = parseListener(ls.find((l) => l.name === `inbound|${PP}`)!);
    assert.deepEqual(out.normalize, c.want);
    assert.ok(inb.chains.length > 0);
    for (const ch of inb.chains) {
      assert.deepEqual(ch.normalize, c.want);
      assert.equal(ch.escapedSlashes, c.want.escapedSlashes);
    }
  });
}

test('proxy parse: an HCM without normalize_path keeps the proxy default; UNESCAPE_AND_REDIRECT decodes', () => {
  const l = (hcm: object) => ({ name: 'o', address: { socket_address: { address: '127.0.0.1', port_value: 1 } }, filter_chains: [{ filters: [{ name: 'hcm', typed_config: packAny(HCM_TYPE, { stat_prefix: 'o', rds: { route_config_name: 'r', config_source: { ads: {} } }, ...hcm }) }] }] });
  const parse = (hcm: object) => parseListener(unpackAny(packAny(LISTENER_TYPE, l(hcm)))).normalize;
  assert.deepEqual(parse({}), {});
  assert.deepEqual(parse({ merge_slashes: true }), {});
  assert.deepEqual(parse({ path_with_escaped_slashes_action: 'UNESCAPE_AND_REDIRECT', normalize_path: { value: true } }), { escapedSlashes: 'decode-and-merge', normalize: true, mergeSlashes: false });
  assert.deepEqual(parse({ path_with_escaped_slashes_action: 'KEEP_UNCHANGED', normalize_path: { value: false }, merge_slashes: true }), { escapedSlashes: 'keep', normalize: false, mergeSlashes: true });
});

const unpackAnyLoose = (a: { type_url: string; value: Uint8Array }) => unpackAny(a as never) as Record<string, any>;

const logCases: { name: string; spec?: Record<string, unknown>; want: ReturnType<typeof accessLogFromListeners> }[] = [
  { name: 'no Mesh: unset', spec: undefined, want: { kind: 'unset' } },
  { name: 'Mesh without accessLog: unset', spec: { trustDomain: 'cluster.local' }, want: { kind: 'unset' } },
  { name: 'empty block: on, JSON, stdout', spec: { accessLog: {} }, want: { kind: 'on', target: '-', format: 'json' } },
  { name: 'text to a file', spec: { accessLog: { format: 'text', path: '/var/log/trellis.log' } }, want: { kind: 'on', target: '/var/log/trellis.log', format: 'text' } },
  { name: 'json, path "-": stdout', spec: { accessLog: { enabled: true, format: 'json', path: '-' } }, want: { kind: 'on', target: '-', format: 'json' } },
  { name: 'enabled false: explicitly off', spec: { accessLog: { enabled: false, format: 'text' } }, want: { kind: 'off' } },
];
for (const c of logCases) {
  test(`Mesh accessLog: ${c.name}`, () => {
    const ls = wireListeners(c.spec ? [mesh(c.spec)] : []);
    const problems: string[] = [];
    assert.deepEqual(accessLogFromListeners(ls, unpackAnyLoose, HCM_TYPE, problems), c.want);
    assert.deepEqual(problems, []);
    // Every HTTP HCM (outbound and each inbound chain) carries the logger when on.
    const hcms = ls.flatMap((l) => l.filter_chains.flatMap((fc: any) => fc.filters.filter((f: any) => f.typed_config?.type_url === HCM_TYPE).map((f: any) => unpack(f.typed_config))));
    assert.ok(hcms.length >= 2);
    for (const h of hcms) assert.equal((h.access_log ?? []).length, c.want.kind === 'on' ? 1 : 0);
  });
}

test('proxy access log choice: flag wins (Mesh format kept), then the Mesh, then the launcher default only when unset', () => {
  const on = { kind: 'on', target: '/f', format: 'text' } as const;
  assert.deepEqual(effectiveAccessLog(on, '-', undefined), { target: '-', format: 'text' });
  assert.deepEqual(effectiveAccessLog({ kind: 'off' }, '/x', undefined), { target: '/x', format: 'json' });
  assert.deepEqual(effectiveAccessLog(on, undefined, '-'), { target: '/f', format: 'text' });
  assert.equal(effectiveAccessLog({ kind: 'off' }, undefined, '-'), undefined);
  assert.deepEqual(effectiveAccessLog({ kind: 'unset' }, undefined, '-'), { target: '-', format: 'json' });
  assert.equal(effectiveAccessLog({ kind: 'unset' }, undefined, undefined), undefined);
});

test('proxy access log: a logger it cannot read is reported, not silently used', () => {
  const l = { name: 'o', filter_chains: [{ filters: [{ name: 'hcm', typed_config: packAny(HCM_TYPE, { stat_prefix: 'o', access_log: [{ name: 'envoy.access_loggers.stdout', typed_config: packAny(HCM_TYPE, { stat_prefix: 'x' }) }] }) }] }] };
  const problems: string[] = [];
  assert.deepEqual(accessLogFromListeners([unpackAny(packAny(LISTENER_TYPE, l as never))], unpackAnyLoose, HCM_TYPE, problems), { kind: 'unset' });
  assert.equal(problems.length, 1);
  assert.match(problems[0], /access_log\[0\] \(envoy\.access_loggers\.stdout\).*not supported/);
});

const gatewayRetryCases: { name: string; rule: Record<string, unknown>; want: Record<string, unknown> | undefined }[] = [
  {
    name: 'codes, attempts and backoff',
    rule: { retry: { codes: [500, 503], attempts: 3, backoff: '100ms' } },
    want: {
      retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
      num_retries: 3,
      codes: [500, 503],
      back_off: { base_interval: { seconds: 0, nanos: 100_000_000 }, max_interval: { seconds: 1 } },
      per_try_timeout: undefined,
      timeout: { seconds: 0 },
    },
  },
  {
    name: 'attempts unset: 2; backoff unset: 25ms base',
    rule: { retry: { codes: [502] } },
    want: {
      retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
      num_retries: 2,
      codes: [502],
      back_off: { base_interval: { seconds: 0, nanos: 25_000_000 }, max_interval: { seconds: 0, nanos: 250_000_000 } },
      per_try_timeout: undefined,
      timeout: { seconds: 0 },
    },
  },
  {
    name: 'backendRequest is each try\'s timeout, request the whole',
    rule: { retry: { attempts: 1 }, timeouts: { request: '3s', backendRequest: '500ms' } },
    want: {
      retry_on: 'connect-failure,refused-stream,unavailable,cancelled',
      num_retries: 1,
      codes: undefined,
      back_off: { base_interval: { seconds: 0, nanos: 25_000_000 }, max_interval: { seconds: 0, nanos: 250_000_000 } },
      per_try_timeout: { seconds: 0, nanos: 500_000_000 },
      timeout: { seconds: 3 },
    },
  },
  { name: 'attempts 0: no retry policy', rule: { retry: { attempts: 0, codes: [503] } }, want: undefined },
];
for (const c of gatewayRetryCases) {
  test(`HTTPRoute retry (GEP-1731): ${c.name}`, () => {
    const a = reviewsAction([ROUTE(c.rule)]);
    const rp = a.retry_policy;
    if (c.want === undefined) return assert.equal(rp, undefined);
    assert.deepEqual(
      {
        retry_on: rp.retry_on,
        num_retries: rp.num_retries.value,
        codes: rp.retriable_status_codes,
        back_off: rp.retry_back_off,
        per_try_timeout: rp.per_try_timeout,
        timeout: a.timeout,
      },
      c.want,
    );
  });
}
