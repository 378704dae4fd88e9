// Envoy ADS server (state of the world): per-proxy snapshots, ACK/NACK tracking, debounced pushes, shared encodings.
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import {
  adsPackageDefinition,
  CLUSTER_TYPE,
  ENDPOINT_TYPE,
  expandAnys,
  LISTENER_TYPE,
  ROUTE_TYPE,
  SECRET_TYPE,
  SHORT_TYPE_NAMES,
  XDS_TYPES,
} from '../xds/protos.js';
import type { ProxyDescriptor, WorkloadInstance, XdsSnapshot } from './model.js';
import { RegistrationError, type ProxyWorkloadMeta, type Registry, type TokenGrant } from './registry.js';
import { structToJson, type ProtoStruct } from './struct.js';
import { installFramedSends, messageOf } from './grpc-framing.js';
import { encodeDiscoveryResponse, ResourceEncoder, type EncodedResource } from './xds-encoding.js';
import type { ControlMetrics } from './metrics.js';

export type SnapshotFn = (proxy: ProxyDescriptor, subscriptions: { listeners?: string[] }) => XdsSnapshot;

export interface AdsServerOptions {
  /** Compiles the snapshot for one proxy (the control plane passes compileForProxy bound to the current config). */
  snapshotFor: SnapshotFn;
  /** Where proxies register their workloads; without it, WORKLOADS metadata is ignored. */
  registry?: Registry;
  /** Checks a join token; without it every registration is allowed (tests, benchmarks). */
  verifyToken?: (token: string) => Promise<TokenGrant> | TokenGrant;
  debounceMs?: number;
  maxDelayMs?: number;
  metrics?: ControlMetrics;
  log?: (msg: string) => void;
  /** Called as each push begins (the control plane refreshes its compile input here, once per push). */
  beforePush?: () => void;
  /** Bytes of responses allowed in flight before senders wait (default 32 MiB). */
  inflightLimitBytes?: number;
}

export type SyncState = 'SYNCED' | 'STALE' | 'NACKED';

export interface TypeStatus {
  typeUrl: string;
  state: SyncState;
  sentVersion?: string;
  ackedVersion?: string;
  nackReason?: string;
  sentAt?: string;
  ackedAt?: string;
  resources: number;
}

export interface ProxyStatus {
  id: string;
  kind: 'trellis' | 'proxyless';
  peer: string;
  connectedSince: string;
  version?: string;
  workloads: WorkloadInstance[];
  /** By short type name (listeners, routes, clusters, endpoints, secrets), only types the proxy subscribed to. */
  types: Record<string, TypeStatus>;
}

/** Types whose empty resource_names means "everything" (SotW wildcard); RDS and EDS are always by name. */
const WILDCARD_TYPES = new Set<string>([LISTENER_TYPE, CLUSTER_TYPE, SECRET_TYPE]);

/** What a subscription selects from one snapshot map, encoded (shared by streams that subscribe alike). */
interface Selection {
  names: readonly string[];
  encoded: EncodedResource[];
  /** Encoding id by name, built when a diff needs it (RDS/EDS only). */
  ids?: Map<string, number>;
  /** names and encoding ids: equal keys mean equal resources. */
  key: string;
  /** Where the objects come from (status and config dumps read them here). */
  from?: Record<string, object>;
}

/**
 * Largest RDS/EDS response part, unless one resource alone is larger. Measured at 1,000 sidecars x 0.9 MB of
 * endpoints: unsplit responses peaked at 700-900 MB RSS, 96 KiB parts at ~520 MB but cost a third more CPU (every
 * part is ACKed with the whole subscription), 256 KiB parts kept the lower peak at the lower CPU.
 */
const PART_BYTES = 256 * 1024;

/** Consecutive runs of resources of at most PART_BYTES each (at least one resource per part). */
function splitParts(list: EncodedResource[]): EncodedResource[][] {
  const out: EncodedResource[][] = [];
  let cur: EncodedResource[] = [];
  let size = 0;
  for (const e of list) {
    if (cur.length && size + e.field.length > PART_BYTES) {
      out.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(e);
    size += e.field.length;
  }
  if (cur.length || !out.length) out.push(cur);
  return out;
}

const unpooled = new WeakSet<EncodedResource>();
/**
 * Moves a small encoding out of Node's shared 8 KiB buffer pool (once): encodings live as long as their resource,
 * and a pooled slice keeps its whole slab alive.
 */
function unpool(e: EncodedResource): void {
  if (unpooled.has(e)) return;
  unpooled.add(e);
  if (e.field.buffer.byteLength === e.field.length) return;
  const own = Buffer.allocUnsafeSlow(e.field.length);
  e.field.copy(own);
  e.field = own;
}

const diffs = new WeakMap<Selection, WeakMap<Selection, EncodedResource[]>>();
/** The resources of `next` that `prev` did not hold as they are now (computed once per pair). */
function changedSince(prev: Selection, next: Selection): EncodedResource[] {
  let m = diffs.get(prev);
  if (!m) diffs.set(prev, (m = new WeakMap()));
  let d = m.get(next);
  if (!d) {
    prev.ids ??= new Map(prev.names.map((n, i) => [n, prev.encoded[i].id]));
    const ids = prev.ids;
    d = next.encoded.filter((e, i) => ids.get(next.names[i]) !== e.id);
    m.set(next, d);
  }
  return d;
}

interface Subscription {
  names: string[]; // empty = wildcard where allowed
  /** `names` joined: the key of this subscription's selection. */
  namesKey: string;
  sentVersion?: string;
  sentNonce?: string;
  /** Nonces of the earlier parts of a response split in parts (answered before `sentNonce`). */
  partNonces?: string[];
  /** An earlier part was rejected: the NACK stands even if the last part is accepted. */
  partNack?: string;
  sentAt?: number;
  /** What the last response brought the proxy to: the same selection again means nothing to send. */
  sent?: Selection;
  ackedVersion?: string;
  ackedAt?: number;
  acked?: Selection;
  /** A response is out and not yet answered; changes meanwhile are sent when the answer comes (SotW flow control). */
  awaiting: boolean;
  /** A push found this subscription awaiting: check it again once the answer arrives. */
  dirty: boolean;
  state: SyncState;
  nackReason?: string;
}

/** Characters of subscription-name keys kept for sharing, per cache (cleared when exceeded). */
const NAME_CACHE_BYTES = 8 * 1024 * 1024;

/** A response content's version and nonce, and its bytes once sent twice (see AdsServer.response). */
interface CachedResponse {
  version: string;
  nonce: string;
  bytes?: Buffer;
  gen: number;
  /** What the entry costs besides its bytes (its key). */
  size: number;
}

/** Bytes of encoded responses (and their keys) kept for reuse (least recently used go first). */
const RESPONSE_CACHE_BYTES = 16 * 1024 * 1024;

/** Sorted keys of a snapshot map, computed once per (shared) map. */
const sortedKeys = new WeakMap<object, string[]>();
function keysOf(map: Record<string, object>): string[] {
  let k = sortedKeys.get(map);
  if (!k) sortedKeys.set(map, (k = Object.keys(map).sort()));
  return k;
}
const EMPTY: Record<string, object> = Object.freeze({}) as Record<string, object>;

interface DiscoveryRequest {
  version_info?: string;
  node?: { id?: string; metadata?: ProtoStruct | null } | null;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string } | null;
  /** The encoded resource_names fields, when they were one run (the usual case): a cheap key for "same names". */
  namesRaw?: Buffer;
}

class Conn {
  id = '';
  kind: 'trellis' | 'proxyless' = 'proxyless';
  version?: string;
  descriptorWorkloads: WorkloadInstance[] = [];
  snapshot: XdsSnapshot = {};
  subs = new Map<string, Subscription>();
  started = false;
  closed = false;
  queue: Promise<void> = Promise.resolve();
  readonly connectedSince = new Date();
  constructor(
    readonly call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>,
    readonly peer: string,
  ) {}
}

export class AdsServer {
  private readonly conns = new Set<Conn>();
  private readonly byId = new Map<string, Conn>();
  private readonly encoder = new ResourceEncoder();
  private readonly debounceMs: number;
  private readonly maxDelayMs: number;
  private timer: NodeJS.Timeout | undefined;
  private windowStart = 0;
  private changeAt = 0;
  private pushing: Promise<void> | undefined;
  private pushAgain = false;
  private versionCounter = 0;
  private nonceCounter = 0;
  private readonly noncePrefix = Date.now().toString(36);
  private closed = false;
  private readonly nameLists = new Map<string, { list: string[]; key: string }>();
  private readonly rawNameLists = new Map<string, { list: string[]; key: string }>();
  private nameBytes = 0;
  private rawNameBytes = 0;
  /** Selections by snapshot map, then by subscription names ('*' wildcard); null = a resource failed to encode. */
  private selections = new WeakMap<object, Map<string, Selection | null>>();
  /** Encoded responses by content (type + encoding ids), shared by every stream that is sent that content. */
  private readonly responses = new Map<string, CachedResponse>();
  private responseGen = 0;
  private responseBytes = 0;
  /** Proxyless clients with equal subscriptions share one compile per push. */
  private proxylessCache = new Map<string, XdsSnapshot>();
  /** Counts every DiscoveryResponse written; tests use it to assert "no response". */
  responsesSent = 0;
  /** Bytes of every DiscoveryResponse written, in all and by type URL (benchmarks report them). */
  bytesSent = 0;
  readonly bytesByType: Record<string, number> = {};
  /**
   * Bytes handed to gRPC and not yet flushed. A full EDS for a sidecar can be a megabyte; with 1,000 proxies
   * writing them all at once would hold a gigabyte in HTTP/2 buffers, so senders wait while this is high.
   */
  private inflightBytes = 0;
  private readonly inflightLimit: number;
  private drainWaiters: (() => void)[] = [];

  constructor(private readonly opts: AdsServerOptions) {
    this.debounceMs = opts.debounceMs ?? 100;
    this.maxDelayMs = opts.maxDelayMs ?? 1000;
    this.inflightLimit = opts.inflightLimitBytes ?? Number(process.env.TRELLIS_XDS_INFLIGHT_BYTES ?? 32 * 1024 * 1024);
  }

  private released(n: number): void {
    this.inflightBytes -= n;
    if (this.inflightBytes < this.inflightLimit) for (const w of this.drainWaiters.splice(0)) w();
  }

  /** Resolves once in-flight bytes are under the limit (at once when they are). */
  private capacity(): Promise<void> | undefined {
    if (this.inflightBytes < this.inflightLimit) return undefined;
    return new Promise((r) => this.drainWaiters.push(r));
  }

  /** Registers the ADS service on a grpc-js server (responses are pre-serialised buffers). */
  addTo(server: grpc.Server): void {
    const pkg = grpc.loadPackageDefinition(adsPackageDefinition()) as unknown as {
      envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: { service: grpc.ServiceDefinition } } } } };
    };
    const def = pkg.envoy.service.discovery.v3.AggregatedDiscoveryService.service;
    installFramedSends();
    const sotw = def.StreamAggregatedResources;
    const full = sotw.requestDeserialize as (b: Buffer) => DiscoveryRequest;
    const service: grpc.ServiceDefinition = {
      ...def,
      StreamAggregatedResources: {
        ...sotw,
        requestDeserialize: (b: Buffer) => readRequest(b, full),
        // Responses are framed buffers (grpc-framing.ts): sent as they are where the hook is in, else their message.
        responseSerialize: (v: unknown) => (Buffer.isBuffer(v) ? messageOf(v) : sotw.responseSerialize(v)),
      },
    };
    server.addService(service, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>) => this.onStream(call),
    });
  }

  /** Config or registry changed: push to every proxy after the debounce window (bounded by maxDelayMs). */
  trigger(): void {
    if (this.closed) return;
    const now = Date.now();
    if (!this.timer) {
      this.windowStart = now;
      if (!this.changeAt) this.changeAt = now;
    } else {
      clearTimeout(this.timer);
    }
    const wait = Math.max(0, Math.min(this.debounceMs, this.windowStart + this.maxDelayMs - now));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.pushAll();
    }, wait);
  }

  /** Pushes now; resolves when every proxy has been considered. */
  async pushAll(): Promise<void> {
    if (this.pushing) {
      this.pushAgain = true;
      return this.pushing;
    }
    this.pushing = (async () => {
      do {
        this.pushAgain = false;
        const changeAt = this.changeAt || Date.now();
        this.changeAt = 0;
        this.opts.beforePush?.();
        this.encoder.sweep();
        this.responseGen++;
        for (const [k, r] of this.responses) if (r.gen < this.responseGen - 2) this.dropResponse(k, r);
        this.proxylessCache.clear();
        let sliceStart = Date.now();
        for (const conn of [...this.conns]) {
          if (conn.closed || !conn.started) continue;
          const wait = this.capacity();
          if (wait) {
            await wait;
            sliceStart = Date.now();
            if (conn.closed) continue;
          }
          this.recompile(conn, true);
          for (const type of XDS_TYPES) if (conn.subs.has(type)) this.send(conn, type, false, changeAt);
          if (Date.now() - sliceStart > 20) {
            await new Promise((r) => setImmediate(r)); // let ACKs and new streams in during a large push
            sliceStart = Date.now();
          }
        }
      } while (this.pushAgain && !this.closed);
    })().finally(() => {
      this.pushing = undefined;
    });
    return this.pushing;
  }

  proxies(): ProxyStatus[] {
    return [...this.byId.values()].map((c) => this.status(c)).sort((a, b) => a.id.localeCompare(b.id));
  }

  proxy(id: string): ProxyStatus | undefined {
    const c = this.byId.get(id);
    return c && this.status(c);
  }

  /** What the proxy holds (last ACKed, else last sent), decoded, by short type name. */
  proxyConfig(id: string, shortType?: string): Record<string, unknown> | undefined {
    const c = this.byId.get(id);
    if (!c) return undefined;
    const out: Record<string, unknown> = {};
    for (const [type, sub] of c.subs) {
      const short = SHORT_TYPE_NAMES[type] ?? type;
      if (shortType && short !== shortType) continue;
      const held = sub.acked ?? sub.sent;
      const from = held?.from ?? {};
      out[short] = (held?.names ?? []).filter((n) => from[n]).map((name) => ({ name, ...(expandAnys(from[name]) as object) }));
    }
    return out;
  }

  /**
   * How many connected proxies have ACKed `typeUrl` at or after `since` (ms epoch), and when the last of them did;
   * with `resource`, only the proxies subscribed to that name (on-demand EDS: the ones a change concerns).
   */
  ackedSince(typeUrl: string, since: number, resource?: string): { acked: number; total: number; lastAckAt: number } {
    let acked = 0;
    let total = 0;
    let lastAckAt = 0;
    for (const c of this.byId.values()) {
      const s = c.subs.get(typeUrl);
      if (!s) continue;
      if (resource !== undefined && s.names.length > 0 && !s.names.includes(resource)) continue;
      total++;
      if (s.ackedAt !== undefined && s.ackedAt >= since && s.state === 'SYNCED') {
        acked++;
        lastAckAt = Math.max(lastAckAt, s.ackedAt);
      }
    }
    return { acked, total, lastAckAt };
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  get encodedResources(): number {
    return this.encoder.size;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const c of this.conns) {
      c.closed = true;
      try {
        c.call.end();
      } catch {
        /* already gone */
      }
    }
  }

  // ------------------------------------------------------------------ stream handling

  private onStream(call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>): void {
    const conn = new Conn(call, call.getPeer());
    this.conns.add(conn);
    this.opts.metrics?.connectedProxies.set(this.conns.size);
    this.opts.metrics?.xdsConnected.set(this.conns.size);
    call.on('data', (req: DiscoveryRequest) => {
      // Serialised per stream: the first request may wait on token verification.
      conn.queue = conn.queue.then(() => this.onRequest(conn, req)).catch((err) => this.fail(conn, grpc.status.INTERNAL, (err as Error).message));
    });
    const done = () => this.onClose(conn);
    call.on('end', () => {
      done();
      try {
        call.end();
      } catch {
        /* already ended */
      }
    });
    call.on('cancelled', done);
    call.on('error', done);
    call.on('close', done);
  }

  private onClose(conn: Conn): void {
    if (conn.closed && !this.conns.has(conn)) return;
    conn.closed = true;
    this.conns.delete(conn);
    this.opts.metrics?.connectedProxies.set(this.conns.size);
    this.opts.metrics?.xdsConnected.set(this.conns.size);
    if (conn.id && this.byId.get(conn.id) === conn) {
      this.byId.delete(conn.id);
      if (conn.kind === 'trellis') this.opts.registry?.proxyDisconnected(conn.id);
    }
  }

  private fail(conn: Conn, code: grpc.status, details: string): void {
    this.opts.log?.(`xds: closing stream of ${conn.id || conn.peer}: ${details}`);
    conn.closed = true;
    conn.call.emit('error', { code, details });
  }

  private async onRequest(conn: Conn, req: DiscoveryRequest): Promise<void> {
    if (conn.closed) return;
    if (!conn.started) {
      if (!(await this.start(conn, req))) return;
    }
    const type = req.type_url ?? '';
    const wait = this.capacity();
    if (wait) await wait;
    if (conn.closed) return;
    if (!(XDS_TYPES as readonly string[]).includes(type)) {
      this.opts.log?.(`xds: ${conn.id} asked for unsupported type ${type}`);
      return;
    }
    const names = this.namesOf(req);
    const nonce = req.response_nonce ?? '';
    let sub = conn.subs.get(type);
    if (!nonce || !sub) {
      // A new subscription (or a reconnect): always answer, even with an empty set.
      sub = { names: names.list, namesKey: names.key, state: 'STALE', awaiting: false, dirty: false };
      conn.subs.set(type, sub);
      if (type === LISTENER_TYPE && conn.kind === 'proxyless') this.recompile(conn);
      this.send(conn, type, true, 0);
      return;
    }
    const err = req.error_detail;
    const rejected = err && (err.message || err.code) ? err.message || `error code ${err.code}` : undefined;
    if (nonce !== sub.sentNonce) {
      // An earlier part of a split response: only its rejection matters, once the last part is answered.
      if (rejected && sub.partNonces?.includes(nonce)) sub.partNack ??= rejected;
      return; // else stale: an answer to a response that has been superseded
    }
    sub.awaiting = false;
    const nack = rejected ?? sub.partNack;
    sub.partNack = undefined;
    sub.partNonces = undefined;
    if (nack) {
      sub.state = 'NACKED';
      sub.nackReason = nack;
      this.opts.metrics?.nacks.inc({ type: SHORT_TYPE_NAMES[type] ?? type });
      this.opts.log?.(`xds: ${conn.id} rejected ${SHORT_TYPE_NAMES[type]} version ${sub.sentVersion}: ${sub.nackReason}`);
    } else {
      sub.state = 'SYNCED';
      sub.nackReason = undefined;
      sub.ackedVersion = req.version_info ?? sub.sentVersion;
      sub.ackedAt = Date.now();
      sub.acked = sub.sent;
    }
    const renamed = names.key !== sub.namesKey;
    if (renamed) {
      sub.names = names.list;
      sub.namesKey = names.key;
      if (type === LISTENER_TYPE && conn.kind === 'proxyless') this.recompile(conn);
    }
    if (renamed || sub.dirty) {
      sub.dirty = false;
      this.send(conn, type, false, 0); // answers only if what the names select differs from what was sent
    }
  }

  /** First request on a stream: identify the node, check its token, register its workloads. */
  private async start(conn: Conn, req: DiscoveryRequest): Promise<boolean> {
    const node = req.node;
    if (!node?.id) {
      this.fail(conn, grpc.status.INVALID_ARGUMENT, 'the first DiscoveryRequest must carry node.id');
      return false;
    }
    const meta = structToJson(node.metadata ?? undefined);
    conn.id = node.id;
    conn.kind = meta.TRELLIS_PROXY ? 'trellis' : 'proxyless';
    conn.version = typeof meta.VERSION === 'string' ? meta.VERSION : undefined;
    const metas = Array.isArray(meta.WORKLOADS) ? (meta.WORKLOADS as ProxyWorkloadMeta[]) : [];
    if (conn.kind === 'trellis' && this.opts.registry) {
      const grant = await this.grantOf(conn);
      if (conn.closed) return false;
      try {
        conn.descriptorWorkloads = this.opts.registry.registerProxy(conn.id, metas, grant);
      } catch (err) {
        if (err instanceof RegistrationError) {
          this.fail(conn, grant === undefined ? grpc.status.UNAUTHENTICATED : grpc.status.PERMISSION_DENIED, err.message);
          return false;
        }
        throw err;
      }
    }
    const previous = this.byId.get(conn.id);
    this.byId.set(conn.id, conn);
    if (previous && previous !== conn) previous.closed = true; // superseded by a reconnect with the same id
    conn.started = true;
    this.recompile(conn);
    return true;
  }

  /** Every valid join token the stream carries (a node-mode proxy sends one per hosted service account). */
  private async grantOf(conn: Conn): Promise<TokenGrant[] | 'any' | undefined> {
    if (!this.opts.verifyToken) return 'any';
    const grants: TokenGrant[] = [];
    // HTTP/2 may fold repeated metadata into one comma-separated value; join tokens never contain commas.
    const values = [...conn.call.metadata.get('authorization'), ...conn.call.metadata.get('x-trellis-token')]
      .flatMap((v) => (typeof v === 'string' ? v.split(',') : []));
    for (const header of values) {
      const token = header.replace(/^\s*Bearer\s+/i, '').trim();
      if (!token) continue;
      try {
        grants.push(await this.opts.verifyToken(token));
      } catch (err) {
        this.opts.log?.(`xds: ${conn.id}: join token refused: ${(err as Error).message}`);
      }
    }
    return grants.length > 0 ? grants : undefined;
  }

  /** `fresh`: take the proxy's workloads from the registry's current snapshot (once per push), else keep the last ones. */
  private recompile(conn: Conn, fresh = false): void {
    const listeners = conn.kind === 'proxyless' ? conn.subs.get(LISTENER_TYPE)?.names : undefined;
    if (fresh && conn.kind === 'trellis' && this.opts.registry) conn.descriptorWorkloads = this.opts.registry.proxyWorkloads(conn.id);
    const workloads = conn.descriptorWorkloads;
    const descriptor: ProxyDescriptor = { id: conn.id, kind: conn.kind, workloads };
    const subs = listeners ? { listeners } : {};
    const cacheKey = conn.kind === 'proxyless' ? (listeners ?? []).join('\n') : undefined;
    try {
      let snap = cacheKey !== undefined ? this.proxylessCache.get(cacheKey) : undefined;
      if (!snap) {
        snap = this.opts.snapshotFor(descriptor, subs);
        if (cacheKey !== undefined) this.proxylessCache.set(cacheKey, snap);
      }
      conn.snapshot = snap;
    } catch (err) {
      // A compiler failure must not take the proxy down: it keeps what it has.
      this.opts.log?.(`xds: compiling config for ${conn.id} failed, keeping its previous config: ${(err as Error).message}`);
    }
  }

  /**
   * Sends the resources of `type` that the subscription selects, if they differ from what was last sent (or `force`).
   * While a response is unanswered nothing more is sent for that type: changes meanwhile are folded into one
   * response when the ACK or NACK arrives, so a slow proxy gets the latest state once instead of every step.
   */
  private send(conn: Conn, type: string, force: boolean, changeAt: number): void {
    const sub = conn.subs.get(type);
    if (!sub || conn.closed) return;
    if (sub.awaiting && !force) {
      sub.dirty = true;
      return;
    }
    const all = conn.snapshot[type] ?? EMPTY;
    const wildcard = sub.names.length === 0 || (sub.names.length === 1 && sub.names[0] === '*');
    if (wildcard && !WILDCARD_TYPES.has(type) && !force) return;
    const sel = this.select(conn, type, all, wildcard ? (WILDCARD_TYPES.has(type) ? '*' : '') : sub.namesKey, sub.names);
    if (!sel) return;
    const prev = sub.sent;
    if (!force && prev === sel) return;
    sub.sent = sel;
    if (!force && prev && prev.key === sel.key) {
      // Same resources from another map: nothing new. What the proxy holds is this selection too, so the previous
      // one (and the map it came from: a sidecar's 200 clusters) is not kept alive by `acked` until the next ACK.
      if (sub.acked === prev) sub.acked = sel;
      return;
    }
    // RDS and EDS are not full-state: a response may carry only the names that changed, and the client keeps
    // the rest. With 1,000 proxies this turns "one endpoint moved" into one small CLA per proxy, not all of them.
    let toSend = sel.encoded;
    if (!WILDCARD_TYPES.has(type) && !force && prev) {
      toSend = changedSince(prev, sel);
      if (!toSend.length) return; // only names dropped: the client forgets those itself
    }
    // RDS and EDS responses go in parts of at most PART_BYTES (a resource is never split): the buffers on the way
    // (ours, gRPC's framing copy) stay small enough for the allocator to reuse rather than pile up.
    const parts = WILDCARD_TYPES.has(type) ? [toSend] : splitParts(toSend);
    const nonces: string[] = [];
    for (const part of parts) {
      const { version, nonce, bytes } = this.response(type, part);
      nonces.push(nonce);
      sub.sentVersion = version;
      this.inflightBytes += bytes.length;
      conn.call.write(bytes, () => this.released(bytes.length));
      this.responsesSent++;
      this.bytesSent += bytes.length;
      this.bytesByType[type] = (this.bytesByType[type] ?? 0) + bytes.length;
    }
    sub.sentNonce = nonces.pop();
    sub.partNonces = nonces.length ? nonces : undefined;
    sub.partNack = undefined;
    sub.sentAt = Date.now();
    sub.state = 'STALE';
    sub.awaiting = true;
    sub.dirty = false;
    this.opts.metrics?.pushes.inc({ type: SHORT_TYPE_NAMES[type] ?? type });
    if (changeAt) this.opts.metrics?.pushLatency.observe((Date.now() - changeAt) / 1000);
  }

  /**
   * The resources a subscription selects from a snapshot map, encoded: computed once per (map, names) and shared
   * by every stream subscribing alike (1,000 sidecars asking for the same 200 load assignments). Undefined when a
   * resource cannot be encoded (logged once).
   */
  private select(conn: Conn, type: string, all: Record<string, object>, namesKey: string, subNames: string[]): Selection | undefined {
    let byNames = this.selections.get(all);
    if (!byNames) this.selections.set(all, (byNames = new Map()));
    const hit = byNames.get(namesKey);
    if (hit !== undefined) return hit ?? undefined;
    const names = namesKey === '*' ? keysOf(all) : namesKey === '' ? [] : subNames.filter((n) => n in all);
    const encoded: EncodedResource[] = new Array(names.length);
    const hash = createHash('sha1');
    for (let i = 0; i < names.length; i++) {
      const n = names[i];
      try {
        encoded[i] = this.encoder.encode(type, all[n]);
      } catch (err) {
        // A resource the proto cannot hold is a compiler bug: keep the proxy on what it has, say which one.
        this.opts.log?.(`xds: cannot encode ${SHORT_TYPE_NAMES[type]} "${n}" for ${conn.id}: ${(err as Error).message}`);
        byNames.set(namesKey, null);
        return undefined;
      }
      unpool(encoded[i]);
      hash.update(`${n}=${encoded[i].id};`);
    }
    const sel: Selection = { names, encoded, key: hash.digest('base64'), from: all };
    byNames.set(namesKey, sel);
    return sel;
  }

  /**
   * One shared copy of each distinct list of subscribed names: 1,000 sidecars each naming the same 200 clusters
   * would otherwise hold 200,000 strings.
   */
  private namesOf(req: DiscoveryRequest): { list: string[]; key: string } {
    // Every ACK repeats the subscription (200 cluster names from a sidecar): recognise a list seen before by its
    // bytes instead of decoding, sorting and joining it again.
    const raw = req.namesRaw?.toString('latin1');
    const seen = raw !== undefined ? this.rawNameLists.get(raw) : undefined;
    if (seen) return seen;
    const names = this.internNames([...(req.resource_names ?? [])].sort());
    if (raw !== undefined) {
      if ((this.rawNameBytes += raw.length) > NAME_CACHE_BYTES) {
        this.rawNameLists.clear(); // bounded; holders keep theirs
        this.rawNameBytes = raw.length;
      }
      this.rawNameLists.set(raw, names);
    }
    return names;
  }

  private internNames(sorted: string[]): { list: string[]; key: string } {
    const key = sorted.join('\n');
    let hit = this.nameLists.get(key);
    if (!hit) {
      if ((this.nameBytes += key.length) > NAME_CACHE_BYTES) {
        this.nameLists.clear(); // bounded; holders keep theirs
        this.nameBytes = key.length;
      }
      this.nameLists.set(key, (hit = { list: sorted, key }));
    }
    return hit;
  }

  /**
   * The response carrying exactly `resources`: identical responses (1,000 proxies receiving the same endpoints)
   * are one buffer with one version and nonce. A nonce then names a content, not a send, which is all a stream
   * needs to match an ACK to what it answers: two sends with one nonce carried the same resources.
   * A content's bytes are kept from its second send on: most responses a sidecar gets once (its own CDS and LDS:
   * 55 KB each, 1,000 per sync) used to fill the cache and stay alive for nothing; the first send remembers only
   * the version and nonce, so a second one is encoded again under them and kept.
   */
  private response(type: string, resources: EncodedResource[]): { version: string; nonce: string; bytes: Buffer } {
    const key = `${type},${resources.map((e) => e.id).join(',')}`;
    let r = this.responses.get(key);
    let bytes: Buffer;
    if (r) {
      this.responses.delete(key); // most recently used last
      if (!r.bytes) {
        r.bytes = encodeDiscoveryResponse({ versionInfo: r.version, resources, typeUrl: type, nonce: r.nonce });
        this.responseBytes += r.bytes.length;
      }
      bytes = r.bytes;
    } else {
      const version = String(++this.versionCounter);
      const nonce = `${this.noncePrefix}-${++this.nonceCounter}`;
      r = { version, nonce, gen: this.responseGen, size: key.length };
      this.responseBytes += r.size;
      bytes = encodeDiscoveryResponse({ versionInfo: version, resources, typeUrl: type, nonce });
    }
    this.responses.set(key, r);
    r.gen = this.responseGen;
    for (const [k, old] of this.responses) {
      if (this.responseBytes <= RESPONSE_CACHE_BYTES || old === r) break;
      this.dropResponse(k, old);
    }
    return { version: r.version, nonce: r.nonce, bytes };
  }

  private dropResponse(key: string, r: CachedResponse): void {
    this.responses.delete(key);
    this.responseBytes -= r.size + (r.bytes?.length ?? 0);
  }

  private status(c: Conn): ProxyStatus {
    const types: Record<string, TypeStatus> = {};
    for (const type of XDS_TYPES) {
      const s = c.subs.get(type);
      if (!s) continue;
      types[SHORT_TYPE_NAMES[type]] = {
        typeUrl: type,
        state: s.state,
        sentVersion: s.sentVersion,
        ackedVersion: s.ackedVersion,
        nackReason: s.nackReason,
        sentAt: s.sentAt ? new Date(s.sentAt).toISOString() : undefined,
        ackedAt: s.ackedAt ? new Date(s.ackedAt).toISOString() : undefined,
        resources: s.sent?.names.length ?? 0,
      };
    }
    return {
      id: c.id,
      kind: c.kind,
      peer: c.peer,
      connectedSince: c.connectedSince.toISOString(),
      version: c.version,
      workloads: c.kind === 'trellis' && this.opts.registry ? this.opts.registry.proxyWorkloads(c.id) : [],
      types,
    };
  }
}

/** Reads a varint at `pos`: [value, next position]. */
function varint(b: Buffer, pos: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (;;) {
    if (pos >= b.length) throw new Error('truncated DiscoveryRequest');
    const byte = b[pos++];
    v += (byte & 127) * mul;
    if (byte < 128) return [v, pos];
    mul *= 128;
  }
}

/**
 * A DiscoveryRequest with `node` and `error_detail` decoded only when read. Proxies send their node (a Struct of
 * workload metadata) on every ACK, and only the first request of a stream needs it: decoding it 1,000 times per
 * push was a tenth of the server's time.
 */
function readRequest(b: Buffer, full: (b: Buffer) => DiscoveryRequest): DiscoveryRequest {
  const out = new LazyRequest(b, full);
  let runStart = -1;
  let runEnd = -1;
  let oneRun = true;
  let pos = 0;
  while (pos < b.length) {
    const start = pos;
    let key: number;
    [key, pos] = varint(b, pos);
    const wire = key & 7;
    const field = Math.floor(key / 8);
    if (wire === 0) {
      [, pos] = varint(b, pos);
      continue;
    }
    if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
      continue;
    }
    if (wire !== 2) return full(b); // not ours to judge: let the generated decoder accept or reject it
    let len: number;
    [len, pos] = varint(b, pos);
    const end = pos + len;
    if (end > b.length) throw new Error('truncated DiscoveryRequest');
    if (field === 1) out.version_info = b.toString('utf8', pos, end);
    else if (field === 3) {
      (out.nameSpans ??= []).push(pos, end);
      if (runStart < 0) runStart = start;
      else if (runEnd !== start) oneRun = false;
      runEnd = end;
    }
    else if (field === 4) out.type_url = b.toString('utf8', pos, end);
    else if (field === 5) out.response_nonce = b.toString('utf8', pos, end);
    // Repeated message fields merge: keep every occurrence (a view of the request, no copy in the usual single case).
    else if (field === 2) out.nodeRaw = out.nodeRaw ? Buffer.concat([out.nodeRaw, b.subarray(start, end)]) : b.subarray(start, end);
    else if (field === 6) out.errRaw = out.errRaw ? Buffer.concat([out.errRaw, b.subarray(start, end)]) : b.subarray(start, end);
    pos = end;
  }
  if (runStart >= 0 && oneRun) out.namesRaw = b.subarray(runStart, runEnd);
  return out;
}

/**
 * A request read by readRequest: plain fields at once, the rest decoded on first read. A class with getters on its
 * prototype: a request per ACK, 1,000 per push, each used to carry three closures of its own.
 */
class LazyRequest implements DiscoveryRequest {
  version_info = '';
  type_url = '';
  response_nonce = '';
  namesRaw?: Buffer;
  nameSpans?: number[]; // start, end of each name's bytes
  nodeRaw?: Buffer;
  errRaw?: Buffer;
  private names?: string[];
  private decodedNode?: DiscoveryRequest['node'];
  private decodedErr?: DiscoveryRequest['error_detail'];
  constructor(
    private readonly b: Buffer,
    private readonly full: (b: Buffer) => DiscoveryRequest,
  ) {}

  get resource_names(): string[] {
    if (!this.names) {
      const spans = this.nameSpans ?? [];
      this.names = [];
      for (let i = 0; i < spans.length; i += 2) this.names.push(this.b.toString('utf8', spans[i], spans[i + 1]));
    }
    return this.names;
  }

  get node(): DiscoveryRequest['node'] {
    return (this.decodedNode ??= this.nodeRaw ? this.full(this.nodeRaw).node : null);
  }

  get error_detail(): DiscoveryRequest['error_detail'] {
    return (this.decodedErr ??= this.errRaw ? this.full(this.errRaw).error_detail : null);
  }
}

export { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE };
