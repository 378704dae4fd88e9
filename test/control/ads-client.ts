// A raw grpc-js ADS client for tests: send DiscoveryRequests by hand, read DiscoveryResponses with timeouts.
import * as grpc from '@grpc/grpc-js';
import { adsPackageDefinition, unpackAny, type AnyMessage } from '../../src/xds/protos.js';
import { jsonToStruct } from '../../src/control/struct.js';

export interface Response {
  version_info: string;
  type_url: string;
  nonce: string;
  resources: AnyMessage[];
}

export class RawAdsClient {
  private client: grpc.Client;
  private stream: grpc.ClientDuplexStream<object, Response>;
  private queue: Response[] = [];
  private waiters: ((r: Response) => void)[] = [];
  error: grpc.ServiceError | undefined;
  private errorWaiters: ((e: grpc.ServiceError) => void)[] = [];

  constructor(
    addr: string,
    readonly node: { id: string; metadata?: Record<string, unknown> },
    token?: string,
  ) {
    const pkg = grpc.loadPackageDefinition(adsPackageDefinition()) as any;
    const Ctor = pkg.envoy.service.discovery.v3.AggregatedDiscoveryService;
    this.client = new Ctor(addr, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    if (token) md.set('authorization', `Bearer ${token}`);
    this.stream = (this.client as any).StreamAggregatedResources(md);
    this.stream.on('data', (r: Response) => {
      const w = this.waiters.shift();
      if (w) w(r);
      else this.queue.push(r);
    });
    this.stream.on('error', (e: grpc.ServiceError) => {
      this.error = e;
      for (const w of this.errorWaiters.splice(0)) w(e);
    });
  }

  private first = true;
  request(r: { type: string; names?: string[]; nonce?: string; version?: string; error?: string }): void {
    this.stream.write({
      node: this.first ? { id: this.node.id, metadata: jsonToStruct(this.node.metadata ?? {}) } : undefined,
      type_url: r.type,
      resource_names: r.names ?? [],
      response_nonce: r.nonce ?? '',
      version_info: r.version ?? '',
      error_detail: r.error ? { code: 3, message: r.error } : undefined,
    });
    this.first = false;
  }

  /** ACKs (or NACKs with `error`) a response. */
  ack(res: Response, names?: string[], error?: string): void {
    this.request({ type: res.type_url, names, nonce: res.nonce, version: error ? '' : res.version_info, error });
  }

  next(timeoutMs = 2000): Promise<Response> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no DiscoveryResponse within ${timeoutMs} ms`));
      }, timeoutMs);
      const w = (r: Response) => {
        clearTimeout(t);
        resolve(r);
      };
      this.waiters.push(w);
    });
  }

  /** Resolves true if nothing arrives within ms. */
  async none(ms: number): Promise<boolean> {
    try {
      await this.next(ms);
      return false;
    } catch {
      return true;
    }
  }

  failure(timeoutMs = 2000): Promise<grpc.ServiceError> {
    if (this.error) return Promise.resolve(this.error);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('stream did not fail')), timeoutMs);
      this.errorWaiters.push((e) => {
        clearTimeout(t);
        resolve(e);
      });
    });
  }

  close(): void {
    this.stream.cancel();
    this.client.close();
  }
}

/** Names of the resources in a response. */
export function names(res: Response): string[] {
  return res.resources.map((a) => {
    const o = unpackAny<{ name?: string; cluster_name?: string }>(a);
    return (o.name ?? o.cluster_name) as string;
  });
}

export async function startGrpc(add: (s: grpc.Server) => void): Promise<{ server: grpc.Server; addr: string }> {
  const server = new grpc.Server();
  add(server);
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  return { server, addr: `127.0.0.1:${port}` };
}
