// DestinationRule -> Cluster: lb policy, connection pool, outlier detection, subsets, port-level settings, metadata.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileForProxy } from '../../../src/control/compile/index.js';
import { bookinfo, res, trellisProxy, PROXYLESS } from './fixtures.js';
import { clusters, trellisMeta } from './helpers.js';

const RV = 'reviews.default.svc.cluster.local';

function reviewsClusters(spec: unknown, extra: unknown[] = []): Record<string, any> {
  const b = bookinfo([res('DestinationRule', 'reviews', { host: 'reviews', ...(spec as object) }), ...(extra as never[])]);
  return clusters(compileForProxy(b.input, trellisProxy(b.productpage)));
}

test('default cluster: EDS over ADS, 10 s connect timeout, ROUND_ROBIN, contract metadata', () => {
  const b = bookinfo();
  const c = clusters(compileForProxy(b.input, trellisProxy(b.productpage)))[`outbound|9080||${RV}`];
  assert.equal(c.type, 'EDS');
  assert.deepEqual(c.eds_cluster_config, { eds_config: { ads: {} }, service_name: `outbound|9080||${RV}` });
  assert.deepEqual(c.connect_timeout, { seconds: 10 });
  assert.equal(c.lb_policy, 'ROUND_ROBIN');
  assert.equal(c.circuit_breakers, undefined);
  assert.deepEqual(trellisMeta(c), { service: RV, port: 9080, subset: '', protocol: 'HTTP' });
});

const lbCases: [unknown, string, object | undefined][] = [
  [{ simple: 'ROUND_ROBIN' }, 'ROUND_ROBIN', undefined],
  [{ simple: 'LEAST_REQUEST' }, 'LEAST_REQUEST', undefined],
  [{ simple: 'LEAST_CONN' }, 'LEAST_REQUEST', undefined],
  [{ simple: 'RANDOM' }, 'RANDOM', undefined],
  [{ simple: 'PASSTHROUGH' }, 'ROUND_ROBIN', undefined],
  [{ consistentHash: { httpHeaderName: 'x-u' } }, 'RING_HASH', { hash_function: 'XX_HASH' }],
  [{ consistentHash: { useSourceIp: true, ringHash: { minimumRingSize: 4096 } } }, 'RING_HASH', { hash_function: 'XX_HASH', minimum_ring_size: { value: 4096 } }],
  [{ consistentHash: { httpQueryParameterName: 'q', maglev: { tableSize: 65537 } } }, 'MAGLEV', undefined],
];
for (const [lb, policy, ring] of lbCases) {
  test(`loadBalancer ${JSON.stringify(lb)} -> ${policy}`, () => {
    const c = reviewsClusters({ trafficPolicy: { loadBalancer: lb } })[`outbound|9080||${RV}`];
    assert.equal(c.lb_policy, policy);
    assert.deepEqual(c.ring_hash_lb_config, ring);
  });
}

test('consistent hash key is recorded in cluster metadata and cookie ttl kept on the route', () => {
  const c = reviewsClusters({ trafficPolicy: { loadBalancer: { consistentHash: { httpCookie: { name: 'sess', ttl: '1h' } } } } })[`outbound|9080||${RV}`];
  assert.equal(trellisMeta(c).hashPolicy, 'cookie:sess');
  assert.equal(trellisMeta(c).destinationRule, 'default/reviews');
});

test('locality settings: failover -> zone aware, distribute -> locality weighted', () => {
  const a = reviewsClusters({ trafficPolicy: { loadBalancer: { localityLbSetting: { enabled: true, failover: [{ from: 'eu', to: 'us' }] } } } });
  assert.deepEqual(a[`outbound|9080||${RV}`].common_lb_config, { zone_aware_lb_config: {} });
  const b = reviewsClusters({ trafficPolicy: { loadBalancer: { localityLbSetting: { distribute: [{ from: 'eu/*', to: { 'eu/*': 100 } }] } } } });
  assert.deepEqual(b[`outbound|9080||${RV}`].common_lb_config, { locality_weighted_lb_config: {} });
  const c = reviewsClusters({ trafficPolicy: { loadBalancer: { localityLbSetting: { enabled: false } } } });
  assert.equal(c[`outbound|9080||${RV}`].common_lb_config, undefined);
});

test('connectionPool -> circuit breakers, connect timeout, idle timeout, requests per connection', () => {
  const c = reviewsClusters({
    trafficPolicy: {
      connectionPool: {
        tcp: { maxConnections: 7, connectTimeout: '250ms' },
        http: { http1MaxPendingRequests: 3, http2MaxRequests: 50, maxRetries: 1, idleTimeout: '90s', maxRequestsPerConnection: 10 },
      },
    },
  })[`outbound|9080||${RV}`];
  assert.deepEqual(c.circuit_breakers, {
    thresholds: [
      { priority: 'DEFAULT', max_connections: { value: 7 }, max_pending_requests: { value: 3 }, max_requests: { value: 50 }, max_retries: { value: 1 } },
    ],
  });
  assert.deepEqual(c.connect_timeout, { seconds: 0, nanos: 250_000_000 });
  assert.deepEqual(c.common_http_protocol_options, { idle_timeout: { seconds: 90 }, max_requests_per_connection: { value: 10 } });
});

test('outlierDetection -> outlier_detection with enforcement of the configured errors only', () => {
  const c = reviewsClusters({
    trafficPolicy: { outlierDetection: { consecutive5xxErrors: 3, consecutiveGatewayErrors: 2, interval: '2s', baseEjectionTime: '45s', maxEjectionPercent: 40 } },
  })[`outbound|9080||${RV}`];
  assert.deepEqual(c.outlier_detection, {
    consecutive_5xx: { value: 3 },
    enforcing_consecutive_5xx: { value: 100 },
    consecutive_gateway_failure: { value: 2 },
    enforcing_consecutive_gateway_failure: { value: 100 },
    interval: { seconds: 2 },
    base_ejection_time: { seconds: 45 },
    max_ejection_percent: { value: 40 },
  });
  const g = reviewsClusters({ trafficPolicy: { outlierDetection: { consecutiveGatewayErrors: 5 } } })[`outbound|9080||${RV}`];
  assert.deepEqual(g.outlier_detection.enforcing_consecutive_5xx, { value: 0 });
});

test('subsets get their own clusters; subset policy overrides the DR policy; portLevelSettings override per port', () => {
  const cs = reviewsClusters({
    trafficPolicy: {
      loadBalancer: { simple: 'RANDOM' },
      connectionPool: { tcp: { maxConnections: 5 } },
      portLevelSettings: [{ port: { number: 9080 }, loadBalancer: { simple: 'LEAST_REQUEST' } }],
    },
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } } },
      {
        name: 'v3',
        labels: { version: 'v3' },
        trafficPolicy: { portLevelSettings: [{ port: { number: 9080 }, connectionPool: { tcp: { maxConnections: 1 } } }] },
      },
    ],
  });
  assert.equal(cs[`outbound|9080||${RV}`].lb_policy, 'LEAST_REQUEST', 'port level beats the DR-wide policy');
  assert.equal(cs[`outbound|9080|v1|${RV}`].lb_policy, 'LEAST_REQUEST');
  assert.equal(cs[`outbound|9080|v2|${RV}`].lb_policy, 'ROUND_ROBIN', 'subset policy beats the DR');
  assert.equal(cs[`outbound|9080|v3|${RV}`].circuit_breakers.thresholds[0].max_connections.value, 1);
  assert.equal(cs[`outbound|9080|v1|${RV}`].circuit_breakers.thresholds[0].max_connections.value, 5);
  assert.equal(trellisMeta(cs[`outbound|9080|v2|${RV}`]).subset, 'v2');
});

test('a DestinationRule in the caller namespace beats one in the service namespace', () => {
  const b = bookinfo([
    res('DestinationRule', 'svc-ns', { host: 'reviews', trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } }),
    res('DestinationRule', 'caller-ns', { host: 'reviews.default.svc.cluster.local', trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } } }, { namespace: 'shop' }),
  ]);
  const caller = { ...b.productpage, namespace: 'shop' };
  const c = clusters(compileForProxy(b.input, trellisProxy(caller)))[`outbound|9080||${RV}`];
  assert.equal(c.lb_policy, 'LEAST_REQUEST');
  assert.equal(trellisMeta(c).destinationRule, 'shop/caller-ns');
});

test('proxyless clusters fall back to ROUND_ROBIN for policies gRPC does not implement', () => {
  const b = bookinfo([res('DestinationRule', 'reviews', { host: 'reviews', trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } } })]);
  const c = clusters(compileForProxy(b.input, PROXYLESS, { listeners: ['reviews'] }))[`outbound|9080||${RV}`];
  assert.equal(c.lb_policy, 'ROUND_ROBIN');
});

test('inbound clusters are STATIC to the app on 127.0.0.1', () => {
  const b = bookinfo();
  const c = clusters(compileForProxy(b.input, trellisProxy(b.productpage)))['inbound|9080|default/productpage-v1'];
  assert.equal(c.type, 'STATIC');
  assert.deepEqual(c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: '127.0.0.1', port_value: 9080 });
});
