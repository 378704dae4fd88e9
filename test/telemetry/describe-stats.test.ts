// Pure parts of describe and the stats collector: route summaries, defaults spelled out, peer addresses, windows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarizeRoute, trafficPolicyView } from '../../src/control/describe.js';
import { StatsCollector, peerHost, targetsOf } from '../../src/control/stats.js';
import type { ProxyStatus } from '../../src/control/ads-server.js';

test('route summaries: weighted destinations with subsets, timeout, retries, redirects', () => {
  const r = summarizeRoute({
    name: 'default/reviews#0',
    match: { prefix: '/api', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] },
    route: {
      weighted_clusters: { clusters: [{ name: 'outbound|9080|v1|reviews.default.svc.cluster.local', weight: { value: 90 } }, { name: 'outbound|9080|v2|reviews.default.svc.cluster.local', weight: { value: 10 } }] },
      timeout: { seconds: 2, nanos: 500_000_000 },
      retry_policy: { num_retries: { value: 3 }, retry_on: 'connect-failure,5xx', per_try_timeout: { seconds: 1 } },
    },
  });
  assert.equal(r.match, 'prefix=/api header end-user=jason');
  assert.deepEqual(r.destinations.map((d) => [d.subset, d.weight, d.port]), [['v1', 90, 9080], ['v2', 10, 9080]]);
  assert.equal(r.timeout, '2500ms');
  assert.equal(r.retries, '3 on connect-failure,5xx, per try 1s');
  assert.equal(summarizeRoute({ name: 'x', match: { prefix: '/' }, route: { cluster: 'outbound|80||a.b.svc.cluster.local', timeout: { seconds: 0 } } }).timeout, 'none');
  assert.match(summarizeRoute({ name: 'r', match: { path: '/old' }, redirect: { path_redirect: '/new' } }).other ?? '', /redirect/);
});

test('traffic policy view: unset fields carry the proxy defaults and are named as defaults', () => {
  const none = trafficPolicyView({}, 'none (defaults)', 80);
  assert.equal(none.connectTimeout, '10s (default)');
  assert.deepEqual(none.circuitBreaker.defaults, ['maxConnections', 'http1MaxPendingRequests', 'http2MaxRequests', 'maxRetries']);
  assert.equal(none.circuitBreaker.maxConnections, 1024);
  assert.match(String(none.outlierDetection), /^off/);
  const set = trafficPolicyView({ connectionPool: { tcp: { maxConnections: 5, connectTimeout: '1s' } }, outlierDetection: { consecutive5xxErrors: 3, interval: '5s' } }, 'DestinationRule d/r', 80);
  assert.equal(set.circuitBreaker.maxConnections, 5);
  assert.equal(set.connectTimeout, '1s');
  assert.deepEqual(set.circuitBreaker.defaults, ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRetries']);
  const od = set.outlierDetection as Exclude<typeof set.outlierDetection, string>;
  assert.equal(od.consecutive5xxErrors, '3');
  assert.equal(od.interval, '5s');
  assert.equal(od.baseEjectionTime, '30s (default)');
  assert.equal(od.maxEjectionPercent, 10);
});

test('peer addresses of gRPC streams', () => {
  const cases: [string | undefined, string | undefined][] = [
    ['127.0.0.1:5000', '127.0.0.1'],
    ['ipv4:10.0.0.7:41000', '10.0.0.7'],
    ['[::1]:5000', '127.0.0.1'],
    ['[fd00::2]:5000', 'fd00::2'],
    [undefined, undefined],
    ['garbage', undefined],
  ];
  for (const [peer, want] of cases) assert.equal(peerHost(peer), want, String(peer));
});

test('scrape targets come from the ports proxies advertised; proxyless clients and proxies without one are skipped', () => {
  const w = (name: string, metricsPort?: number) => ({ name, namespace: 'default', proxy: { id: 'p', inboundPort: 1, outboundPort: 2, ...(metricsPort ? { telemetry: { metricsPort, adminPort: 9000 } } : {}) } });
  const ps = [
    { id: 'n1', kind: 'trellis', peer: '10.0.0.5:4000', workloads: [w('a', 15020), w('b', 15020)] },
    { id: 'old', kind: 'trellis', peer: '127.0.0.1:4000', workloads: [w('c')] },
    { id: 'grpc', kind: 'proxyless', peer: '127.0.0.1:4001', workloads: [] },
  ] as unknown as ProxyStatus[];
  assert.deepEqual(targetsOf(ps), [{ proxy: 'n1', mode: 'node', url: 'http://10.0.0.5:15020/metrics', adminUrl: 'http://127.0.0.1:9000', workloads: ['default/a', 'default/b'] }]);
});

test('stats over a window from scrapes held in memory; an unreachable proxy is reported, not zero-filled silently', async () => {
  let now = 1_000_000;
  let count = 0;
  const text = () => `trellis_requests_total{reporter="source",source_workload="a",source_namespace="default",destination_workload="b",destination_namespace="default",destination_service="b.default.svc.cluster.local",response_code="200",connection_security_policy="mutual_tls"} ${count}\n`;
  const c = new StatsCollector({
    targets: () => [
      { proxy: 'p1', mode: 'sidecar', url: 'http://x/metrics', workloads: ['default/a'] },
      { proxy: 'p2', mode: 'sidecar', url: 'http://down/metrics', workloads: ['default/b'] },
    ],
    fetchText: async (url) => {
      if (url.includes('down')) throw new Error('ECONNREFUSED');
      return text();
    },
    now: () => now,
    backgroundMs: 3_600_000,
  });
  try {
    await c.scrape();
    now += 5000;
    count = 50;
    const r = await c.stats(10);
    assert.equal(r.windowSeconds, 5);
    assert.equal(r.services[0].requests, 50);
    assert.equal(r.services[0].rps, 10);
    assert.deepEqual(r.targets.map((t) => [t.proxy, t.ok]), [['p1', true], ['p2', false]]);
    assert.match(r.targets[1].error ?? '', /ECONNREFUSED/);
  } finally {
    c.close();
  }
});
