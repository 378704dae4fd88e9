// The service registry: services and workload instances from config plus the workloads proxies register on connect.
import { isIP } from 'node:net';
import type { Resource, WorkloadSpec } from '../api/types.js';
import { resolveHost, spiffeId, trustDomainOf } from '../api/names.js';
import type { PortProtocol, RegistrySnapshot, ServiceInfo, WorkloadInstance } from './model.js';
import { buildStaticView, inferProtocol, mergeServices, parseLocality, StaticInstanceCache, type StaticView } from './registry-static.js';
import { ProxyPortAllocator, type ProxyPorts } from './proxy-ports.js';

/** One entry of a proxy's `node.metadata.WORKLOADS` (docs/xds-contract.md). */
export interface ProxyWorkloadMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  serviceAccount?: string;
  service?: string;
  ports?: { name?: string; port: number; protocol?: string }[];
  address?: string;
  inboundPort?: number;
  outboundPort?: number;
  adminPort?: number;
  locality?: string | { region?: string; zone?: string; subZone?: string };
  /** The proxy's metrics and admin ports (where the control plane scrapes it and relays tap). */
  telemetry?: { metricsPort?: number; adminPort?: number };
}

/** What a join token allows: registering workloads of this namespace and service account. */
export interface TokenGrant {
  namespace: string;
  serviceAccount: string;
}

/** A registration the proxy is not allowed to make, or that makes no sense; the message says which and why. */
export class RegistrationError extends Error {}

export interface RegistryOptions {
  stateDir?: string;
  /** How long a disconnected proxy's workloads stay (as UNHEALTHY) before leaving; default 30 s. */
  graceMs?: number;
}

interface ProxyEntry {
  id: string;
  metas: ProxyWorkloadMeta[];
  connected: boolean;
  timer?: NodeJS.Timeout;
  /**
   * Its instances as last built: valid while service membership (`Registry.members`), `connected` and the
   * Workload resource each entry names are what they were then.
   */
  built?: { members: object; connected: boolean; resources: (Resource | undefined)[]; list: WorkloadInstance[] };
}

/** Instances derived from one static view alone (config-only instances, declared workloads), built once per view. */
interface ViewCache {
  view: StaticView;
  instances?: WorkloadInstance[];
  declared: Map<string, WorkloadInstance>;
}

export class Registry {
  private resources: readonly Resource[] = [];
  private view: StaticView = { services: [], instances: [], workloads: new Map() };
  private trustDomain = 'cluster.local';
  private readonly proxies = new Map<string, ProxyEntry>();
  private readonly ports: ProxyPortAllocator;
  private readonly listeners = new Set<() => void>();
  private cached: RegistrySnapshot | undefined;
  private byProxy = new Map<string, WorkloadInstance[]>();
  /** Proxy ids in build order, until one arrives or leaves. */
  private order: string[] | undefined;
  private viewCache: ViewCache | undefined;
  /**
   * Replaced when what decides an instance's services and identity changes (services' namespaces, names and
   * selectors; the trust domain): a new VirtualService or a moved WorkloadEntry leaves the proxies' instances be.
   */
  private members: object = {};
  private membersKey = '';
  /** Config-only instances by the resource they come from, reused by the next view while membership holds. */
  private readonly staticCache = new StaticInstanceCache();
  readonly graceMs: number;

  constructor(opts: RegistryOptions = {}) {
    this.ports = new ProxyPortAllocator(opts.stateDir);
    this.graceMs = opts.graceMs ?? 30_000;
  }

  /** Replaces the static part (a new config revision). */
  setResources(resources: readonly Resource[]): void {
    this.resources = resources;
    this.trustDomain = trustDomainOf(resources);
    this.view = buildStaticView(resources, this.trustDomain, this.staticCache);
    const key = this.staticCache.key; // membershipKey of this view
    if (key !== this.membersKey) {
      this.membersKey = key;
      this.members = {};
    }
    const needPorts = [...this.view.workloads.entries()]
      .filter(([, w]) => !(w.spec?.proxy?.inboundPort && w.spec?.proxy?.outboundPort))
      .map(([k]) => k)
      .sort();
    for (const k of needPorts) this.ports.allocate(k, () => this.reservedPorts());
    this.changed();
  }

  /** Proxy ports of a Workload resource: explicit, else the allocated (persisted) ones. */
  proxyPortsFor(namespace: string, name: string): ProxyPorts {
    const key = `${namespace}/${name}`;
    const p = this.view.workloads.get(key)?.spec?.proxy;
    const alloc = p?.inboundPort && p?.outboundPort ? undefined : this.ports.allocate(key, () => this.reservedPorts());
    return {
      inboundPort: p?.inboundPort ?? alloc!.inboundPort,
      outboundPort: p?.outboundPort ?? alloc!.outboundPort,
      adminPort: p?.adminPort ?? alloc?.adminPort ?? 0,
    };
  }

  /**
   * Registers (or re-registers) the workloads a proxy hosts. `grant` is what its token allows;
   * 'any' skips the check (no token verifier configured). Throws RegistrationError and changes nothing on refusal.
   */
  registerProxy(proxyId: string, metas: ProxyWorkloadMeta[], grant: TokenGrant | TokenGrant[] | 'any' | undefined): WorkloadInstance[] {
    for (const m of metas) this.checkMeta(m, grant);
    const prev = this.proxies.get(proxyId);
    if (prev?.timer) clearTimeout(prev.timer);
    if (!prev) this.order = undefined;
    // Computed directly, not through a full snapshot: 1,000 proxies connecting must not cost 1,000 rebuilds.
    const mine = metas.map((m) => this.liveInstance(proxyId, m, true));
    for (const w of mine) w.services = mergeServices(w, this.view.services);
    this.proxies.set(proxyId, { id: proxyId, metas, connected: true, built: { members: this.members, connected: true, resources: this.resourcesOf(metas), list: mine } });
    this.changed();
    return mine;
  }

  /** Marks a proxy's workloads UNHEALTHY; they leave after the grace period unless it comes back. */
  proxyDisconnected(proxyId: string): void {
    const e = this.proxies.get(proxyId);
    if (!e || !e.connected) return;
    e.connected = false;
    e.timer = setTimeout(() => {
      if (this.proxies.get(proxyId) === e && !e.connected) {
        this.proxies.delete(proxyId);
        this.order = undefined;
        this.changed();
      }
    }, this.graceMs);
    e.timer.unref();
    this.changed();
  }

  proxyWorkloads(proxyId: string): WorkloadInstance[] {
    this.snapshot();
    return this.byProxy.get(proxyId) ?? [];
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  snapshot(): RegistrySnapshot {
    if (!this.cached) this.cached = this.build(true);
    return this.cached;
  }

  /** The snapshot rebuilt from scratch, ignoring every cache (tests compare it with `snapshot()`). */
  fullRebuild(): RegistrySnapshot {
    return this.build(false);
  }

  close(): void {
    for (const e of this.proxies.values()) clearTimeout(e.timer);
  }

  private changed(): void {
    this.cached = undefined;
    for (const l of [...this.listeners]) l();
  }

  private checkMeta(m: ProxyWorkloadMeta, grant: TokenGrant | TokenGrant[] | 'any' | undefined): void {
    if (!m || typeof m.name !== 'string' || !m.name) throw new RegistrationError('a WORKLOADS entry has no name');
    const ns = m.namespace || 'default';
    const where = `workload ${ns}/${m.name}`;
    const sa = this.serviceAccountOf(m, this.view.workloads.get(`${ns}/${m.name}`));
    if (grant === undefined) {
      throw new RegistrationError(`${where}: no valid join token (send "authorization: Bearer <token>"; create one with \`trellis token create\`)`);
    }
    if (grant !== 'any') {
      const grants = Array.isArray(grant) ? grant : [grant];
      if (!grants.some((g) => g.namespace === ns && g.serviceAccount === sa)) {
        const granted = grants.map((g) => `${g.namespace}/${g.serviceAccount}`).join(', ');
        throw new RegistrationError(`${where}: its service account ${ns}/${sa} is not allowed by the join token (which grants ${granted})`);
      }
    }
    const addr = m.address;
    if (addr !== undefined && addr !== '' && isIP(addr) === 0) throw new RegistrationError(`${where}: address "${addr}" is not an IP literal`);
    for (const p of m.ports ?? []) {
      if (!Number.isInteger(p?.port) || p.port <= 0 || p.port > 65535) throw new RegistrationError(`${where}: invalid port ${JSON.stringify(p)}`);
    }
  }

  private serviceAccountOf(m: ProxyWorkloadMeta, res: Resource<WorkloadSpec> | undefined): string {
    const service = res?.spec?.service ?? m.service;
    return res?.spec?.serviceAccount || m.serviceAccount || (service ? service.split('.')[0] : '') || m.name;
  }

  private reservedPorts(): Set<number> {
    const out = new Set<number>();
    for (const w of this.view.workloads.values()) {
      const p = w.spec?.proxy;
      for (const n of [p?.inboundPort, p?.outboundPort, p?.adminPort, p?.metricsPort]) if (n) out.add(n);
      for (const wp of w.spec?.ports ?? []) out.add(wp.port);
    }
    for (const e of this.proxies.values())
      for (const m of e.metas) for (const n of [m.inboundPort, m.outboundPort, m.adminPort]) if (n) out.add(n);
    return out;
  }

  /**
   * WorkloadEntry and ServiceEntry instances with their services. An instance whose resource and membership did not
   * change is the same object again (the view reuses it, see StaticInstanceCache): the compiler reuses a load
   * assignment while its members are the same objects, so a config change elsewhere does not rebuild every assignment.
   * Uncached (the full rebuild tests compare against): fresh copies.
   */
  private staticInstances(view: StaticView, cached: boolean): WorkloadInstance[] {
    if (cached) return view.instances;
    return view.instances.map((inst) => ({ ...inst, services: mergeServices(inst, view.services) }));
  }

  /** The Workload resource each registration entry names (its fields win over the proxy's), by identity. */
  private resourcesOf(metas: ProxyWorkloadMeta[]): (Resource | undefined)[] {
    return metas.map((m) => this.view.workloads.get(`${m.namespace || 'default'}/${m.name}`));
  }

  private liveInstance(proxyId: string, m: ProxyWorkloadMeta, connected: boolean): WorkloadInstance {
    const ns = m.namespace || 'default';
    const res = this.view.workloads.get(`${ns}/${m.name}`);
    const spec = res?.spec ?? ({} as Partial<WorkloadSpec>);
    const service = spec.service ?? m.service;
    const sa = this.serviceAccountOf(m, res);
    const inbound = spec.proxy?.inboundPort ?? m.inboundPort;
    const outbound = spec.proxy?.outboundPort ?? m.outboundPort;
    const alloc = inbound && outbound ? undefined : this.ports.allocate(`${ns}/${m.name}`, () => this.reservedPorts());
    const ports = spec.ports ?? m.ports ?? [];
    return {
      name: m.name,
      namespace: ns,
      labels: { ...(m.labels ?? {}), ...(res?.metadata.labels ?? {}) },
      serviceAccount: sa,
      identity: spiffeId(this.trustDomain, ns, sa),
      services: service ? [resolveHost(service, ns)] : [],
      address: m.address || spec.address || '127.0.0.1',
      ports: ports.map((p) => ({ name: p.name, port: p.port, protocol: inferProtocol(p.protocol, p.name, 'HTTP') as PortProtocol })),
      proxy: {
        id: proxyId,
        inboundPort: inbound ?? alloc!.inboundPort,
        outboundPort: outbound ?? alloc!.outboundPort,
        adminPort: spec.proxy?.adminPort ?? m.adminPort ?? alloc?.adminPort,
        ...telemetryPorts(m.telemetry),
      },
      locality: spec.locality ?? parseLocality(m.locality),
      health: connected ? 'HEALTHY' : 'UNHEALTHY',
      source: 'proxy',
    };
  }

  /** A declared Workload whose proxy has not connected: an UNHEALTHY endpoint, so callers see it exists. */
  private declaredInstance(key: string, res: Resource<WorkloadSpec>): WorkloadInstance {
    const ns = key.split('/')[0];
    const sa = this.serviceAccountOf({ name: res.metadata.name }, res);
    const pp = this.proxyPortsFor(ns, res.metadata.name);
    return {
      name: res.metadata.name,
      namespace: ns,
      labels: { ...(res.metadata.labels ?? {}) },
      serviceAccount: sa,
      identity: spiffeId(this.trustDomain, ns, sa),
      services: res.spec?.service ? [resolveHost(res.spec.service, ns)] : [],
      address: res.spec?.address || '127.0.0.1',
      ports: (res.spec?.ports ?? []).map((p) => ({ name: p.name, port: p.port, protocol: inferProtocol(p.protocol, p.name, 'HTTP') })),
      proxy: { id: '', inboundPort: pp.inboundPort, outboundPort: pp.outboundPort, adminPort: pp.adminPort || undefined },
      locality: res.spec?.locality,
      health: 'UNHEALTHY',
      source: 'Workload',
    };
  }

  /**
   * `cached`: reuse what did not change since the last build (each proxy's instances while its registration, its
   * connection state and the static view are the same; the view's own instances once per view). A proxy
   * connecting used to cost a full rebuild (5,000 instances against 200 selectors, ~7 ms), 1,000 times per sync.
   */
  private build(cached: boolean): RegistrySnapshot {
    const view = this.view;
    if (!cached || this.viewCache?.view !== view) {
      const vc: ViewCache = { view, declared: new Map() };
      if (!cached) return this.assemble(vc, false);
      this.viewCache = vc;
    }
    return this.assemble(this.viewCache!, true);
  }

  private assemble(vc: ViewCache, cached: boolean): RegistrySnapshot {
    const { view } = vc;
    const services = view.services;
    const byProxy = new Map<string, WorkloadInstance[]>();
    const live = new Set<string>();
    const workloads: WorkloadInstance[] = [];
    let order = cached ? this.order : undefined;
    if (!order) {
      order = [...this.proxies.keys()].sort((a, b) => a.localeCompare(b));
      if (cached) this.order = order;
    }
    for (const id of order) {
      const e = this.proxies.get(id)!;
      const b = cached ? e.built : undefined;
      const resources = this.resourcesOf(e.metas);
      let list = b && b.members === this.members && b.connected === e.connected && resources.every((r, i) => r === b.resources[i]) ? b.list : undefined;
      if (!list) {
        list = e.metas.map((m) => this.liveInstance(e.id, m, e.connected));
        for (const w of list) w.services = mergeServices(w, services);
        if (cached) e.built = { members: this.members, connected: e.connected, resources, list };
      }
      for (const w of list) {
        live.add(`${w.namespace}/${w.name}`);
        workloads.push(w);
      }
      byProxy.set(e.id, list);
    }
    for (const [key, res] of [...view.workloads].sort(([a], [b]) => a.localeCompare(b))) {
      if (live.has(key)) continue;
      let w = vc.declared.get(key);
      if (!w) {
        w = this.declaredInstance(key, res);
        w.services = mergeServices(w, services);
        vc.declared.set(key, w);
      }
      workloads.push(w);
    }
    vc.instances ??= this.staticInstances(view, cached);
    for (const inst of vc.instances) workloads.push(inst);
    if (cached) this.byProxy = byProxy;
    return { services: resolveNamedTargetPorts(services, workloads), workloads };
  }
}

/** A Service targetPort given by name resolves to the port of that name on a member instance. */
function resolveNamedTargetPorts(services: ServiceInfo[], workloads: WorkloadInstance[]): ServiceInfo[] {
  return services.map((s) => {
    if (!s.ports.some((p) => 'targetPortName' in p)) return s;
    const members = workloads.filter((w) => w.services.includes(s.fqdn));
    return {
      ...s,
      ports: s.ports.map((p) => {
        const { targetPortName, ...rest } = p as typeof p & { targetPortName?: string };
        if (!targetPortName) return rest;
        const hit = members.flatMap((w) => w.ports).find((wp) => wp.name === targetPortName);
        return { ...rest, targetPort: hit?.port ?? rest.port };
      }),
    };
  });
}

/** Only valid port numbers from a proxy's telemetry metadata. */
function telemetryPorts(t: ProxyWorkloadMeta['telemetry']): { telemetry?: { metricsPort?: number; adminPort?: number } } {
  if (!t || typeof t !== 'object') return {};
  const ok = (n: unknown) => (Number.isInteger(n) && (n as number) > 0 && (n as number) <= 65535 ? (n as number) : undefined);
  const metricsPort = ok(t.metricsPort);
  const adminPort = ok(t.adminPort);
  return metricsPort || adminPort ? { telemetry: { ...(metricsPort ? { metricsPort } : {}), ...(adminPort ? { adminPort } : {}) } } : {};
}
