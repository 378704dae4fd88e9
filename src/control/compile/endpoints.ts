// Registry instances -> ClusterLoadAssignment: service members, subset labels, localities, health, endpoint metadata.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { RegistrySnapshot, ServiceInfo, ServicePort, WorkloadInstance } from '../model.js';
import { Interner } from './intern.js';
import { type LocalityPlan, compactPriorities } from './locality.js';
import { memo } from './memo.js';
import { labelsMatch, trellisMetadata } from './util.js';

/** Load assignments by cluster name and content: an unchanged cluster keeps its object across generations. */
export const loadAssignments = new Interner();

/** The instances backing a service: by Service selector over labels (same namespace) or by membership. */
export function serviceMembers(registry: RegistrySnapshot, svc: ServiceInfo): WorkloadInstance[] {
  return memo(registry, `members:${svc.fqdn}`, () => computeMembers(registry, svc));
}

/** Instances by service membership and by (namespace, label=value), once per registry snapshot. */
interface MemberIndex {
  byService: Map<string, Set<WorkloadInstance>>;
  byLabel: Map<string, WorkloadInstance[]>;
}

function memberIndex(registry: RegistrySnapshot): MemberIndex {
  return memo(registry, 'memberIndex', () => {
    const byService = new Map<string, Set<WorkloadInstance>>();
    const byLabel = new Map<string, WorkloadInstance[]>();
    for (const w of registry.workloads) {
      for (const s of w.services) {
        let set = byService.get(s);
        if (!set) byService.set(s, (set = new Set()));
        set.add(w);
      }
      for (const [k, v] of Object.entries(w.labels)) {
        const key = `${w.namespace}\n${k}\n${v}`;
        let list = byLabel.get(key);
        if (!list) byLabel.set(key, (list = []));
        list.push(w);
      }
    }
    return { byService, byLabel };
  });
}

function computeMembers(registry: RegistrySnapshot, svc: ServiceInfo): WorkloadInstance[] {
  // Every service against every instance is 1,000,000 label checks at 200 services and 5,000 endpoints, on every
  // registry change; the index narrows a selector to the instances carrying its first label.
  const idx = memberIndex(registry);
  const members = idx.byService.get(svc.fqdn) ?? new Set<WorkloadInstance>();
  const selector = svc.selector && Object.keys(svc.selector).length > 0 ? svc.selector : undefined;
  let candidates: Set<WorkloadInstance> = members;
  if (selector) {
    // A Kubernetes Service selects in its own namespace; a ServiceEntry's workloadSelector likewise.
    const [k, v] = Object.entries(selector)[0];
    const picked = (idx.byLabel.get(`${svc.namespace}\n${k}\n${v}`) ?? []).filter((w) => labelsMatch(selector, w.labels));
    if (picked.length) candidates = new Set([...members, ...picked]);
  }
  // Registry order, as before the index existed.
  return registry.workloads.length <= candidates.size * 4
    ? registry.workloads.filter((w) => candidates.has(w))
    : [...candidates].sort((a, b) => order(registry, a) - order(registry, b));
}

function order(registry: RegistrySnapshot, w: WorkloadInstance): number {
  return memo(registry, 'order', () => new Map(registry.workloads.map((x, i) => [x, i]))).get(w) ?? 0;
}

/** The port the app of `w` listens on for service port `sp` (a same-named instance port wins, as with WorkloadEntry). */
export function targetPortOf(w: WorkloadInstance, sp: ServicePort): number {
  if (sp.name) {
    const named = w.ports.find((p) => p.name === sp.name);
    if (named) return named.port;
  }
  return sp.targetPort || sp.port;
}

export interface EndpointNotes {
  push(note: string): void;
}

/** One endpoint as the CLA will carry it (plain: Structs are built only when the CLA is new). */
interface Ep {
  address: string;
  port: number;
  hostname: string;
  health: string;
  workload: string;
  identity: string;
  targetPort: number;
  tls: 'mutual' | 'none';
}

/** The last load assignment built per cluster (without a locality plan), with what it was built from. */
interface LastBuilt {
  /** Port and subset the assignment was built for. */
  key: string;
  /** The service's members, by identity: the registry hands out the same instance objects while they are unchanged. */
  members: readonly WorkloadInstance[];
  notes: string[];
  internKey: string;
  cla: Record<string, unknown>;
}
const lastBuilt = new Map<string, LastBuilt>();
const LAST_BUILT_MAX = 50_000;

/** Forgets every assignment kept for reuse (tests compare reuse with building anew). */
export function forgetBuiltAssignments(): void {
  lastBuilt.clear();
}

function sameRefs(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A ClusterLoadAssignment for `clusterName`: members of `svc` matching `subsetLabels`, grouped by locality.
 * Reused as it is while the service's members are the same instance objects: a push after one proxy registered
 * rebuilt all 200 assignments (filter, sort, fingerprint) for one that changed.
 */
export function loadAssignment(
  clusterName: string,
  registry: RegistrySnapshot,
  svc: ServiceInfo,
  sp: ServicePort,
  subsetLabels: Record<string, string> | undefined,
  notes?: EndpointNotes,
  plan?: LocalityPlan,
): Record<string, unknown> {
  const all = serviceMembers(registry, svc);
  // A locality plan is made per caller (a fresh object): those assignments are built each time.
  const key = plan ? '' : JSON.stringify([sp, subsetLabels ?? null]);
  const last = plan ? undefined : lastBuilt.get(clusterName);
  if (last && last.key === key && sameRefs(last.members, all)) {
    for (const n of last.notes) notes?.push(n);
    // Through the interner, so the object stays the one handed out while it is in use.
    return loadAssignments.get(last.internKey, '', () => last.cla);
  }
  const own: string[] = [];
  const built = buildLoadAssignment(clusterName, all, sp, subsetLabels, own, plan);
  for (const n of own) notes?.push(n);
  if (!plan) {
    if (lastBuilt.size >= LAST_BUILT_MAX) lastBuilt.clear();
    lastBuilt.set(clusterName, { key, members: all, notes: own, internKey: built.internKey, cla: built.cla });
  }
  return built.cla;
}

function buildLoadAssignment(
  clusterName: string,
  all: readonly WorkloadInstance[],
  sp: ServicePort,
  subsetLabels: Record<string, string> | undefined,
  notes: string[],
  plan: LocalityPlan | undefined,
): { internKey: string; cla: Record<string, unknown> } {
  const members = all
    .filter((w) => labelsMatch(subsetLabels, w.labels))
    .sort((a, b) => (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
  const groups = new Map<string, { locality: Record<string, string>; src: WorkloadInstance['locality']; eps: Ep[] }>();
  const seen = new Set<string>();
  for (const w of members) {
    if (isIP(w.address) === 0) {
      notes.push(`endpoint ${w.namespace}/${w.name} of ${clusterName} skipped: address "${w.address}" is not an IP literal`);
      continue;
    }
    const targetPort = targetPortOf(w, sp);
    const port = w.proxy ? w.proxy.inboundPort : targetPort;
    const key = `${w.address}|${port}`;
    if (seen.has(key)) continue; // the same socket twice would be rejected by xDS clients
    seen.add(key);
    const locality: Record<string, string> = {};
    if (w.locality?.region) locality.region = w.locality.region;
    if (w.locality?.zone) locality.zone = w.locality.zone;
    if (w.locality?.subZone) locality.sub_zone = w.locality.subZone;
    const lkey = `${locality.region ?? ''}/${locality.zone ?? ''}/${locality.sub_zone ?? ''}`;
    let g = groups.get(lkey);
    if (!g) groups.set(lkey, (g = { locality, src: w.locality, eps: [] }));
    // No labels: subsets are chosen here, at compile time, and nothing downstream reads them; at 5,000 endpoints
    // per sidecar they were a fifth of every EDS response.
    g.eps.push({
      address: w.address,
      port,
      hostname: w.name,
      health: w.health,
      workload: `${w.namespace}/${w.name}`,
      identity: w.identity,
      targetPort,
      tls: w.proxy ? 'mutual' : 'none',
    });
  }
  let list = [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, g]) => g);
  if (!plan) return intern(clusterName, list.map((g) => ({ locality: g.locality, weight: 1, priority: 0, eps: g.eps })));
  list = list.filter((g) => plan.weight(g.src ?? {}) > 0);
  const renumber = compactPriorities(list.map((g) => plan.priority(g.src ?? {})));
  return intern(
    clusterName,
    list.map((g) => ({ locality: g.locality, weight: plan.weight(g.src ?? {}), priority: renumber.get(plan.priority(g.src ?? {})) ?? 0, eps: g.eps })),
  );
}

interface Group {
  locality: { region?: string; zone?: string; sub_zone?: string };
  weight: number;
  priority: number;
  eps: Ep[];
}

/** The CLA object for this content: the one handed out before when nothing changed, else a new one. */
function intern(clusterName: string, groups: Group[]): { internKey: string; cla: Record<string, unknown> } {
  // Every field the CLA carries must be in the fingerprint, or a change to it would not reach the proxies.
  // Keyed by content, not only by name: callers in different localities see the same cluster differently.
  const h = createHash('sha1').update(clusterName);
  for (const g of groups) {
    const l = g.locality;
    h.update(`\u0001${l.region ?? ''}\u0000${l.zone ?? ''}\u0000${l.sub_zone ?? ''}\u0000${g.weight}\u0000${g.priority}`);
    for (const e of g.eps)
      h.update(`\u0002${e.address}\u0000${e.port}\u0000${e.hostname}\u0000${e.health}\u0000${e.workload}\u0000${e.identity}\u0000${e.targetPort}\u0000${e.tls}`);
  }
  const internKey = `${clusterName}\n${h.digest('base64')}`;
  const cla = loadAssignments.get(internKey, '', () => ({
    cluster_name: clusterName,
    endpoints: groups.map((g) => ({
      locality: g.locality,
      load_balancing_weight: { value: g.weight },
      lb_endpoints: g.eps.map((e) => ({
        endpoint: { address: { socket_address: { address: e.address, port_value: e.port } }, hostname: e.hostname },
        health_status: e.health,
        metadata: trellisMetadata({ workload: e.workload, identity: e.identity, targetPort: e.targetPort, tls: e.tls }),
      })),
      ...(g.priority > 0 ? { priority: g.priority } : {}),
    })),
  }));
  return { internKey, cla };
}
