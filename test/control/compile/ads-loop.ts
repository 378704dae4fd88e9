// A minimal state-of-the-world ADS server for tests: serves a snapshot function's output to xDS clients.
import * as grpc from '@grpc/grpc-js';
import { LISTENER_TYPE, adsPackageDefinition, packAny } from '../../../src/xds/protos.js';
import type { ProxyDescriptor, XdsSnapshot } from '../../../src/control/model.js';

export type SnapshotFor = (proxy: ProxyDescriptor, subscriptions: { listeners?: string[] }) => XdsSnapshot;

interface TypeState {
  names: string[];
  nonce?: string;
  sentVersion?: number;
  lastError?: string;
}

export interface AdsLoop {
  port: number;
  /** Re-compiles and pushes to every connected client. */
  update(): void;
  /** NACK messages received (a healthy run has none). */
  nacks: string[];
  close(): Promise<void>;
}

export async function startAdsLoop(snapshotFor: SnapshotFor): Promise<AdsLoop> {
  const pkg = grpc.loadPackageDefinition(adsPackageDefinition()) as any;
  const service = pkg.envoy.service.discovery.v3.AggregatedDiscoveryService.service;
  const server = new grpc.Server();
  const streams = new Set<() => void>();
  const nacks: string[] = [];
  let version = 1;
  let nonceCounter = 0;

  server.addService(service, {
    StreamAggregatedResources(call: grpc.ServerDuplexStream<any, any>) {
      let node: { id: string } | undefined;
      const types = new Map<string, TypeState>();
      const send = (typeUrl: string, st: TypeState) => {
        const proxy: ProxyDescriptor = { id: node?.id ?? 'unknown', kind: 'proxyless', workloads: [] };
        const snap = snapshotFor(proxy, { listeners: types.get(LISTENER_TYPE)?.names ?? [] });
        const byName = snap[typeUrl] ?? {};
        const names = st.names.length > 0 ? st.names.filter((n) => byName[n]) : Object.keys(byName);
        st.nonce = String(++nonceCounter);
        st.sentVersion = version;
        call.write({
          version_info: String(version),
          type_url: typeUrl,
          nonce: st.nonce,
          resources: names.map((n) => packAny(typeUrl, byName[n])),
        });
      };
      const pushAll = () => {
        for (const [t, st] of types) if (st.sentVersion !== version) send(t, st);
      };
      streams.add(pushAll);
      call.on('data', (req: any) => {
        node ??= req.node;
        const typeUrl: string = req.type_url;
        const st = types.get(typeUrl) ?? { names: [] };
        types.set(typeUrl, st);
        if (req.response_nonce && req.response_nonce !== st.nonce) return; // stale
        if (req.error_detail?.message) nacks.push(`${typeUrl}: ${req.error_detail.message}`);
        const names: string[] = [...(req.resource_names ?? [])].sort();
        const changed = JSON.stringify(names) !== JSON.stringify(st.names);
        st.names = names;
        if (changed || st.sentVersion !== version) send(typeUrl, st);
      });
      call.on('end', () => {
        streams.delete(pushAll);
        call.end();
      });
      call.on('error', () => streams.delete(pushAll));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    nacks,
    update() {
      version++;
      for (const push of streams) push();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}
