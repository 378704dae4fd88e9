// ADS client (state of the world): subscribes CDS, EDS, LDS, RDS, SDS; ACKs what compiles, NACKs what does not,
// keeps the last good config, and reconnects with backoff and jitter while the control plane is away.
import { EventEmitter } from 'node:events';
import { GrpcChannel, type GrpcCallError, type GrpcStream } from '../xds/grpc-h2-client.js';
import { ADS_METHOD_PATH, decodeDiscoveryResponse, encodeDiscoveryRequest } from '../xds/ads-codec.js';
import {
  unpackAny,
  CLUSTER_TYPE,
  ENDPOINT_TYPE,
  LISTENER_TYPE,
  ROUTE_TYPE,
  SECRET_TYPE,
  SHORT_TYPE_NAMES,
  type AnyMessage,
} from '../xds/protos.js';
import type { RawResources, StateStore } from './state.js';
import { objectToStruct } from './config/struct.js';

type Obj = Record<string, any>;
type Kind = keyof RawResources;

const KIND: Record<string, Kind> = {
  [LISTENER_TYPE]: 'listeners',
  [ROUTE_TYPE]: 'routes',
  [CLUSTER_TYPE]: 'clusters',
  [ENDPOINT_TYPE]: 'endpoints',
  [SECRET_TYPE]: 'secrets',
};
/** LDS and CDS are full state (a missing name is a deletion); the others carry the requested names. */
const FULL_STATE = new Set<string>([LISTENER_TYPE, CLUSTER_TYPE]);
const RESOURCE_WRAPPER = 'type.googleapis.com/envoy.service.discovery.v3.Resource';

export interface TypeStatus {
  version: string;
  nonce: string;
  names: string[];
  state: 'PENDING' | 'SYNCED' | 'NACKED';
  lastError?: string;
  updatedAt?: string;
}

export interface XdsClientOptions {
  address: string;
  token: string;
  /** Further join tokens (node mode: one per hosted service account); sent as x-trellis-token metadata. */
  extraTokens?: string[];
  node: { id: string; metadata: Record<string, unknown> };
  store: StateStore;
  log?: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;
  /** Backoff: first delay and cap (ms). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /**
   * EDS subscription. 'on-demand' (default): a cluster's endpoints are subscribed when the data path first routes to
   * it, plus the `warm` names (EDS service or cluster names) from the start. 'all': every EDS cluster CDS delivers.
   * The environment variable TRELLIS_EDS=all selects 'all' when this is not given.
   */
  eds?: 'on-demand' | 'all';
  warm?: string[];
}

/** Emits 'connected', 'disconnected', 'ack' (typeUrl), 'nack' (typeUrl, message). */
export class XdsClient extends EventEmitter {
  private channel: GrpcChannel;
  private call?: GrpcStream;
  private attempts = 0;
  private timer?: NodeJS.Timeout;
  private closed = false;
  connected = false;
  raw: RawResources;
  readonly status = new Map<string, TypeStatus>();
  private readonly log: NonNullable<XdsClientOptions['log']>;
  /** Subscribe every EDS cluster's endpoints (else on demand). */
  private readonly edsAll: boolean;
  private readonly onDemand = () => this.resubscribe(ENDPOINT_TYPE, this.edsSubscription());

  constructor(private readonly opts: XdsClientOptions) {
    super();
    this.log = opts.log ?? (() => {});
    this.channel = new GrpcChannel(opts.address, { keepaliveMs: 30_000, keepaliveTimeoutMs: 10_000, maxMessageBytes: 64 * 1024 * 1024 });
    this.raw = opts.store.current.raw;
    this.edsAll = (opts.eds ?? (process.env.TRELLIS_EDS === 'all' ? 'all' : 'on-demand')) === 'all';
    if (!this.edsAll) {
      opts.store.setOnDemand(opts.warm ?? []);
      opts.store.on('demand', this.onDemand);
    }
    for (const t of [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE]) {
      this.status.set(t, { version: '', nonce: '', names: t === SECRET_TYPE ? ['ROOTCA'] : [], state: 'PENDING' });
    }
  }

  start(): void {
    this.connect();
  }

  close(): void {
    this.closed = true;
    this.opts.store.off('demand', this.onDemand);
    clearTimeout(this.timer);
    this.call?.cancel();
    this.channel.close();
    this.setConnected(false);
  }

  private setConnected(v: boolean): void {
    if (this.connected === v) return;
    this.connected = v;
    this.emit(v ? 'connected' : 'disconnected');
  }

  private connect(): void {
    if (this.closed) return;
    const extra = (this.opts.extraTokens ?? []).filter((t) => t !== this.opts.token);
    // One authorization value; further tokens travel as x-trellis-token.
    const typed = this.channel.bidi(ADS_METHOD_PATH, {
      authorization: `Bearer ${this.opts.token}`,
      ...(extra.length ? { 'x-trellis-token': extra } : {}),
    });
    this.call = typed;
    let gotResponse = false;
    // Response headers mean the control plane took the stream.
    typed.on('headers', () => {
      if (this.call === typed) this.setConnected(true);
    });
    typed.on('message', (buf: Buffer) => {
      if (this.call !== typed) return;
      let resp: Obj;
      try {
        resp = decodeDiscoveryResponse(buf);
      } catch (err) {
        this.log('error', `xDS: cannot decode a response: ${(err as Error).message}`);
        return;
      }
      if (!gotResponse) {
        gotResponse = true;
        this.attempts = 0;
        this.setConnected(true);
      }
      try {
        this.onResponse(resp);
      } catch (err) {
        this.log('error', `xDS: cannot handle response: ${(err as Error).message}`);
      }
    });
    const onGone = (err?: GrpcCallError) => {
      if (this.call !== typed) return;
      this.call = undefined;
      this.setConnected(false);
      if (this.closed) return;
      for (const s of this.status.values()) s.nonce = '';
      const delay = this.backoff();
      this.log(
        this.attempts > 1 ? 'warn' : 'info',
        `xDS: control plane ${this.opts.address} ${err ? `unavailable (${err.details || err.message})` : 'closed the stream'}; keeping last good config, retrying in ${Math.round(delay)}ms`,
      );
      this.timer = setTimeout(() => this.connect(), delay);
      this.timer.unref?.();
    };
    typed.on('error', (err: GrpcCallError) => onGone(err));
    typed.on('end', () => onGone());
    // Subscribe: CDS and LDS as wildcards, SDS by name, EDS and RDS once their names are known.
    this.send(CLUSTER_TYPE);
    this.send(LISTENER_TYPE);
    this.send(SECRET_TYPE);
    if (this.status.get(ENDPOINT_TYPE)!.names.length) this.send(ENDPOINT_TYPE);
    if (this.status.get(ROUTE_TYPE)!.names.length) this.send(ROUTE_TYPE);
  }

  /** Exponential backoff with full jitter between half and the whole delay. */
  private backoff(): number {
    const base = this.opts.backoffBaseMs ?? 500;
    const max = this.opts.backoffMaxMs ?? 30_000;
    const d = Math.min(max, base * 2 ** this.attempts++);
    return d / 2 + Math.random() * (d / 2);
  }

  private send(typeUrl: string, errorMessage?: string): void {
    const s = this.status.get(typeUrl)!;
    const req: Obj = {
      node: {
        id: this.opts.node.id,
        cluster: 'trellis',
        metadata: objectToStruct(this.opts.node.metadata),
        user_agent_name: 'trellis-proxy',
      },
      type_url: typeUrl,
      version_info: s.version,
      resource_names: s.names,
      response_nonce: s.nonce,
    };
    if (errorMessage !== undefined) req.error_detail = { code: 3 /* INVALID_ARGUMENT */, message: errorMessage };
    this.call?.write(encodeDiscoveryRequest(req));
  }

  private onResponse(resp: Obj): void {
    const typeUrl: string = resp.type_url;
    const kind = KIND[typeUrl];
    const s = this.status.get(typeUrl);
    if (!kind || !s) {
      this.log('warn', `xDS: ignoring response of unknown type ${typeUrl}`);
      return;
    }
    s.nonce = resp.nonce ?? '';
    const short = SHORT_TYPE_NAMES[typeUrl] ?? typeUrl;
    const decoded = new Map<string, Obj>();
    let error: string | undefined;
    for (const r of (resp.resources ?? []) as AnyMessage[]) {
      try {
        let any = r;
        if (any.type_url === RESOURCE_WRAPPER) any = unpackAny<Obj>(any).resource as AnyMessage;
        if (any.type_url !== typeUrl) throw new Error(`resource of type ${any.type_url} in a ${typeUrl} response`);
        const obj = unpackAny<Obj>(any);
        const name = typeUrl === ENDPOINT_TYPE ? obj.cluster_name : obj.name;
        if (!name) throw new Error('resource without a name');
        decoded.set(String(name), obj);
      } catch (err) {
        error = `${short}: cannot decode: ${(err as Error).message}`;
        break;
      }
    }
    if (!error) {
      const next: RawResources = { ...this.raw, [kind]: this.merge(typeUrl, kind, decoded) };
      const delivered = kind === 'listeners' || kind === 'clusters' ? kind : undefined;
      error = this.opts.store.update(next, delivered);
      if (!error) this.raw = next;
    }
    if (error) {
      s.state = 'NACKED';
      s.lastError = error;
      this.log('warn', `xDS: rejected ${short} version ${resp.version_info}: ${error}; keeping version ${s.version || '(none)'}`);
      this.send(typeUrl, error);
      this.emit('nack', typeUrl, error);
      return;
    }
    s.version = resp.version_info ?? '';
    s.state = 'SYNCED';
    s.lastError = undefined;
    s.updatedAt = new Date().toISOString();
    this.send(typeUrl);
    this.emit('ack', typeUrl);
    if (kind === 'clusters') this.resubscribe(ENDPOINT_TYPE, this.edsSubscription());
    if (kind === 'listeners') this.resubscribe(ROUTE_TYPE, rdsNames(this.opts.store));
  }

  /** The EDS names to subscribe: every EDS cluster's, or (on demand) those the data path asked for or told to warm. */
  private edsSubscription(): string[] {
    const all = edsNames(this.raw);
    if (this.edsAll) return all.map((e) => e.eds);
    const { demanded, warm } = this.opts.store;
    // A cluster that left CDS is forgotten: if it comes back, its first request asks again.
    const present = new Set(all.map((e) => e.eds));
    for (const n of demanded) if (!present.has(n)) demanded.delete(n);
    return all.filter((e) => demanded.has(e.eds) || warm.has(e.eds) || warm.has(e.cluster) || warm.has('*')).map((e) => e.eds);
  }

  private merge(typeUrl: string, kind: Kind, decoded: Map<string, Obj>): Map<string, Obj> {
    if (FULL_STATE.has(typeUrl)) return decoded;
    const names = new Set(this.status.get(typeUrl)!.names);
    const out = new Map<string, Obj>();
    for (const [n, v] of this.raw[kind]) if (names.has(n)) out.set(n, v);
    for (const [n, v] of decoded) out.set(n, v);
    return out;
  }

  private resubscribe(typeUrl: string, names: string[]): void {
    const s = this.status.get(typeUrl)!;
    const sorted = [...new Set(names)].sort();
    if (sorted.join('\n') === s.names.join('\n')) return;
    s.names = sorted;
    this.send(typeUrl);
  }

  statusJson(): Record<string, TypeStatus> {
    const out: Record<string, TypeStatus> = {};
    for (const [t, s] of this.status) out[SHORT_TYPE_NAMES[t] ?? t] = s;
    return out;
  }
}

function edsNames(raw: RawResources): { cluster: string; eds: string }[] {
  const out: { cluster: string; eds: string }[] = [];
  for (const [name, c] of raw.clusters) {
    if ((c.type ?? 'STATIC') === 'EDS') out.push({ cluster: name, eds: c.eds_cluster_config?.service_name || name });
  }
  return out;
}

function rdsNames(store: StateStore): string[] {
  const out: string[] = [];
  for (const l of store.current.listeners.values()) if (l.routeConfigName) out.push(l.routeConfigName);
  return out;
}
