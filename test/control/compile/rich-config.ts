// A config using every routing, policy and security feature the compiler supports (for round-trip and golden tests).
import type { Resource } from '../../../src/api/types.js';
import { res } from './fixtures.js';

export function richConfig(): Resource[] {
  return [
    res('VirtualService', 'reviews', {
      hosts: ['reviews'],
      http: [
        {
          name: 'jason',
          match: [
            { headers: { 'end-user': { exact: 'jason' } }, uri: { prefix: '/api' }, ignoreUriCase: true },
            { queryParams: { debug: { regex: '1|true' } }, withoutHeaders: { 'x-skip': {} }, method: { exact: 'GET' } },
          ],
          route: [{ destination: { host: 'reviews', subset: 'v2' }, headers: { response: { set: { 'x-v': 'v2' } } } }],
          timeout: '1.5s',
          retries: { attempts: 3, perTryTimeout: '500ms', retryOn: '5xx,503,connect-failure' },
          headers: { request: { set: { 'x-a': '1' }, add: { 'x-b': '2' }, remove: ['x-c'] } },
        },
        { match: [{ sourceLabels: { app: 'productpage' } }], route: [{ destination: { host: 'reviews', subset: 'v3' } }] },
        { match: [{ uri: { exact: '/old' } }], redirect: { uri: '/new', redirectCode: 302 } },
        { match: [{ uri: { exact: '/gone' } }], directResponse: { status: 410, body: { string: 'gone' } } },
        {
          match: [{ uri: { regex: '/v[0-9]+/.*' } }],
          route: [{ destination: { host: 'ratings' } }],
          rewrite: { uri: '/', authority: 'ratings.internal' },
          fault: { abort: { httpStatus: 503, percentage: { value: 12.5 } } },
        },
        {
          route: [
            { destination: { host: 'reviews', subset: 'v1' }, weight: 80 },
            { destination: { host: 'reviews', subset: 'v3' }, weight: 20, headers: { request: { add: { 'x-canary': '1' } } } },
          ],
          fault: { delay: { fixedDelay: '2s', percentage: { value: 0.1 } }, abort: { grpcStatus: 'UNAVAILABLE' } },
          mirror: { host: 'ratings' },
          mirrorPercentage: { value: 5 },
        },
      ],
    }),
    res('DestinationRule', 'reviews', {
      host: 'reviews.default.svc.cluster.local',
      trafficPolicy: {
        loadBalancer: { simple: 'LEAST_REQUEST', localityLbSetting: { enabled: true } },
        connectionPool: {
          tcp: { maxConnections: 100, connectTimeout: '3s' },
          http: { http1MaxPendingRequests: 10, http2MaxRequests: 200, maxRequestsPerConnection: 5, maxRetries: 2, idleTimeout: '30s' },
        },
        outlierDetection: { consecutive5xxErrors: 5, consecutiveGatewayErrors: 2, interval: '5s', baseEjectionTime: '1m', maxEjectionPercent: 50 },
      },
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { loadBalancer: { consistentHash: { httpCookie: { name: 'u', ttl: '10s' } } } } },
        { name: 'v3', labels: { version: 'v3' } },
      ],
    }),
    res('DestinationRule', 'ratings', {
      host: 'ratings',
      trafficPolicy: {
        loadBalancer: { simple: 'RANDOM' },
        portLevelSettings: [{ port: { number: 9080 }, loadBalancer: { consistentHash: { useSourceIp: true, ringHash: { minimumRingSize: 2048 } } } }],
      },
    }),
    res('PeerAuthentication', 'mesh', { mtls: { mode: 'STRICT' } }, { namespace: 'istio-system', apiVersion: 'security.istio.io/v1' }),
    res(
      'PeerAuthentication',
      'productpage',
      { selector: { matchLabels: { app: 'productpage' } }, mtls: { mode: 'STRICT' }, portLevelMtls: { '9080': { mode: 'PERMISSIVE' } } },
      { apiVersion: 'security.istio.io/v1' },
    ),
    res(
      'AuthorizationPolicy',
      'productpage-viewer',
      { selector: { matchLabels: { app: 'productpage' } }, action: 'ALLOW', rules: [{ to: [{ operation: { methods: ['GET'] } }] }] },
      { apiVersion: 'security.istio.io/v1' },
    ),
    res(
      'Workload',
      'productpage-v1',
      { service: 'productpage', upstreams: [{ service: 'db', localPort: 15432 }] },
      { apiVersion: 'trellis.dev/v1alpha1' },
    ),
  ];
}
