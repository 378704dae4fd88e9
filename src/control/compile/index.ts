// Compiler entry point: (config resources + registry + mesh settings) -> the xDS snapshot one proxy needs.
import { createHash } from 'node:crypto';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../../xds/protos.js';
import type { CompileInput, ProxyDescriptor, ServiceInfo, ServicePort, WorkloadInstance, XdsSnapshot } from '../model.js';
import { inboundCluster, outboundCluster } from './clusters.js';
import { subsetLabels } from './destination-rules.js';
import { loadAssignment, loadAssignments } from './endpoints.js';
import { Interner } from './intern.js';
import { localityPlan } from './locality.js';
import { ServiceIndex, inboundClusterName, portProtocol } from './hosts.js';
import { inboundListener, outboundListener, upstreamListeners } from './listeners.js';
import { proxylessListener, resolveListenerName, PROXYLESS_NAMESPACE } from './proxyless.js';
import { RouteContext } from './route-context.js';
import { outboundRouteConfig, outboundRouteName, proxylessRouteConfig } from './route-configs.js';
import { FAULT_FILTER, clustersOfRoute } from './route-parts.js';
import { rootCaSecret } from './secrets.js';
import { memo } from './memo.js';
import { type Res, asRes } from './spec.js';

export interface CompileResult {
  snapshot: XdsSnapshot;
  /** Things the compiler skipped or decided silently (e.g. an endpoint without an IP address). */
  notes: string[];
}

function emptySnapshot(): XdsSnapshot {
  return { [LISTENER_TYPE]: {}, [ROUTE_TYPE]: {}, [CLUSTER_TYPE]: {}, [ENDPOINT_TYPE]: {}, [SECRET_TYPE]: {} };
}

function parseOutbound(name: string): { port: number; subset?: string; fqdn: string } | undefined {
  const m = /^outbound\|(\d+)\|([^|]*)\|(.+)$/.exec(name);
  return m ? { port: Number(m[1]), subset: m[2] || undefined, fqdn: m[3] } : undefined;
}

/** Routes of every route config in the snapshot (to find the clusters they refer to). */
function routesOf(snapshot: XdsSnapshot): Record<string, any>[] {
  const out: Record<string, any>[] = [];
  for (const rc of Object.values(snapshot[ROUTE_TYPE]) as any[])
    for (const vh of rc.virtual_hosts ?? []) out.push(...(vh.routes ?? []));
  return out;
}

/** Adds an outbound cluster and its endpoints; undefined subsets get a cluster with no endpoints. */
function addOutbound(
  input: CompileInput,
  ctx: RouteContext,
  snap: XdsSnapshot,
  notes: string[],
  svc: ServiceInfo,
  port: ServicePort,
  subset: string | undefined,
): void {
  const { policy, dr, drRef } = ctx.policy(svc, port.port, subset);
  const built = outboundCluster({ svc, port, subset, policy, destinationRule: drRef, proxyless: ctx.caller.proxyless, retryBudget: input.mesh.retryBudget, meshDefaults: input.mesh.defaults });
  const name = built.name as string;
  if (snap[CLUSTER_TYPE][name]) return;
  snap[CLUSTER_TYPE][name] = sharedObjects.get(`cluster\n${JSON.stringify(built)}`, '', () => built);
  let labels: Record<string, string> | undefined;
  if (subset) {
    labels = subsetLabels(dr, subset);
    if (!labels && !dr?.spec?.subsets?.some((s) => s.name === subset)) {
      notes.push(`cluster ${name}: subset "${subset}" is not defined by a DestinationRule; it has no endpoints`);
      snap[ENDPOINT_TYPE][name] = { cluster_name: name, endpoints: [] };
      return;
    }
  }
  const plan = localityPlan(policy.loadBalancer, policy.outlierDetection !== undefined, ctx.caller.locality);
  snap[ENDPOINT_TYPE][name] = loadAssignment(name, input.registry, svc, port, labels, notes, plan);
}

/** Adds the clusters the snapshot's routes refer to that are not there yet (e.g. subsets, other services). */
function addReferenced(input: CompileInput, ctx: RouteContext, snap: XdsSnapshot, notes: string[], extra: string[] = []): void {
  const names = new Set<string>(extra);
  for (const r of routesOf(snap)) for (const c of clustersOfRoute(r)) names.add(c);
  for (const name of names) {
    if (snap[CLUSTER_TYPE][name]) continue;
    const p = parseOutbound(name);
    const svc = p ? ctx.index.services.find((s) => s.fqdn === p.fqdn) : undefined;
    const port = svc?.ports.find((x) => x.port === p!.port);
    if (!svc || !port) {
      notes.push(`cluster ${name} is referenced but names no known service port`);
      continue;
    }
    addOutbound(input, ctx, snap, notes, svc, port, p!.subset);
  }
}

interface SharedPart {
  part: XdsSnapshot;
  notes: string[];
}

/** Every service port's cluster plus one per DestinationRule subset (CDS is state of the world). */
function sharedOutbound(input: CompileInput, ctx: RouteContext): SharedPart {
  // Shared by every proxy whose callers live in the same namespace and locality: computed once per generation,
  // and the very same maps as the generation before when no cluster or load assignment in them changed.
  const loc = ctx.caller.locality;
  const key = `outbound:${ctx.caller.namespace}:${ctx.caller.proxyless}:${loc?.region ?? ''}/${loc?.zone ?? ''}/${loc?.subZone ?? ''}`;
  return memo(input, key, () => {
    const part = emptySnapshot();
    const partNotes: string[] = [];
    for (const svc of ctx.index.services) {
      for (const port of svc.ports) {
        addOutbound(input, ctx, part, partNotes, svc, port, undefined);
        const { dr } = ctx.policy(svc, port.port, undefined);
        for (const s of dr?.spec?.subsets ?? []) addOutbound(input, ctx, part, partNotes, svc, port, s.name);
      }
    }
    // Each map keeps its identity while its own objects are unchanged: an endpoint change leaves CDS untouched.
    part[CLUSTER_TYPE] = sharedObjects.get(`${key}:cds`, Object.values(part[CLUSTER_TYPE]), () => part[CLUSTER_TYPE]);
    part[ENDPOINT_TYPE] = sharedObjects.get(`${key}:eds`, Object.values(part[ENDPOINT_TYPE]), () => part[ENDPOINT_TYPE]);
    return { part, notes: partNotes };
  });
}

function addAllOutbound(input: CompileInput, ctx: RouteContext, snap: XdsSnapshot, notes: string[]): void {
  const shared = sharedOutbound(input, ctx);
  Object.assign(snap[CLUSTER_TYPE], shared.part[CLUSTER_TYPE]);
  Object.assign(snap[ENDPOINT_TYPE], shared.part[ENDPOINT_TYPE]);
  notes.push(...shared.notes);
}

/**
 * Compiled objects kept across generations: clusters, shared maps, each workload's own resources and each proxy's
 * per-type maps. Handing out the same object when its inputs are unchanged is what lets the ADS server skip re-encoding
 * and resending it (it recognises resources by identity).
 */
const sharedObjects = new Interner();
const workloadParts = new Interner();
const proxyMaps = new Interner();

/** Kinds that cannot change a workload's listeners or inbound clusters (they shape routes, clusters and endpoints). */
const NOT_LISTENER_INPUTS = new Set(['Service', 'ServiceEntry', 'WorkloadEntry', 'VirtualService', 'DestinationRule', 'HTTPRoute', 'GRPCRoute', 'TrafficSplit']);

/** Fingerprint of everything besides the workload itself that its listeners depend on (once per generation). */
function listenerInputs(input: CompileInput, resources: Res[], index: ServiceIndex): string {
  return memo(input, 'listenerInputs', () => {
    const h = createHash('sha1');
    h.update(JSON.stringify(input.mesh));
    for (const r of resources) if (!NOT_LISTENER_INPUTS.has(r.kind)) h.update(JSON.stringify(r));
    // Upstream listeners resolve their targets against the service index.
    for (const svc of index.services) h.update(JSON.stringify([svc.fqdn, svc.aliases, svc.ports]));
    return h.digest('base64');
  });
}

interface WorkloadPart {
  listeners: { name: string }[];
  clusters: { name: string }[];
  routeName: string;
  upstreamClusters: string[];
  notes: string[];
}

/** JSON of a workload instance, once per object: the registry hands out the same instance while it is unchanged. */
const workloadJsons = new WeakMap<WorkloadInstance, string>();
function workloadJson(w: WorkloadInstance): string {
  let j = workloadJsons.get(w);
  if (j === undefined) workloadJsons.set(w, (j = JSON.stringify(w)));
  return j;
}

/** A workload's own listeners and inbound clusters, rebuilt only when it or what listeners read changed. */
function workloadPart(input: CompileInput, resources: Res[], index: ServiceIndex, w: WorkloadInstance): WorkloadPart {
  const routeName = outboundRouteName(resources, w.namespace, w.labels);
  const fp = `${routeName}\n${listenerInputs(input, resources, index)}\n${workloadJson(w)}`;
  return workloadParts.get(`${w.proxy?.id ?? ''}|${w.namespace}/${w.name}`, fp, () => {
    const notes: string[] = [];
    const listeners = [outboundListener(w, routeName, input.mesh), inboundListener(resources, input.mesh, w, notes)] as { name: string }[];
    const upstreamClusters: string[] = [];
    for (const u of upstreamListeners(resources, index, w)) {
      listeners.push(u.listener);
      upstreamClusters.push(u.cluster);
    }
    const clusters = w.ports.map((p) => {
      const name = inboundClusterName(p.port, w.namespace, w.name);
      return inboundCluster(name, '127.0.0.1', p.port, portProtocol(p)) as { name: string };
    });
    return { listeners, clusters, routeName, upstreamClusters, notes };
  });
}

function compileTrellis(input: CompileInput, proxy: ProxyDescriptor, index: ServiceIndex, notes: string[]): XdsSnapshot {
  const resources = asRes(input.resources);
  const first = proxy.workloads[0];
  // Clusters are per proxy; in node mode DestinationRule lookup uses the first hosted workload's namespace.
  const clusterCtx = new RouteContext(input, resources, index, input.mesh, {
    namespace: first?.namespace ?? PROXYLESS_NAMESPACE,
    labels: first?.labels ?? {},
    proxyless: false,
    locality: first?.locality,
  });
  const shared = sharedOutbound(input, clusterCtx);
  const own = proxy.workloads.map((w) => workloadPart(input, resources, index, w));
  const routeConfigs = proxy.workloads.map((w, i) =>
    memo(input, `rc:${own[i].routeName}`, () => {
      const ctx = new RouteContext(input, resources, index, input.mesh, { namespace: w.namespace, labels: w.labels, proxyless: false });
      return outboundRouteConfig(ctx, own[i].routeName) as { name: string };
    }),
  );
  // Clusters routes or upstreams name that the shared part lacks (rare: e.g. a subset no DestinationRule defines).
  const extra = emptySnapshot();
  const extraNotes: string[] = [];
  const sharedCds = shared.part[CLUSTER_TYPE];
  const missing = [...new Set([...own.flatMap((o) => o.upstreamClusters), ...routeConfigs.flatMap((rc) => missingFrom(rc, sharedCds))])].filter(
    (n) => !sharedCds[n],
  );
  if (missing.length) addReferenced(input, clusterCtx, extra, extraNotes, missing);
  const secret = rootCa(input.trustBundlePem);
  for (const o of own) notes.push(...o.notes);
  notes.push(...shared.notes, ...extraNotes);

  // Per type, the proxy's map is rebuilt only when something in it changed, so the ADS server can tell "nothing
  // new" by identity; load assignments and the secret are shared maps outright unless the proxy needs extras.
  const id = proxy.id;
  const extraCds = Object.values(extra[CLUSTER_TYPE]);
  const ownClusters = own.flatMap((o) => o.clusters);
  const ownListeners = own.flatMap((o) => o.listeners);
  return {
    [LISTENER_TYPE]: proxyMaps.get(`lds:${id}`, ownListeners, () => byName(ownListeners)),
    // Route configurations are shared by callers alike (one per namespace): so is the map holding them, which lets
    // the ADS server work out what changed once for every sidecar of the namespace instead of once each.
    [ROUTE_TYPE]: proxyMaps.get(`rds:${routeConfigs.map((rc) => rc.name).join('\n')}`, routeConfigs, () => byName(routeConfigs)),
    [CLUSTER_TYPE]: proxyMaps.get(`cds:${id}`, [sharedCds, ...ownClusters, ...extraCds], () => merged(byName(ownClusters), sharedCds, extra[CLUSTER_TYPE])),
    [ENDPOINT_TYPE]: missing.length
      ? proxyMaps.get(`eds:${id}`, [shared.part[ENDPOINT_TYPE], ...Object.values(extra[ENDPOINT_TYPE])], () => merged(shared.part[ENDPOINT_TYPE], extra[ENDPOINT_TYPE]))
      : shared.part[ENDPOINT_TYPE],
    [SECRET_TYPE]: sharedObjects.get('sds', [secret], () => ({ [secret.name]: secret })),
  };
}

/** Later maps win. A plain loop: spreading a map of hundreds of keys costs a millisecond (V8 dictionary mode). */
function merged(...maps: Record<string, object>[]): Record<string, object> {
  const out: Record<string, object> = {};
  for (const m of maps) for (const k of Object.keys(m)) out[k] = m[k];
  return out;
}

function byName(list: { name: string }[]): Record<string, object> {
  const out: Record<string, object> = {};
  for (const o of list) out[o.name] = o;
  return out;
}

/** Clusters a route configuration uses that `cds` lacks (once per pair: every sidecar of a namespace asks). */
function missingFrom(rc: object, cds: Record<string, object>): string[] {
  const byCds = memo(rc, 'missing', () => new WeakMap<object, string[]>());
  let m = byCds.get(cds);
  if (!m) byCds.set(cds, (m = referencedClusters(rc).filter((n) => !cds[n])));
  return m;
}

/** Cluster names a route configuration's routes use (once per route configuration object). */
function referencedClusters(rc: object): string[] {
  return memo(rc, 'clusters', () => {
    const names = new Set<string>();
    for (const r of routesOf({ [ROUTE_TYPE]: { x: rc } })) for (const c of clustersOfRoute(r)) names.add(c);
    return [...names];
  });
}

function rootCa(pem: string): { name: string } {
  return sharedObjects.get('secret:ROOTCA', pem, () => rootCaSecret(pem) as { name: string });
}

function compileProxyless(
  input: CompileInput,
  index: ServiceIndex,
  listenerNames: string[],
  snap: XdsSnapshot,
  notes: string[],
): void {
  const ctx = new RouteContext(input, asRes(input.resources), index, input.mesh, {
    namespace: PROXYLESS_NAMESPACE,
    labels: {},
    proxyless: true,
  });
  const byConfig = new Map<string, { svc: ServiceInfo; port: ServicePort; names: string[] }>();
  for (const name of listenerNames) {
    const t = resolveListenerName(index, name);
    if (!t) {
      notes.push(`listener "${name}" names no known service; left out (the client sees it as not found)`);
      continue;
    }
    const key = `${t.svc.fqdn}:${t.port.port}`;
    const entry = byConfig.get(key) ?? { ...t, names: [] };
    entry.names.push(name);
    byConfig.set(key, entry);
  }
  for (const { svc, port, names } of byConfig.values()) {
    const rc = proxylessRouteConfig(ctx, svc, port, names) as { name: string; virtual_hosts: { routes: any[] }[] };
    snap[ROUTE_TYPE][rc.name] = rc;
    const withFault = rc.virtual_hosts.some((vh) => vh.routes.some((r) => r.typed_per_filter_config?.[FAULT_FILTER]));
    for (const n of names) snap[LISTENER_TYPE][n] = proxylessListener(n, svc, port, withFault);
  }
  // All clusters, not only those the new routes use: a client still routing by its previous route config asks
  // for the old names until the new RDS lands, and a missing cluster fails its calls instead of waiting.
  if (listenerNames.length > 0) addAllOutbound(input, ctx, snap, notes);
  addReferenced(input, ctx, snap, notes);
}

/** Compiles the snapshot and reports what was skipped along the way. */
export function compileWithNotes(
  input: CompileInput,
  proxy: ProxyDescriptor,
  subscriptions?: { listeners?: string[] },
): CompileResult {
  memo(input, 'generation', () => {
    for (const i of [sharedObjects, workloadParts, proxyMaps, loadAssignments]) i.nextGeneration();
    return true;
  });
  const notes: string[] = [];
  const index = memo(input.registry, 'index', () => new ServiceIndex(input.registry));
  if (proxy.kind !== 'proxyless') return { snapshot: compileTrellis(input, proxy, index, notes), notes };
  const snap = emptySnapshot();
  compileProxyless(input, index, subscriptions?.listeners ?? [], snap, notes);
  const secret = rootCa(input.trustBundlePem);
  snap[SECRET_TYPE][secret.name] = secret;
  return { snapshot: snap, notes };
}

/**
 * Every xDS resource `proxy` needs, by type URL then resource name (values ready for `packAny(typeUrl, value)`).
 * The snapshot and its objects are shared with other proxies and later compiles: treat them as read-only.
 */
export function compileForProxy(input: CompileInput, proxy: ProxyDescriptor, subscriptions?: { listeners?: string[] }): XdsSnapshot {
  return compileWithNotes(input, proxy, subscriptions).snapshot;
}

export { effectiveMtls } from './peer-auth.js';
export type { EffectiveMtls, MtlsMode } from './peer-auth.js';
