// The state store: xDS (or a static config) writes raw resources, the data path reads one immutable compiled snapshot.
import { EventEmitter } from 'node:events';
import { parseCluster, parseListener, parseRootCa } from './config/parse.js';
import type { ClusterConfig, ListenerConfig } from './config/types.js';
import {
  compileRouteTable,
  createBalancer,
  endpointsFromLoadAssignment,
  RequestCounters,
  type Balancer,
  type EndpointInfo,
  type LbPolicy,
  type RouteTable,
} from './policy-api.js';

type Obj = Record<string, any>;

/** Raw decoded resources by name, per kind (what the control plane last sent and we accepted). */
export interface RawResources {
  listeners: Map<string, Obj>;
  routes: Map<string, Obj>;
  clusters: Map<string, Obj>;
  endpoints: Map<string, Obj>;
  secrets: Map<string, Obj>;
}

export function emptyRaw(): RawResources {
  return { listeners: new Map(), routes: new Map(), clusters: new Map(), endpoints: new Map(), secrets: new Map() };
}

export interface ClusterState {
  config: ClusterConfig;
  endpoints: EndpointInfo[];
  balancer: Balancer;
  /** False until EDS delivered this cluster's endpoints. */
  hasEndpoints: boolean;
  /**
   * On-demand EDS: present while this EDS cluster's endpoints were never received and can be asked for. The request
   * path calls it before picking: it subscribes the cluster and resolves with the newest snapshot once the endpoints
   * arrived or `timeoutMs` passed (then the usual "no endpoints" error explains the failure).
   */
  fetchEndpoints?: (timeoutMs: number) => Promise<ProxyState>;
}

export interface ProxyState {
  version: number;
  listeners: Map<string, ListenerConfig>;
  routes: Map<string, RouteTable>;
  clusters: Map<string, ClusterState>;
  trustBundlePem?: string;
  raw: RawResources;
  /** Names referenced but not (yet) delivered: empty means the config is complete. */
  missing: string[];
}

interface Cache {
  listeners: WeakMap<Obj, ListenerConfig>;
  routes: WeakMap<Obj, RouteTable>;
  clusters: WeakMap<Obj, ClusterConfig>;
  balancers: Map<string, { cfg: ClusterConfig; cla: Obj | undefined; state: ClusterState }>;
  /** In-flight counts per cluster survive EDS updates (requests started on an old picker end on the new one). */
  counters: Map<string, RequestCounters>;
}

/**
 * Compiles raw resources into a snapshot. `expected`: on-demand EDS, the EDS names (or cluster names) whose
 * endpoints count as missing until delivered; without it every EDS cluster's endpoints do. Throws with the resource's name when something cannot be used. */
export function compileState(raw: RawResources, version: number, cache: Cache = newCache(), expected?: ReadonlySet<string>): ProxyState {
  const listeners = new Map<string, ListenerConfig>();
  const routes = new Map<string, RouteTable>();
  const clusters = new Map<string, ClusterState>();
  const missing: string[] = [];
  for (const [name, l] of raw.listeners) {
    let cfg = cache.listeners.get(l);
    if (!cfg) {
      cfg = parseListener(l);
      cache.listeners.set(l, cfg);
    }
    listeners.set(name, cfg);
    if (cfg.routeConfigName && !raw.routes.has(cfg.routeConfigName)) missing.push(`route ${cfg.routeConfigName}`);
  }
  for (const [name, rc] of raw.routes) {
    let t = cache.routes.get(rc);
    if (!t) {
      try {
        t = compileRouteTable(rc as never);
      } catch (err) {
        throw new Error(`route configuration ${name}: ${(err as Error).message}`);
      }
      cache.routes.set(rc, t);
    }
    routes.set(name, t);
  }
  const nextBalancers = new Map<string, { cfg: ClusterConfig; cla: Obj | undefined; state: ClusterState }>();
  for (const [name, c] of raw.clusters) {
    let cfg = cache.clusters.get(c);
    if (!cfg) {
      cfg = parseCluster(c);
      cache.clusters.set(c, cfg);
    }
    const cla = cfg.type === 'STATIC' ? cfg.loadAssignment : raw.endpoints.get(cfg.edsServiceName);
    // On-demand EDS (`expected` given): only the endpoints the proxy is told to warm hold readiness back.
    if (!cla && (!expected || expected.has(cfg.edsServiceName) || expected.has(name))) missing.push(`endpoints ${cfg.edsServiceName}`);
    const prev = cache.balancers.get(name);
    let state: ClusterState;
    if (prev && prev.cfg === cfg && prev.cla === cla) state = prev.state;
    else {
      let endpoints: EndpointInfo[];
      try {
        endpoints = cla ? endpointsFromLoadAssignment(cla) : [];
      } catch (err) {
        throw new Error(`endpoints ${cfg.edsServiceName}: ${(err as Error).message}`);
      }
      state = {
        config: cfg,
        endpoints,
        balancer: createBalancer({ policy: cfg.lbPolicy as LbPolicy, endpoints, localityAware: cfg.localityAware, counters: countersFor(cache, name) }),
        hasEndpoints: Boolean(cla),
      };
    }
    nextBalancers.set(name, { cfg, cla, state });
    clusters.set(name, state);
  }
  cache.balancers = nextBalancers;
  for (const name of cache.counters.keys()) if (!raw.clusters.has(name)) cache.counters.delete(name);
  let trustBundlePem: string | undefined;
  const root = raw.secrets.get('ROOTCA');
  if (root) trustBundlePem = parseRootCa(root);
  return { version, listeners, routes, clusters, trustBundlePem, raw, missing };
}

function newCache(): Cache {
  return { listeners: new WeakMap(), routes: new WeakMap(), clusters: new WeakMap(), balancers: new Map(), counters: new Map() };
}

function countersFor(cache: Cache, cluster: string): RequestCounters {
  let c = cache.counters.get(cluster);
  if (!c) {
    c = new RequestCounters();
    cache.counters.set(cluster, c);
  }
  return c;
}

/**
 * Holds the current snapshot. `update` compiles a candidate and swaps it in only when it compiles,
 * so a bad resource never replaces the last good config. Emits 'change' (state, previous), and with on-demand EDS
 * 'demand' (EDS service name) when the data path first needs a cluster's endpoints.
 */
export class StateStore extends EventEmitter {
  private cache = newCache();
  private version = 0;
  current: ProxyState = compileState(emptyRaw(), 0);
  /** True once LDS and CDS were delivered at least once (static config counts). */
  received = { listeners: false, clusters: false };
  /**
   * On-demand EDS (set by the xDS client): endpoints are subscribed per cluster when the data path first needs them;
   * `warm` names (EDS service or cluster names) are subscribed from the start and hold readiness back.
   * Undefined: every EDS cluster's endpoints are expected (static config, or subscribing to all).
   */
  private onDemand: { warm: ReadonlySet<string> } | undefined;
  /** EDS service names the data path asked for (on-demand). */
  readonly demanded = new Set<string>();
  /** Requests waiting for a cluster's first endpoints, by cluster name. */
  private waiters = new Map<string, Set<() => void>>();

  /** Switches to on-demand EDS (before the first update). */
  setOnDemand(warm: Iterable<string> = []): void {
    this.onDemand = { warm: new Set(warm) };
  }

  get isOnDemand(): boolean {
    return this.onDemand !== undefined;
  }

  /** Warm names of on-demand EDS (empty otherwise). */
  get warm(): ReadonlySet<string> {
    return this.onDemand?.warm ?? new Set();
  }

  /** Tries `raw`; returns undefined on success or the error message (the caller NACKs with it). */
  update(raw: RawResources, delivered?: 'listeners' | 'clusters'): string | undefined {
    let next: ProxyState;
    try {
      next = compileState(raw, this.version + 1, this.cache, this.onDemand?.warm);
    } catch (err) {
      return (err as Error).message;
    }
    this.version++;
    if (delivered) this.received[delivered] = true;
    if (this.onDemand) {
      for (const [name, cs] of next.clusters) {
        if (!cs.hasEndpoints && cs.config.type !== 'STATIC' && !cs.fetchEndpoints) cs.fetchEndpoints = (ms) => this.whenEndpoints(name, ms);
      }
    }
    const prev = this.current;
    this.current = next;
    this.emit('change', next, prev);
    if (this.waiters.size) {
      for (const [name, fns] of [...this.waiters]) {
        const cs = next.clusters.get(name);
        if (!cs || cs.hasEndpoints) for (const fn of [...fns]) fn();
      }
    }
    return undefined;
  }

  /** Records that the data path needs `edsName`'s endpoints; the xDS client subscribes them on 'demand'. */
  demand(edsName: string): void {
    if (!this.onDemand || this.demanded.has(edsName)) return;
    this.demanded.add(edsName);
    this.emit('demand', edsName);
  }

  /**
   * Resolves with the newest snapshot once cluster `name` has received endpoints (or is gone), or after `timeoutMs`.
   * Every request waiting on one cluster shares one subscription.
   */
  whenEndpoints(name: string, timeoutMs: number): Promise<ProxyState> {
    const cs = this.current.clusters.get(name);
    if (!cs || cs.hasEndpoints || !this.onDemand) return Promise.resolve(this.current);
    this.demand(cs.config.edsServiceName);
    return new Promise((resolve) => {
      let set = this.waiters.get(name);
      if (!set) this.waiters.set(name, (set = new Set()));
      const done = () => {
        clearTimeout(timer);
        set!.delete(done);
        if (!set!.size && this.waiters.get(name) === set) this.waiters.delete(name);
        resolve(this.current);
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      set.add(done);
    });
  }

  /** The first full config is in place: listeners and clusters delivered and every referenced name present. */
  complete(): boolean {
    return this.received.listeners && this.received.clusters && this.current.missing.length === 0;
  }
}
