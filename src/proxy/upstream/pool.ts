// Reusable upstream connections per (caller identity, endpoint, SNI): a keep-alive HTTP/1.1 agent or one HTTP/2 session.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { ClusterConfig } from '../config/types.js';
import { isMutual, meshMeta, type EndpointInfo } from '../policy-api.js';
import type { WorkloadTls } from '../tls/identity.js';
import { openUpstream, upstreamSni } from './connect.js';

/** Idle pooled sockets are closed before the app's usual keep-alive timeout (node: 5s) to avoid reusing a dying one. */
const IDLE_MS = 4000;

class MeshAgent extends http.Agent {
  constructor(
    private readonly cluster: ClusterConfig,
    private readonly ep: EndpointInfo,
    private readonly caller: WorkloadTls | undefined,
  ) {
    super({ keepAlive: true, maxSockets: 512, maxFreeSockets: 64, timeout: IDLE_MS, scheduling: 'lifo' });
  }
  override createConnection(): Socket {
    return openUpstream(this.cluster, this.ep, this.caller, ['http/1.1']);
  }
}

export class UpstreamPool {
  private agents = new Map<string, { agent: MeshAgent; cluster: ClusterConfig; ep: EndpointInfo; caller?: WorkloadTls; generation: number }>();
  private sessions = new Map<string, http2.ClientHttp2Session>();
  private closed = false;

  private key(cluster: ClusterConfig, ep: EndpointInfo, caller: WorkloadTls | undefined): string {
    return `${caller?.spiffeId ?? ''}|${caller?.generation ?? 0}|${ep.address}:${ep.port}|${upstreamSni(cluster, ep)}|${meshMeta(ep).identity ?? ''}|${cluster.connectTimeoutMs}`;
  }

  agent(cluster: ClusterConfig, ep: EndpointInfo, caller: WorkloadTls | undefined): http.Agent {
    const k = this.key(cluster, ep, caller);
    let a = this.agents.get(k);
    if (!a) {
      a = { agent: new MeshAgent(cluster, ep, caller), cluster, ep, caller, generation: caller?.generation ?? 0 };
      this.agents.set(k, a);
    }
    return a.agent;
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
        a.agent.keepSocketAlive = () => false;
        for (const list of Object.values(a.agent.freeSockets)) for (const sock of list ?? []) sock.destroy();
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const a of this.agents.values()) a.agent.destroy();
    for (const s of this.sessions.values()) s.close();
    this.agents.clear();
    this.sessions.clear();
  }
}
