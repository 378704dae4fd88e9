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

/** Reads a varint at pos; returns the value (and leaves the next position in `at.pos`). */
const at = { pos: 0 };
function varint(b: Buffer, pos: number): number {
  let v = 0;
  let mul = 1;
  for (;;) {
    const byte = b[pos++];
    v += (byte & 127) * mul;
    if (byte < 128) {
      at.pos = pos;
      return v;
    }
    mul *= 128;
  }
}

/**
 * Calls `each(field, varint, start, end)` for every field of the message in b[start, end): `varint` for varint
 * fields, `start`/`end` for length-delimited ones (-1 otherwise). Stops when `each` returns true. Positions instead
 * of sub-buffers and tuples: the workers share the cores with the server, and allocating per field made a quarter of
 * their CPU garbage collection.
 */
function walk(b: Buffer, start: number, end: number, each: (field: number, varint: number, s: number, e: number) => boolean | void): void {
  let pos = start;
  while (pos < end) {
    const key = varint(b, pos);
    pos = at.pos;
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 2) {
      const len = varint(b, pos);
      pos = at.pos;
      if (each(field, -1, pos, pos + len)) return;
      pos += len;
    } else if (wire === 0) {
      const v = varint(b, pos);
      pos = at.pos;
      if (each(field, v, -1, -1)) return;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw new Error(`wire type ${wire}`);
  }
}

const HCM_URL = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

/** Cluster: name=1, type=2 (EDS=3), eds_cluster_config=3 { service_name=2 }. Returns the EDS name or undefined. */
function edsNameOf(b: Buffer, start: number, end: number, name: string): string | undefined {
  let type = 0;
  let service = '';
  walk(b, start, end, (f, v, s, e) => {
    if (f === 2 && v >= 0) type = v;
    else if (f === 3 && s >= 0) walk(b, s, e, (f2, _v, s2, e2) => void (f2 === 2 && s2 >= 0 && (service = b.toString('utf8', s2, e2))));
  });
  return type === 3 ? service || name : undefined;
}

/** Listener: filter_chains=3 { filters=3 { typed_config=4 Any{type_url=1,value=2} } }; HCM rds=3 { route_config_name=2 }. */
function rdsNamesOf(b: Buffer, start: number, end: number, out: string[]): void {
  const fieldsOf = (s: number, e: number, field: number, then: (s: number, e: number) => void) =>
    walk(b, s, e, (f, _v, s2, e2) => void (f === field && s2 >= 0 && then(s2, e2)));
  fieldsOf(start, end, 3, (cs, ce) =>
    fieldsOf(cs, ce, 3, (fs, fe) =>
      fieldsOf(fs, fe, 4, (as, ae) => {
        let url = '';
        let vs = -1;
        let ve = -1;
        walk(b, as, ae, (f, _v, s, e) => {
          if (f === 1 && s >= 0) url = b.toString('utf8', s, e);
          else if (f === 2 && s >= 0) [vs, ve] = [s, e];
        });
        if (url === HCM_URL && vs >= 0) fieldsOf(vs, ve, 3, (rs, re) => fieldsOf(rs, re, 2, (ns, ne) => out.push(b.toString('utf8', ns, ne))));
      }),
    ),
  );
}

/** DiscoveryResponse -> version, type, nonce, resource names, and what the proxy would subscribe next. */
function parseResponse(b: Buffer): Parsed {
  const out: Parsed = { version: '', typeUrl: '', nonce: '', names: [], follow: [] };
  const resources: number[] = []; // start, end of each resources[] Any
  walk(b, 0, b.length, (f, _v, s, e) => {
    if (s < 0) return;
    if (f === 1) out.version = b.toString('utf8', s, e);
    else if (f === 4) out.typeUrl = b.toString('utf8', s, e);
    else if (f === 5) out.nonce = b.toString('utf8', s, e);
    else if (f === 2) resources.push(s, e);
  });
  for (let i = 0; i < resources.length; i += 2) {
    let vs = -1;
    let ve = -1;
    walk(b, resources[i], resources[i + 1], (f, _v, s, e) => void (f === 2 && s >= 0 && ([vs, ve] = [s, e])));
    if (vs < 0) continue;
    let name = '';
    walk(b, vs, ve, (f, _v, s, e) => {
      if (f !== 1 || s < 0) return false;
      name = b.toString('utf8', s, e);
      return true;
    });
    out.names.push(name);
    if (out.typeUrl === CLUSTER_TYPE) {
      const eds = edsNameOf(b, vs, ve, name);
      if (eds) out.follow.push(eds);
    } else if (out.typeUrl === LISTENER_TYPE) rdsNamesOf(b, vs, ve, out.follow);
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
