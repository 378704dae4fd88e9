// Benchmark worker: many simulated sidecars, each its own ADS stream on its own connection, subscribing like the proxy.
import * as grpc from '@grpc/grpc-js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE, messageType } from '../src/xds/protos.js';
import { jsonToStruct } from '../src/control/struct.js';

interface Parsed {
  version: string;
  typeUrl: string;
  nonce: string;
  /** Name of every resource (Cluster/Listener/RouteConfiguration/Secret field 1, CLA cluster_name field 1). */
  names: string[];
  /** CDS: the EDS service names to subscribe (type EDS clusters only). LDS: the RDS route names the listeners use. */
  follow: string[];
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

/** Iterates the fields of one message level (length-delimited as sub-buffers, varints as numbers). */
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

function sub(b: Buffer, field: number): Buffer[] {
  const out: Buffer[] = [];
  for (const [f, v] of fields(b)) if (f === field && Buffer.isBuffer(v)) out.push(v);
  return out;
}

const HCM_URL = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

/** Cluster: name=1, type=2 (EDS=3), eds_cluster_config=3 { service_name=2 }. Returns the EDS name or undefined. */
function edsNameOf(cluster: Buffer, name: string): string | undefined {
  let type = 0;
  let service = '';
  for (const [f, v] of fields(cluster)) {
    if (f === 2 && typeof v === 'number') type = v;
    else if (f === 3 && Buffer.isBuffer(v)) for (const s of sub(v, 2)) service = s.toString();
  }
  return type === 3 ? service || name : undefined;
}

/** Listener: filter_chains=3 { filters=3 { typed_config=4 Any{type_url=1,value=2} } }; HCM rds=3 { route_config_name=2 }. */
function rdsNamesOf(listener: Buffer): string[] {
  const out: string[] = [];
  for (const chain of sub(listener, 3))
    for (const filter of sub(chain, 3))
      for (const any of sub(filter, 4)) {
        let url = '';
        let value: Buffer | undefined;
        for (const [f, v] of fields(any)) {
          if (f === 1 && Buffer.isBuffer(v)) url = v.toString();
          else if (f === 2 && Buffer.isBuffer(v)) value = v;
        }
        if (url !== HCM_URL || !value) continue;
        for (const rds of sub(value, 3)) for (const n of sub(rds, 2)) out.push(n.toString());
      }
  return out;
}

/** DiscoveryResponse -> version, type, nonce, resource names, and what the proxy would subscribe next. */
function parseResponse(b: Buffer): Parsed {
  const out: Parsed = { version: '', typeUrl: '', nonce: '', names: [], follow: [] };
  const resources: Buffer[] = [];
  for (const [f, v] of fields(b)) {
    if (!Buffer.isBuffer(v)) continue;
    if (f === 1) out.version = v.toString();
    else if (f === 4) out.typeUrl = v.toString();
    else if (f === 5) out.nonce = v.toString();
    else if (f === 2) resources.push(v);
  }
  for (const any of resources) {
    const value = sub(any, 2)[0];
    if (!value) continue;
    let name = '';
    for (const [rf, rv] of fields(value)) {
      if (rf === 1 && Buffer.isBuffer(rv)) {
        name = rv.toString();
        break;
      }
    }
    out.names.push(name);
    if (out.typeUrl === CLUSTER_TYPE) {
      const eds = edsNameOf(value, name);
      if (eds) out.follow.push(eds);
    } else if (out.typeUrl === LISTENER_TYPE) out.follow.push(...rdsNamesOf(value));
  }
  return out;
}

const Req = messageType('envoy.service.discovery.v3.DiscoveryRequest');
const METHOD = {
  path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
  requestStream: true,
  responseStream: true,
  // Requests arrive pre-encoded (see requestBytes): the node is encoded once per sidecar, not on every ACK.
  requestSerialize: (b: Buffer) => b,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (b: Buffer) => b,
  responseDeserialize: parseResponse,
};
/** Length-delimited field `field` (a string or bytes). */
function lenField(field: number, v: string | Buffer): Buffer {
  const payload = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
  const head: number[] = [];
  for (let n = (field << 3) | 2, i = 0; i < 2; i++, n = payload.length) {
    while (n > 127) {
      head.push((n & 127) | 128);
      n = Math.floor(n / 128);
    }
    head.push(n);
  }
  return Buffer.concat([Buffer.from(head), payload]);
}

/**
 * A DiscoveryRequest as the proto would encode it (fields in number order), from the node's bytes encoded once:
 * encoding the node Struct on every ACK was a tenth of the client processes' CPU, which they share with the server.
 */
function requestBytes(node: Buffer, r: { version: string; names: string[]; typeUrl: string; nonce: string }): Buffer {
  const parts = [node, ...r.names.map((n) => lenField(3, n)), lenField(4, r.typeUrl)];
  if (r.version) parts.unshift(lenField(1, r.version));
  if (r.nonce) parts.push(lenField(5, r.nonce));
  return Buffer.concat(parts);
}

const Ctor = grpc.makeGenericClientConstructor({ StreamAggregatedResources: METHOD }, 'Ads');

interface Opts {
  addr: string;
  token: string;
  services: number;
  /** On-demand EDS (the proxy's default): the number of services this sidecar calls; 0 = subscribe every EDS cluster. */
  calls: number;
}

/** The EDS names a sidecar subscribes: all of them, or (on demand) those of the `calls` services it calls, spread by index. */
function edsSubscription(all: string[], i: number, calls: number): string[] {
  if (calls <= 0 || calls >= all.length) return all;
  const sorted = [...new Set(all)].sort();
  const out = new Set<string>();
  for (let j = 0; out.size < calls; j++) out.add(sorted[(i * 7 + j * 37 + Math.floor(j / sorted.length)) % sorted.length]);
  return [...out];
}

/** One simulated sidecar: workload wl-<i> of service svc-<i % services>, with the proxy's subscription flow. */
function startClient(o: Opts, i: number): void {
  // A local subchannel pool gives every sidecar its own HTTP/2 connection, as real proxies have.
  const client = new Ctor(o.addr, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.use_local_subchannel_pool': 1,
    ...(process.env.CLIENT_WINDOW ? { 'grpc-node.flow_control_window': Number(process.env.CLIENT_WINDOW) } : {}),
  });
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${o.token}`);
  const stream = (client as any).StreamAggregatedResources(md) as grpc.ClientDuplexStream<Buffer, Parsed>;
  const name = `wl-${i}`;
  const svc = `svc-${i % o.services}`;
  // Our proxy sends the node on every request; so does this client.
  const nodeObj = {
    id: `sidecar~127.0.0.1~${name}`,
    cluster: 'trellis',
    user_agent_name: 'trellis-proxy',
    metadata: jsonToStruct({
      TRELLIS_PROXY: '1',
      PROXY_KIND: 'sidecar',
      VERSION: 'bench',
      WORKLOADS: [
        {
          name,
          namespace: 'default',
          labels: { app: svc, version: 'v1' },
          serviceAccount: 'bench',
          service: svc,
          ports: [{ name: 'http', port: 8080, protocol: 'HTTP' }],
          address: '127.0.0.1',
          inboundPort: 20000 + i,
          outboundPort: 40000 + i,
        },
      ],
    }),
  };
  const node = Buffer.from(Req.encode(Req.fromObject({ node: nodeObj })).finish()); // field 2, tag included
  const state = new Map<string, { names: string[]; version: string; nonce: string }>();
  for (const t of [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE]) state.set(t, { names: t === SECRET_TYPE ? ['ROOTCA'] : [], version: '', nonce: '' });
  const send = (type: string) => {
    const s = state.get(type)!;
    stream.write(requestBytes(node, { version: s.version, names: s.names, typeUrl: type, nonce: s.nonce }));
  };
  const resubscribe = (type: string, names: string[]) => {
    const s = state.get(type)!;
    const sorted = [...new Set(names)].sort();
    if (sorted.join('\n') === s.names.join('\n')) return;
    s.names = sorted;
    send(type);
  };
  stream.on('data', (r: Parsed) => {
    const s = state.get(r.typeUrl);
    if (!s) return;
    s.nonce = r.nonce;
    s.version = r.version;
    send(r.typeUrl); // ACK
    if (r.typeUrl === CLUSTER_TYPE) resubscribe(ENDPOINT_TYPE, edsSubscription(r.follow, i, o.calls));
    else if (r.typeUrl === LISTENER_TYPE) resubscribe(ROUTE_TYPE, r.follow);
  });
  stream.on('error', (e) => process.send?.({ error: `${name}: ${e.message}` }));
  send(CLUSTER_TYPE);
  send(LISTENER_TYPE);
  send(SECRET_TYPE);
}

// argv: addr token from count services calls (0 = subscribe every EDS cluster)
const [addr, token, from, count, services, calls] = process.argv.slice(2);
let cpuAtGo: NodeJS.CpuUsage | undefined;
process.on('message', (m: { go?: boolean; cpu?: boolean; exit?: boolean }) => {
  if (m.go) {
    cpuAtGo = process.cpuUsage();
    for (let i = Number(from); i < Number(from) + Number(count); i++) startClient({ addr, token, services: Number(services), calls: Number(calls ?? 0) }, i);
  }
  if (m.cpu) {
    const u = process.cpuUsage(cpuAtGo);
    process.send?.({ cpuMs: Math.round((u.user + u.system) / 1000) });
  }
  if (m.exit) process.exit(0);
});
process.send?.({ ready: true });
