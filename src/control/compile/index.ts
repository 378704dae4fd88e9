// Compiler entry point: (config resources + registry + mesh settings) -> the xDS snapshot one proxy needs.
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../../xds/protos.js';
import type { CompileInput, ProxyDescriptor, ServiceInfo, ServicePort, XdsSnapshot } from '../model.js';
import { inboundCluster, outboundCluster } from './clusters.js';
import { subsetLabels } from './destination-rules.js';
import { loadAssignment } from './endpoints.js';
import { localityPlan } from './locality.js';
import { ServiceIndex, inboundClusterName, portProtocol } from './hosts.js';
import { inboundListener, outboundListener, upstreamListeners } from './listeners.js';
import { proxylessListener, resolveListenerName, PROXYLESS_NAMESPACE } from './proxyless.js';
import { RouteContext } from './route-context.js';
import { outboundRouteConfig, proxylessRouteConfig } from './route-configs.js';
import { FAULT_FILTER, clustersOfRoute } from './route-parts.js';
import { rootCaSecret } from './secrets.js';
import { memo } from './memo.js';
import { asRes } from './spec.js';

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
  const cluster = outboundCluster({ svc, port, subset, policy, destinationRule: drRef, proxyless: ctx.caller.proxyless });
  const name = cluster.name as string;
  if (snap[CLUSTER_TYPE][name]) return;
  snap[CLUSTER_TYPE][name] = cluster;
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

/** Every service port's cluster plus one per DestinationRule subset (CDS is state of the world). */
function addAllOutbound(input: CompileInput, ctx: RouteContext, snap: XdsSnapshot, notes: string[]): void {
  // Shared by every proxy whose callers live in the same namespace: computed once per generation.
  const loc = ctx.caller.locality;
  const key = `outbound:${ctx.caller.namespace}:${ctx.caller.proxyless}:${loc?.region ?? ''}/${loc?.zone ?? ''}/${loc?.subZone ?? ''}`;
  const shared = memo(input, key, () => {
    const part = emptySnapshot();
    const partNotes: string[] = [];
    for (const svc of ctx.index.services) {
      for (const port of svc.ports) {
        addOutbound(input, ctx, part, partNotes, svc, port, undefined);
        const { dr } = ctx.policy(svc, port.port, undefined);
        for (const s of dr?.spec?.subsets ?? []) addOutbound(input, ctx, part, partNotes, svc, port, s.name);
      }
    }
    return { part, notes: partNotes };
  });
  Object.assign(snap[CLUSTER_TYPE], shared.part[CLUSTER_TYPE]);
  Object.assign(snap[ENDPOINT_TYPE], shared.part[ENDPOINT_TYPE]);
  notes.push(...shared.notes);
}

function compileTrellis(input: CompileInput, proxy: ProxyDescriptor, index: ServiceIndex, snap: XdsSnapshot, notes: string[]): void {
  const resources = asRes(input.resources);
  const first = proxy.workloads[0];
  // Clusters are per proxy; in node mode DestinationRule lookup uses the first hosted workload's namespace.
  const clusterCtx = new RouteContext(input, resources, index, input.mesh, {
    namespace: first?.namespace ?? PROXYLESS_NAMESPACE,
    labels: first?.labels ?? {},
    proxyless: false,
    locality: first?.locality,
  });
  const upstreamClusters: string[] = [];
  for (const w of proxy.workloads) {
    const ctx = new RouteContext(input, resources, index, input.mesh, { namespace: w.namespace, labels: w.labels, proxyless: false });
    const out = outboundListener(w) as { name: string };
    snap[LISTENER_TYPE][out.name] = out;
    const inb = inboundListener(resources, input.mesh, w, notes) as { name: string };
    snap[LISTENER_TYPE][inb.name] = inb;
    for (const u of upstreamListeners(resources, index, w)) {
      snap[LISTENER_TYPE][u.listener.name] = u.listener;
      upstreamClusters.push(u.cluster);
    }
    const rc = outboundRouteConfig(ctx, w) as { name: string };
    snap[ROUTE_TYPE][rc.name] = rc;
    for (const p of w.ports) {
      const name = inboundClusterName(p.port, w.namespace, w.name);
      snap[CLUSTER_TYPE][name] = inboundCluster(name, '127.0.0.1', p.port, portProtocol(p));
    }
  }
  addAllOutbound(input, clusterCtx, snap, notes);
  addReferenced(input, clusterCtx, snap, notes, upstreamClusters);
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
  const snap = emptySnapshot();
  const notes: string[] = [];
  const index = memo(input.registry, 'index', () => new ServiceIndex(input.registry));
  if (proxy.kind === 'proxyless') compileProxyless(input, index, subscriptions?.listeners ?? [], snap, notes);
  else compileTrellis(input, proxy, index, snap, notes);
  const secret = rootCaSecret(input.trustBundlePem) as { name: string };
  snap[SECRET_TYPE][secret.name] = secret;
  return { snapshot: snap, notes };
}

/** Every xDS resource `proxy` needs, by type URL then resource name (values ready for `packAny(typeUrl, value)`). */
export function compileForProxy(input: CompileInput, proxy: ProxyDescriptor, subscriptions?: { listeners?: string[] }): XdsSnapshot {
  return compileWithNotes(input, proxy, subscriptions).snapshot;
}

export { effectiveMtls } from './peer-auth.js';
export type { EffectiveMtls, MtlsMode } from './peer-auth.js';
