// Reusable upstream connections per (caller identity, endpoint, SNI): a keep-alive HTTP/1.1 pool (H1Pool, or node's agent) or one HTTP/2 session.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { ClusterConfig } from '../config/types.js';
import { isMutual, meshMeta, type EndpointInfo } from '../policy-api.js';
import type { WorkloadTls } from '../tls/identity.js';
import * as net from 'node:net';
import { asMsg, durationMs } from '../route/proto.js';
import type { CircuitBreaker } from '../resilience/index.js';
import { openUpstream, upstreamSni, type UpstreamError } from './connect.js';
import { H1Pool } from './h1-pool.js';

/** Idle pooled sockets are closed before the app's usual keep-alive timeout (node: 5s) to avoid reusing a dying one. */
const IDLE_MS = 4000;
const MAX_SOCKETS = 512;

export interface PoolOptions {
  /** The decoded xDS Cluster by name: common_http_protocol_options (idle_timeout, max_requests_per_connection). */
  clusterRaw?: (name: string) => Record<string, unknown> | undefined;
  /** The cluster's circuit breaker: 'connections' counts open upstream connections, 'pending' requests waiting for one. */
  breaker?: (name: string) => CircuitBreaker | undefined;
}

type CountedSocket = Socket & { trellisServed?: number };

class MeshAgent extends http.Agent {
  /** Connections made and not yet closed. */
  open = 0;
  constructor(
    private readonly cluster: ClusterConfig,
    private readonly ep: EndpointInfo,
    private readonly caller: WorkloadTls | undefined,
    idleMs: number,
    /** Requests per connection before it retires (0 = unlimited). */
    maxRequests: number,
    private readonly breaker: (() => CircuitBreaker | undefined) | undefined,
  ) {
    super({ keepAlive: true, maxSockets: MAX_SOCKETS, maxFreeSockets: 64, timeout: idleMs, scheduling: 'lifo' });
    if (maxRequests > 0) {
      // Retire a connection after maxRequests (Node types declare keepSocketAlive as void; it returns whether to keep).
      const keep = this.keepSocketAlive.bind(this) as unknown as (s: Socket) => boolean;
      (this as unknown as { keepSocketAlive: (s: Socket) => boolean }).keepSocketAlive = (socket: Socket) => {
        const c = socket as CountedSocket;
        c.trellisServed = (c.trellisServed ?? 0) + 1;
        return c.trellisServed < maxRequests && keep(socket);
      };
    }
  }

  override createConnection(): Socket {
    const br = this.breaker?.();
    if (br !== undefined && !br.tryAcquire('connections')) {
      // The cluster-wide connection limit is reached: fail this request fast rather than exceed it.
      const s = new net.Socket();
      const err = new Error(`cluster ${this.cluster.name}: circuit breaker max_connections (${br.limits.connections}) reached`) as UpstreamError;
      err.trellisCode = 'overflow';
      process.nextTick(() => s.destroy(err));
      return s;
    }
    const s = openUpstream(this.cluster, this.ep, this.caller, ['http/1.1']);
    this.open++;
    s.once('close', () => {
      this.open--;
      br?.release('connections');
    });
    return s;
  }

  /** One agent per pool key (one endpoint, identity and SNI): the name Node files its sockets under never varies. */
  override getName(): string {
    return '';
  }

  /** True when a request now would wait for a connection (none free, per-endpoint limit reached). */
  wouldQueue(): boolean {
    if (this.open < this.maxSockets) return false;
    for (const k in this.freeSockets) if ((this.freeSockets[k]?.length ?? 0) > 0) return false;
    return true;
  }
}

/** idle_timeout and max_requests_per_connection from common_http_protocol_options. */
function httpOptions(raw: Record<string, unknown> | undefined): { idleMs: number; maxRequests: number } {
  const o = asMsg(raw?.common_http_protocol_options);
  const idle = durationMs(o?.idle_timeout);
  const m = asMsg(o?.max_requests_per_connection)?.value ?? o?.max_requests_per_connection ?? raw?.max_requests_per_connection;
  const maxRequests = typeof m === 'number' ? m : typeof m === 'string' ? Number(m) : typeof asMsg(m)?.value === 'number' ? (asMsg(m)!.value as number) : 0;
  return { idleMs: idle !== undefined && idle > 0 ? idle : IDLE_MS, maxRequests: Number.isFinite(maxRequests) && maxRequests > 0 ? maxRequests : 0 };
}

/**
 * A connection for the hand-written client: takes a breaker 'connections' slot (released on close) or
 * fails as overflow, as MeshAgent.createConnection does for node's agent.
 */
function h1Connect(cluster: ClusterConfig, ep: EndpointInfo, caller: WorkloadTls | undefined, breaker: (() => CircuitBreaker | undefined) | undefined): () => Socket {
  return () => {
    const br = breaker?.();
    if (br !== undefined && !br.tryAcquire('connections')) {
      const s = new net.Socket();
      const err = new Error(`cluster ${cluster.name}: circuit breaker max_connections (${br.limits.connections}) reached`) as UpstreamError;
      err.trellisCode = 'overflow';
      process.nextTick(() => s.destroy(err));
      return s;
    }
    const s = openUpstream(cluster, ep, caller, ['http/1.1']);
    if (br !== undefined) s.once('close', () => br.release('connections'));
    return s;
  };
}

interface AgentEntry {
  /** Made on first use: a process uses one client or the other (TRELLIS_UPSTREAM_CLIENT). */
  agent: MeshAgent | undefined;
  h1: H1Pool | undefined;
  idleMs: number;
  maxRequests: number;
  breaker: (() => CircuitBreaker | undefined) | undefined;
  cluster: ClusterConfig;
  ep: EndpointInfo;
  caller?: WorkloadTls;
  generation: number;
  /** False once pruned or closed: a remembered entry is then looked up again. */
  live: boolean;
}

export class UpstreamPool {
  private agents = new Map<string, AgentEntry>();
  /** What each endpoint object's last request looked up: the usual request skips building the key string. */
  private lastByEndpoint = new WeakMap<EndpointInfo, { entry: AgentEntry; cluster: ClusterConfig; caller?: WorkloadTls; generation: number }>();
  private sessions = new Map<string, http2.ClientHttp2Session>();
  private closed = false;

  constructor(private readonly opts: PoolOptions = {}) {}

  private key(cluster: ClusterConfig, ep: EndpointInfo, caller: WorkloadTls | undefined): string {
    return `${caller?.spiffeId ?? ''}|${caller?.generation ?? 0}|${ep.address}:${ep.port}|${upstreamSni(cluster, ep)}|${meshMeta(ep).identity ?? ''}|${cluster.connectTimeoutMs}`;
  }

  private entry(cluster: ClusterConfig, ep: EndpointInfo, caller: WorkloadTls | undefined): AgentEntry {
    const last = this.lastByEndpoint.get(ep);
    if (last !== undefined && last.entry.live && last.cluster === cluster && last.caller === caller && last.generation === (caller?.generation ?? 0)) return last.entry;
    const k = this.key(cluster, ep, caller);
    let a = this.agents.get(k);
    if (!a) {
      const { idleMs, maxRequests } = httpOptions(this.opts.clusterRaw?.(cluster.name));
      const breaker = this.opts.breaker;
      const name = cluster.name;
      a = { agent: undefined, h1: undefined, idleMs, maxRequests, breaker: breaker && (() => breaker(name)), cluster, ep, caller, generation: caller?.generation ?? 0, live: true };
      this.agents.set(k, a);
    }
    // The key is a function of these objects (and the caller's generation): the same ones find the same entry.
    this.lastByEndpoint.set(ep, { entry: a, cluster, caller, generation: caller?.generation ?? 0 });
    return a;
  }

  /** node's http.Agent for the key (the TRELLIS_UPSTREAM_CLIENT=node path). */
  agent(cluster: ClusterConfig, ep: EndpointInfo, caller: WorkloadTls | undefined): http.Agent {
    const a = this.entry(cluster, ep, caller);
    return (a.agent ??= new MeshAgent(a.cluster, a.ep, a.caller, a.idleMs, a.maxRequests, a.breaker));
  }

  /** The hand-written client's connection pool for the key (the default HTTP/1.1 upstream path). */
  h1(cluster: ClusterConfig, ep: EndpointInfo, caller: WorkloadTls | undefined): H1Pool {
    const a = this.entry(cluster, ep, caller);
    return (a.h1 ??= new H1Pool({
      connect: h1Connect(a.cluster, a.ep, a.caller, a.breaker),
      readyEvent: 'trellis:ready',
      maxSockets: MAX_SOCKETS,
      maxIdle: 64,
      idleMs: a.idleMs,
      maxRequestsPerSocket: a.maxRequests,
    }));
  }

  /** wouldQueue for an H1Pool: the same per-endpoint cap from the cluster's max_connections. */
  wouldQueueH1(p: H1Pool, maxConnections: number): boolean {
    p.maxSockets = Math.min(MAX_SOCKETS, Math.max(1, maxConnections));
    return p.wouldQueue();
  }

  /**
   * Whether a request on `agent` would wait for a connection. The per-endpoint connection cap follows the
   * cluster's max_connections, so requests past it queue (as Envoy's pending requests) instead of connecting.
   */
  wouldQueue(agent: http.Agent, maxConnections: number): boolean {
    const m = agent as MeshAgent;
    const cap = Math.min(MAX_SOCKETS, Math.max(1, maxConnections));
    if (m.maxSockets !== cap) m.maxSockets = cap;
    return m.wouldQueue();
  }

  /** One multiplexed HTTP/2 session per key (gRPC and HTTP/2 clusters); replaced when it closes or goes away. */
  session(cluster: ClusterConfig, ep: EndpointInfo, caller: WorkloadTls | undefined): http2.ClientHttp2Session {
    const k = this.key(cluster, ep, caller);
    let s = this.sessions.get(k);
    if (s && !s.closed && !s.destroyed) return s;
    const mutual = isMutual(ep);
    s = http2.connect(`${mutual ? 'https' : 'http'}://${ep.address}:${ep.port}`, {
      createConnection: () => openUpstream(cluster, ep, caller, ['h2']),
      peerMaxConcurrentStreams: 1000,
    });
    const sess = s;
    const drop = () => {
      if (this.sessions.get(k) === sess) this.sessions.delete(k);
    };
    s.on('close', drop);
    s.on('goaway', drop);
    s.on('error', drop);
    // Idle sessions should not keep the process alive.
    s.unref();
    this.sessions.set(k, s);
    return s;
  }

  /**
   * Forgets pools for endpoints no longer present or made with a superseded certificate. Idle sockets
   * close now; sockets carrying a request finish it and are not reused (no in-flight request is cut).
   */
  prune(alive: (ep: EndpointInfo, cluster: ClusterConfig) => boolean): void {
    for (const [k, a] of this.agents) {
      const stale = a.caller !== undefined && a.caller.generation !== a.generation;
      if (stale || !alive(a.ep, a.cluster)) {
        this.agents.delete(k);
        a.live = false;
        a.h1?.retire();
        if (a.agent !== undefined) {
          a.agent.keepSocketAlive = () => false;
          for (const list of Object.values(a.agent.freeSockets)) for (const sock of list ?? []) sock.destroy();
        }
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const a of this.agents.values()) {
      a.live = false;
      a.agent?.destroy();
      a.h1?.retire();
    }
    for (const s of this.sessions.values()) s.close();
    this.agents.clear();
    this.sessions.clear();
  }
}
