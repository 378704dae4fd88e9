// Benchmark worker: many lightweight ADS clients on raw grpc-js streams; responses parsed just enough to ACK.
import * as grpc from '@grpc/grpc-js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, messageType } from '../src/xds/protos.js';
import { jsonToStruct } from '../src/control/struct.js';

interface Parsed {
  version: string;
  typeUrl: string;
  nonce: string;
  names: string[];
}

/** Reads a varint at pos; returns [value, nextPos]. */
function varint(b: Buffer, pos: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (;;) {
    const byte = b[pos++];
    v += (byte & 127) * mul;
    if (byte < 128) return [v, pos];
    mul *= 128;
  }
}

/** Iterates length-delimited and varint fields of one message level. */
function* fields(b: Buffer): Generator<[number, Buffer | number]> {
  let pos = 0;
  while (pos < b.length) {
    let key: number;
    [key, pos] = varint(b, pos);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 2) {
      let len: number;
      [len, pos] = varint(b, pos);
      yield [field, b.subarray(pos, pos + len)];
      pos += len;
    } else if (wire === 0) {
      let v: number;
      [v, pos] = varint(b, pos);
      yield [field, v];
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw new Error(`wire type ${wire}`);
  }
}

/** DiscoveryResponse -> version, type, nonce and the resource names (field 1 of every resource type served here). */
function parseResponse(b: Buffer): Parsed {
  const out: Parsed = { version: '', typeUrl: '', nonce: '', names: [] };
  for (const [f, v] of fields(b)) {
    if (!Buffer.isBuffer(v)) continue;
    if (f === 1) out.version = v.toString();
    else if (f === 4) out.typeUrl = v.toString();
    else if (f === 5) out.nonce = v.toString();
    else if (f === 2) {
      for (const [af, av] of fields(v)) {
        if (af !== 2 || !Buffer.isBuffer(av)) continue;
        for (const [rf, rv] of fields(av)) {
          if (rf === 1 && Buffer.isBuffer(rv)) {
            out.names.push(rv.toString());
            break;
          }
        }
      }
    }
  }
  return out;
}

const Req = messageType('envoy.service.discovery.v3.DiscoveryRequest');
const METHOD = {
  path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
  requestStream: true,
  responseStream: true,
  requestSerialize: (o: object) => Buffer.from(Req.encode(Req.fromObject(o)).finish()),
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: parseResponse,
};
const Ctor = grpc.makeGenericClientConstructor({ StreamAggregatedResources: METHOD }, 'Ads');

function startClient(addr: string, token: string, i: number): void {
  const client = new Ctor(addr, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  const stream = (client as any).StreamAggregatedResources(md) as grpc.ClientDuplexStream<object, Parsed>;
  const name = `client-${i}`;
  const node = {
    id: `bench~127.0.0.1~${name}`,
    metadata: jsonToStruct({
      TRELLIS_PROXY: '1',
      PROXY_KIND: 'sidecar',
      WORKLOADS: [{ name, namespace: 'default', serviceAccount: 'bench', service: `svc-${i % 50}`, ports: [{ name: 'http', port: 8080, protocol: 'HTTP' }], address: '127.0.0.1', inboundPort: 20000 + i, outboundPort: 30000 + i }],
    }),
  };
  let first = true;
  const send = (type: string, names: string[], nonce = '', version = '') => {
    stream.write({ node: first ? node : undefined, type_url: type, resource_names: names, response_nonce: nonce, version_info: version });
    first = false;
  };
  let edsSubscribed = false;
  let rdsSubscribed = false;
  stream.on('data', (r: Parsed) => {
    if (r.typeUrl === CLUSTER_TYPE) {
      send(CLUSTER_TYPE, [], r.nonce, r.version);
      const eds = r.names.filter((n) => n.startsWith('outbound|'));
      if (!edsSubscribed) {
        edsSubscribed = true;
        send(ENDPOINT_TYPE, eds);
      }
    } else if (r.typeUrl === LISTENER_TYPE) {
      send(LISTENER_TYPE, [], r.nonce, r.version);
      if (!rdsSubscribed) {
        rdsSubscribed = true;
        send(ROUTE_TYPE, [`outbound|default/${name}`]);
      }
    } else {
      // EDS/RDS: ACK with the same names we asked for
      send(r.typeUrl, r.typeUrl === ROUTE_TYPE ? [`outbound|default/${name}`] : lastEds, r.nonce, r.version);
    }
    if (r.typeUrl === CLUSTER_TYPE) lastEds = r.names.filter((n) => n.startsWith('outbound|'));
  });
  let lastEds: string[] = [];
  stream.on('error', (e) => process.send?.({ error: `${name}: ${e.message}` }));
  send(CLUSTER_TYPE, []);
  send(LISTENER_TYPE, []);
}

// argv: addr token from count
const [addr, token, from, count] = process.argv.slice(2);
process.on('message', (m: { go?: boolean; exit?: boolean }) => {
  if (m.go) for (let i = Number(from); i < Number(from) + Number(count); i++) startClient(addr, token, i);
  if (m.exit) process.exit(0);
});
process.send?.({ ready: true });
