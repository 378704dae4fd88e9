import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointsFromLoadAssignment } from '../../../src/proxy/balance/endpoints.js';
import { ENDPOINT_TYPE, packAny, unpackAny } from '../../../src/xds/protos.js';

const sv = (s: string) => ({ stringValue: s });

test('endpointsFromLoadAssignment decodes a packed ClusterLoadAssignment', () => {
  const cla = {
    cluster_name: 'outbound|9080||reviews.default.svc.cluster.local',
    endpoints: [
      {
        locality: { region: 'eu', zone: 'eu-1', sub_zone: 'rack-1' },
        load_balancing_weight: { value: 1 },
        lb_endpoints: [
          {
            endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 15006 } }, hostname: 'reviews-v1' },
            health_status: 'HEALTHY',
            metadata: {
              filter_metadata: {
                trellis: {
                  fields: {
                    workload: sv('default/reviews-v1'),
                    identity: sv('spiffe://cluster.local/ns/default/sa/reviews'),
                    labels: { structValue: { fields: { app: sv('reviews'), version: sv('v1') } } },
                    targetPort: { numberValue: 9080 },
                    tls: sv('mutual'),
                  },
                },
              },
            },
          },
          { endpoint: { address: { socket_address: { address: '10.0.0.2', port_value: 15006 } } }, health_status: 'DRAINING', load_balancing_weight: { value: 3 } },
          { endpoint: { address: { socket_address: { address: '10.0.0.3', port_value: 15006 } } }, health_status: 'UNHEALTHY' },
          { endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 15006 } } } }, // duplicate
          { endpoint: { address: { pipe: { path: '/tmp/x' } } } }, // not an IP endpoint
        ],
      },
      { lb_endpoints: [{ endpoint: { address: { socket_address: { address: '::1', port_value: 80 } } } }] },
    ],
  };
  const eps = endpointsFromLoadAssignment(unpackAny(packAny(ENDPOINT_TYPE, cla)));
  assert.deepEqual(
    eps.map((e) => [e.id, e.weight, e.healthy]),
    [
      ['10.0.0.1:15006', 1, true],
      ['10.0.0.2:15006', 3, false],
      ['10.0.0.3:15006', 1, false],
      ['[::1]:80', 1, true],
    ],
  );
  assert.deepEqual(eps[0], {
    id: '10.0.0.1:15006',
    address: '10.0.0.1',
    port: 15006,
    weight: 1,
    healthy: true,
    hostname: 'reviews-v1',
    locality: { region: 'eu', zone: 'eu-1', subZone: 'rack-1' },
    metadata: {
      workload: 'default/reviews-v1',
      identity: 'spiffe://cluster.local/ns/default/sa/reviews',
      labels: { app: 'reviews', version: 'v1' },
      targetPort: 9080,
      tls: 'mutual',
    },
  });
  assert.deepEqual(eps[3].locality, {});
});

test('metadata given as a plain object is kept', () => {
  const eps = endpointsFromLoadAssignment({
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '1.2.3.4', port_value: 1 } } }, metadata: { filter_metadata: { trellis: { tls: 'none' } } } }] }],
  });
  assert.deepEqual(eps[0].metadata, { tls: 'none' });
});

test('junk yields no endpoints rather than an exception', () => {
  assert.deepEqual(endpointsFromLoadAssignment({}), []);
  assert.deepEqual(endpointsFromLoadAssignment({ endpoints: [null, 1, { lb_endpoints: [{ endpoint: { address: { socket_address: { address: '1.1.1.1', port_value: 0 } } } }] }] }), []);
});
