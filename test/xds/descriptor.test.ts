// The generated xDS descriptors: in sync with the .proto sources, and encoding exactly as parsing the .proto files did.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { generate, parseSources, ROOT_TYPES } from '../../scripts/gen-xds-descriptor.js';
import {
  adsPackageDefinition,
  messageType,
  packAny,
  unpackAny,
  CLUSTER_TYPE,
  HCM_TYPE,
  LISTENER_TYPE,
  ROUTE_TYPE,
  SHORT_TYPE_NAMES,
  XDS_TYPES,
} from '../../src/xds/protos.js';
import * as P from '../../src/xds/protos.js';

test('the committed descriptors match what scripts/gen-xds-descriptor.ts generates (rerun it after changing the sources)', () => {
  for (const { path, text } of generate()) {
    assert.ok(readFileSync(path, 'utf8') === text, `${path.split('/').slice(-2).join('/')} is stale: node --import tsx scripts/gen-xds-descriptor.ts`);
  }
});

test('every type URL constant and root type resolves from the descriptor', () => {
  const urls = Object.entries(P).filter(([k, v]) => k.endsWith('_TYPE') && typeof v === 'string').map(([, v]) => v as string);
  assert.ok(urls.length >= 17);
  for (const u of [...urls, ...XDS_TYPES, ...Object.keys(SHORT_TYPE_NAMES)]) assert.doesNotThrow(() => messageType(u), u);
  for (const n of ROOT_TYPES.slice(1)) assert.doesNotThrow(() => messageType(n), n);
  assert.throws(() => messageType('type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz'), /no such type/);
});

const samples: [string, object][] = [
  [
    LISTENER_TYPE,
    {
      name: 'l',
      address: { socket_address: { address: '0.0.0.0', port_value: 15001 } },
      filter_chains: [
        {
          filter_chain_match: { destination_port: { value: 80 }, server_names: ['a', 'b'], application_protocols: ['h2'] },
          filters: [{ name: 'hcm', typed_config: packAny(HCM_TYPE, { stat_prefix: 's', rds: { route_config_name: 'r' }, http_filters: [{ name: 'router' }] }) }],
        },
      ],
    },
  ],
  [
    ROUTE_TYPE,
    {
      name: 'r',
      virtual_hosts: [
        {
          name: 'v',
          domains: ['*'],
          routes: [{ match: { prefix: '/', headers: [{ name: 'x', string_match: { exact: 'y' } }] }, route: { weighted_clusters: { clusters: [{ name: 'c', weight: { value: 3 } }] }, timeout: { seconds: '2', nanos: 5 } } }],
        },
      ],
    },
  ],
  [CLUSTER_TYPE, { name: 'c', type: 'EDS', lb_policy: 'LEAST_REQUEST', connect_timeout: { seconds: '1' }, circuit_breakers: { thresholds: [{ max_connections: { value: 7 } }] } }],
];

test('encoding with the descriptor is byte-identical to encoding with the parsed .proto files', () => {
  const parsed = parseSources();
  for (const [url, obj] of samples) {
    const name = url.slice('type.googleapis.com/'.length);
    const a = packAny(url, obj).value;
    const t = parsed.lookupType(name);
    const b = t.encode(t.fromObject(obj)).finish();
    assert.deepEqual(Buffer.from(a), Buffer.from(b), name);
    assert.deepEqual(unpackAny({ type_url: url, value: a }), t.toObject(t.decode(b), P.TO_OBJECT_OPTIONS));
  }
});

test('the ADS package definition serves the aggregated discovery stream with snake_case messages', () => {
  const pkg = grpc.loadPackageDefinition(adsPackageDefinition()) as unknown as {
    envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } } } };
  };
  const svc = pkg.envoy.service.discovery.v3.AggregatedDiscoveryService.service;
  const m = svc.StreamAggregatedResources;
  assert.equal(m.path, '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources');
  assert.ok(m.requestStream && m.responseStream);
  const req = { version_info: '3', node: { id: 'n' }, resource_names: ['a'], type_url: LISTENER_TYPE, response_nonce: 'x' };
  const back = m.requestDeserialize(m.requestSerialize(req)) as Record<string, unknown>;
  assert.equal(back.type_url, LISTENER_TYPE);
  assert.deepEqual(back.resource_names, ['a']);
  assert.equal((back.node as Record<string, unknown>).id, 'n');
});
