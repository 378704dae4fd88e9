// A tiny state-of-the-world ADS server for tests: serves a settable snapshot, records every request it gets.
import * as grpc from '@grpc/grpc-js';
import { adsPackageDefinition, packAny, type AnyMessage } from '../../../src/xds/protos.js';

type Obj = Record<string, any>;

export class FakeAds {
  readonly requests: Obj[] = [];
  readonly metadata: grpc.Metadata[] = [];
  private server?: grpc.Server;
  private streams = new Set<grpc.ServerDuplexStream<Obj, Obj>>();
  private snapshot = new Map<string, { version: string; resources: { name: string; any: AnyMessage }[] }>();
  private nonce = 0;
  port = 0;

  /** Replaces a type's resources (decoded objects) and pushes them to connected streams. */
  set(typeUrl: string, version: string, resources: Obj[], push = true): void {
    this.snapshot.set(typeUrl, {
      version,
      resources: resources.map((r) => ({ name: r.name ?? r.cluster_name, any: packAny(typeUrl, r) })),
    });
    // Only to streams that subscribed the type, as a real server does (EDS is subscribed on demand).
    if (push) for (const s of this.streams) if ((s as any).__names?.[typeUrl]) this.respond(s, typeUrl, (s as any).__names[typeUrl]);
  }

  /** Sends raw Anys (e.g. undecodable bytes) for a type. */
  pushRaw(typeUrl: string, version: string, anys: AnyMessage[]): void {
    for (const s of this.streams) s.write({ version_info: version, type_url: typeUrl, resources: anys, nonce: String(++this.nonce) });
  }

  private respond(s: grpc.ServerDuplexStream<Obj, Obj>, typeUrl: string, names: string[] | undefined): void {
    const snap = this.snapshot.get(typeUrl);
    if (!snap) return;
    const wanted = names && names.length ? new Set(names) : undefined;
    const resources = snap.resources.filter((r) => !wanted || wanted.has(r.name)).map((r) => r.any);
    s.write({ version_info: snap.version, type_url: typeUrl, resources, nonce: String(++this.nonce) });
  }

  /** `extra` adds other services to the same server (e.g. the CA, as the control plane does). */
  async start(port = 0, extra?: (server: grpc.Server) => void): Promise<number> {
    const pkg = grpc.loadPackageDefinition(adsPackageDefinition()) as Obj;
    const svc = pkg.envoy.service.discovery.v3.AggregatedDiscoveryService.service;
    const server = new grpc.Server();
    server.addService(svc, {
      StreamAggregatedResources: (s: grpc.ServerDuplexStream<Obj, Obj>) => {
        this.streams.add(s);
        this.metadata.push(s.metadata);
        const names: Record<string, string[]> = {};
        (s as any).__names = names;
        s.on('data', (req: Obj) => {
          this.requests.push(req);
          const prev = names[req.type_url];
          const cur = [...(req.resource_names ?? [])].sort();
          names[req.type_url] = cur;
          // Initial request or a changed subscription gets a response; a plain ACK/NACK does not.
          if (!req.response_nonce || (prev && prev.join() !== cur.join())) this.respond(s, req.type_url, cur);
        });
        s.on('end', () => s.end());
        s.on('error', () => {});
        s.on('close', () => this.streams.delete(s));
      },
    });
    extra?.(server);
    this.server = server;
    this.port = await new Promise<number>((r, j) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? j(e) : r(p))));
    return this.port;
  }

  stop(): void {
    for (const s of this.streams) s.destroy();
    this.streams.clear();
    this.server?.forceShutdown();
    this.server = undefined;
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}
