// Pure translation of config resources into registry services and static workload instances.
import type { Resource, ServiceEntrySpec, ServiceSpec, WorkloadEntrySpec, WorkloadSpec } from '../api/types.js';
import { hostAliases, namespaceOf, resolveHost, serviceFqdn, spiffeId } from '../api/names.js';
import type { Locality, PortProtocol, ServiceInfo, ServicePort, WorkloadInstance } from './model.js';

const PROTOCOLS: PortProtocol[] = ['HTTP2', 'HTTPS', 'HTTP', 'GRPC', 'TCP', 'TLS'];

/** Protocol from an explicit value, an appProtocol, or an Istio-style port name prefix (`http-web`, `grpc`). */
export function inferProtocol(explicit: string | undefined, name: string | undefined, fallback: PortProtocol): PortProtocol {
  for (const v of [explicit, name?.split('-')[0]]) {
    if (!v) continue;
    const u = v.toUpperCase();
    if (u === 'H2C' || u === 'KUBERNETES.IO/H2C') return 'HTTP2';
    if (u === 'GRPC-WEB') return 'HTTP';
    if ((PROTOCOLS as string[]).includes(u)) return u as PortProtocol;
  }
  return fallback;
}

export function parseLocality(l: string | Locality | undefined): Locality | undefined {
  if (!l) return undefined;
  if (typeof l === 'object') return l;
  const [region, zone, subZone] = l.split('/');
  return { region: region || undefined, zone: zone || undefined, subZone: subZone || undefined };
}

export function labelsMatch(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

export interface StaticWorkload {
  /** ns/name */
  key: string;
  resource: Resource<WorkloadSpec>;
}

export interface StaticView {
  services: ServiceInfo[];
  /** WorkloadEntry and ServiceEntry endpoint instances (no proxy). */
  instances: WorkloadInstance[];
  /** Workload resources by ns/name: instances appear once their proxy ports are known. */
  workloads: Map<string, Resource<WorkloadSpec>>;
}

/**
 * What decides an instance's services and identity: the trust domain and every service's namespace, name and
 * selector. Equal keys: an unchanged WorkloadEntry or ServiceEntry yields the very same instances.
 */
export function membershipKey(trustDomain: string, services: readonly ServiceInfo[]): string {
  return [trustDomain, ...services.map((s) => `${s.namespace}\u0000${s.fqdn}\u0000${JSON.stringify(s.selector ?? null)}`)].join('\u0001');
}

/**
 * The instances made from each WorkloadEntry/ServiceEntry object for one membership key, kept across views: the store
 * keeps the objects it committed, so a change to one entry among 4,000 builds one instance, not 4,000 (each change
 * used to make ~3 MB of instances that were garbage at once).
 */
export class StaticInstanceCache {
  key = '';
  byResource = new WeakMap<object, WorkloadInstance[]>();
}

export function buildStaticView(resources: readonly Resource[], trustDomain: string, cache?: StaticInstanceCache): StaticView {
  const services = new Map<string, ServiceInfo>();
  const instances: WorkloadInstance[] = [];
  const workloads = new Map<string, Resource<WorkloadSpec>>();
  const entries: Resource[] = [];

  for (const r of resources) {
    const ns = namespaceOf(r);
    if (r.kind === 'Service') {
      const spec = (r.spec ?? {}) as ServiceSpec;
      const fqdn = serviceFqdn(r.metadata.name, ns);
      services.set(fqdn, {
        name: r.metadata.name,
        namespace: ns,
        fqdn,
        aliases: hostAliases(r.metadata.name, ns),
        ports: (spec.ports ?? []).map((p) => ({
          name: p.name,
          port: p.port,
          targetPort: typeof p.targetPort === 'number' ? p.targetPort : p.port,
          protocol: inferProtocol(p.appProtocol, p.name, 'HTTP'),
          ...(typeof p.targetPort === 'string' ? { targetPortName: p.targetPort } : {}),
        })) as ServicePort[],
        selector: spec.selector && Object.keys(spec.selector).length ? spec.selector : undefined,
        source: 'Service',
      });
    } else if (r.kind === 'Workload') {
      workloads.set(`${ns}/${r.metadata.name}`, r as Resource<WorkloadSpec>);
    }
  }

  for (const r of resources) {
    const ns = namespaceOf(r);
    if (r.kind === 'ServiceEntry') {
      const spec = (r.spec ?? {}) as ServiceEntrySpec;
      const ports = serviceEntryPorts(spec);
      const hosts = (spec.hosts ?? []).map((h) => h.toLowerCase());
      for (const host of hosts) {
        if (services.has(host)) continue;
        services.set(host, {
          name: r.metadata.name,
          namespace: ns,
          fqdn: host,
          aliases: [host],
          ports,
          selector: spec.workloadSelector?.labels,
          source: 'ServiceEntry',
        });
      }
      entries.push(r);
    } else if (r.kind === 'WorkloadEntry') {
      entries.push(r);
    }
  }

  // A Workload naming an undeclared service implies it, with the workload's ports.
  for (const [, w] of workloads) {
    const ns = namespaceOf(w);
    const svcName = w.spec?.service;
    if (!svcName) continue;
    const fqdn = resolveHost(svcName, ns);
    const existing = services.get(fqdn);
    const ports: ServicePort[] = (w.spec.ports ?? []).map((p) => ({
      name: p.name,
      port: p.port,
      targetPort: p.port,
      protocol: inferProtocol(p.protocol, p.name, 'HTTP'),
    }));
    if (!existing) {
      const [name, sns] = fqdn.split('.');
      services.set(fqdn, { name, namespace: sns ?? ns, fqdn, aliases: hostAliases(name, sns ?? ns), ports, source: 'Workload' });
    } else if (existing.source === 'Workload') {
      for (const p of ports) if (!existing.ports.some((q) => q.port === p.port)) existing.ports.push(p);
    }
  }

  const svcList = [...services.values()].sort((a, b) => a.fqdn.localeCompare(b.fqdn));
  const key = cache ? membershipKey(trustDomain, svcList) : '';
  if (cache && cache.key !== key) {
    cache.key = key;
    cache.byResource = new WeakMap();
  }
  for (const r of entries) {
    let made = cache?.byResource.get(r);
    if (!made) {
      made = entryInstances(r, trustDomain);
      for (const inst of made) inst.services = mergeServices(inst, svcList);
      cache?.byResource.set(r, made);
    }
    for (const inst of made) instances.push(inst);
  }
  return { services: svcList, instances, workloads };
}

function serviceEntryPorts(spec: ServiceEntrySpec): ServicePort[] {
  return (spec.ports ?? []).map((p) => ({
    name: p.name,
    port: p.number,
    targetPort: p.targetPort ?? p.number,
    protocol: inferProtocol(p.protocol, p.name, 'TCP'),
  }));
}

/** The instances one WorkloadEntry or ServiceEntry (one per endpoint with an address) stands for, before membership. */
function entryInstances(r: Resource, trustDomain: string): WorkloadInstance[] {
  const ns = namespaceOf(r);
  if (r.kind === 'WorkloadEntry') {
    return [entryInstance(r.metadata.name, ns, (r.spec ?? {}) as WorkloadEntrySpec, trustDomain, 'WorkloadEntry', [], () => undefined, r.metadata.labels)];
  }
  const spec = (r.spec ?? {}) as ServiceEntrySpec;
  const ports = serviceEntryPorts(spec);
  const hosts = (spec.hosts ?? []).map((h) => h.toLowerCase());
  const out: WorkloadInstance[] = [];
  (spec.endpoints ?? []).forEach((ep, i) => {
    if (!ep.address) return;
    out.push(entryInstance(`${r.metadata.name}-${i}`, ns, ep, trustDomain, 'ServiceEntry', hosts, (name) => ports.find((p) => p.name === name)));
  });
  return out;
}

function entryInstance(
  name: string,
  ns: string,
  spec: WorkloadEntrySpec,
  trustDomain: string,
  source: 'WorkloadEntry' | 'ServiceEntry',
  services: string[],
  portOf: (name: string) => ServicePort | undefined,
  metaLabels?: Record<string, string>,
): WorkloadInstance {
  const sa = spec.serviceAccount || 'default';
  return {
    name,
    namespace: ns,
    labels: { ...(metaLabels ?? {}), ...(spec.labels ?? {}) },
    serviceAccount: sa,
    identity: spiffeId(trustDomain, ns, sa),
    services: [...services],
    address: spec.address ?? '',
    ports: Object.entries(spec.ports ?? {}).map(([pname, port]) => ({
      name: pname,
      port,
      protocol: portOf(pname)?.protocol ?? inferProtocol(undefined, pname, 'HTTP'),
    })),
    locality: parseLocality(spec.locality),
    health: 'HEALTHY',
    source,
  };
}

/** Services by (namespace, first selector label and value): a selector can only match instances carrying that label. */
const selectorIndexes = new WeakMap<readonly ServiceInfo[], Map<string, ServiceInfo[]>>();
function selectorIndex(services: readonly ServiceInfo[]): Map<string, ServiceInfo[]> {
  let idx = selectorIndexes.get(services);
  if (idx) return idx;
  idx = new Map();
  for (const s of services) {
    const first = s.selector ? Object.entries(s.selector)[0] : undefined;
    if (!first) continue; // an empty selector matches nothing
    const key = `${s.namespace}\n${first[0]}\n${first[1]}`;
    const list = idx.get(key);
    if (list) list.push(s);
    else idx.set(key, [s]);
  }
  selectorIndexes.set(services, idx);
  return idx;
}

/**
 * Services an instance belongs to: explicit ones plus same-namespace selectors matching its labels. Looked up
 * through the selector index: 5,000 instances against 200 services was a million label checks per registry build.
 * `services` must not change after its first use here (the index is kept per array).
 */
export function mergeServices(inst: WorkloadInstance, services: readonly ServiceInfo[]): string[] {
  const out = new Set(inst.services);
  const idx = selectorIndex(services);
  for (const k in inst.labels) {
    const candidates = idx.get(`${inst.namespace}\n${k}\n${inst.labels[k]}`);
    if (candidates) for (const s of candidates) if (labelsMatch(s.selector, inst.labels)) out.add(s.fqdn);
  }
  return [...out].sort();
}
