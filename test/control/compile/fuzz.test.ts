// Property test: any combination of well-formed routing and policy fields compiles without throwing, and every field fits the proto.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileForProxy } from '../../../src/control/compile/index.js';
import { checkShape, setStrictPacking } from '../../../src/control/compile/pack.js';
import { messageType, packAny } from '../../../src/xds/protos.js';
import { PROXYLESS, bookinfo, res, trellisProxy } from './fixtures.js';

const sm = fc.oneof(fc.record({ exact: fc.string() }), fc.record({ prefix: fc.string() }), fc.record({ regex: fc.constant('.*') }), fc.constant({}));
const dur = fc.constantFrom('1s', '250ms', '1.5s', '1h', '0s', '2m30s', 'garbage');
const dest = fc.record(
  { host: fc.constantFrom('reviews', 'ratings', 'unknown.example.com', 'reviews.default.svc.cluster.local'), subset: fc.constantFrom('v1', 'v2', 'ghost'), port: fc.record({ number: fc.constantFrom(9080, 1) }) },
  { requiredKeys: ['host'] },
);
const vsRoute = fc.record(
  {
    match: fc.array(
      fc.record(
        { uri: sm, headers: fc.dictionary(fc.constantFrom('a', 'B', 'x-y'), sm), withoutHeaders: fc.dictionary(fc.constantFrom('c'), sm), method: sm, queryParams: fc.dictionary(fc.constantFrom('q'), sm), ignoreUriCase: fc.boolean(), port: fc.constantFrom(9080, 1), sourceLabels: fc.constantFrom({ app: 'productpage' }, { app: 'x' }) },
        { requiredKeys: [] },
      ),
      { maxLength: 3 },
    ),
    route: fc.array(fc.record({ destination: dest, weight: fc.integer({ min: 0, max: 100 }) }, { requiredKeys: ['destination'] }), { maxLength: 3 }),
    timeout: dur,
    retries: fc.record({ attempts: fc.integer({ min: 0, max: 5 }), perTryTimeout: dur, retryOn: fc.constantFrom('5xx', '503,reset', 'gateway-error,cancelled') }, { requiredKeys: [] }),
    fault: fc.record(
      {
        delay: fc.record({ fixedDelay: dur, percentage: fc.record({ value: fc.double({ min: 0, max: 100, noNaN: true }) }) }, { requiredKeys: [] }),
        abort: fc.record({ httpStatus: fc.integer({ min: 200, max: 599 }), grpcStatus: fc.constantFrom('UNAVAILABLE', 'bogus', 14), percentage: fc.record({ value: fc.double({ min: 0, max: 100, noNaN: true }) }) }, { requiredKeys: [] }),
      },
      { requiredKeys: [] },
    ),
    mirror: dest,
    mirrorPercentage: fc.record({ value: fc.double({ min: 0, max: 100, noNaN: true }) }),
    rewrite: fc.record({ uri: fc.constantFrom('/', '/x'), authority: fc.constantFrom('a') }, { requiredKeys: [] }),
    headers: fc.record({ request: fc.record({ set: fc.dictionary(fc.constantFrom('h'), fc.string()), remove: fc.array(fc.constantFrom('r')) }, { requiredKeys: [] }) }, { requiredKeys: [] }),
  },
  { requiredKeys: [] },
);
const policy = fc.record(
  {
    loadBalancer: fc.oneof(
      fc.record({ simple: fc.constantFrom('ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'PASSTHROUGH', 'LEAST_CONN') }),
      fc.record({ consistentHash: fc.oneof(fc.record({ httpHeaderName: fc.constant('x') }), fc.record({ useSourceIp: fc.constant(true) }), fc.record({ httpCookie: fc.record({ name: fc.constant('c'), ttl: dur }) })) }),
    ),
    connectionPool: fc.record({ tcp: fc.record({ maxConnections: fc.nat(1000), connectTimeout: dur }, { requiredKeys: [] }), http: fc.record({ http1MaxPendingRequests: fc.nat(1000), idleTimeout: dur, maxRequestsPerConnection: fc.nat(10) }, { requiredKeys: [] }) }, { requiredKeys: [] }),
    outlierDetection: fc.record({ consecutive5xxErrors: fc.nat(10), interval: dur, maxEjectionPercent: fc.nat(100) }, { requiredKeys: [] }),
  },
  { requiredKeys: [] },
);

test('random well-formed VirtualService + DestinationRule never throws and always fits the protos', () => {
  setStrictPacking(true);
  try {
    fc.assert(
      fc.property(fc.array(vsRoute, { maxLength: 4 }), policy, policy, (http, tp, sub) => {
        const b = bookinfo([
          res('VirtualService', 'reviews', { hosts: ['reviews'], http }),
          res('DestinationRule', 'reviews', { host: 'reviews', trafficPolicy: tp, subsets: [{ name: 'v1', labels: { version: 'v1' }, trafficPolicy: sub }] }),
        ]);
        for (const snap of [compileForProxy(b.input, trellisProxy(b.productpage)), compileForProxy(b.input, PROXYLESS, { listeners: ['reviews'] })]) {
          for (const [typeUrl, byName] of Object.entries(snap))
            for (const [name, v] of Object.entries(byName)) {
              checkShape(messageType(typeUrl), v, name);
              packAny(typeUrl, v);
            }
        }
      }),
      { numRuns: 40, seed: 42 },
    );
  } finally {
    setStrictPacking(false);
  }
  assert.ok(true);
});
