// Cross-resource analysis: conflicts, dangling references, overlapping policies and selectors that select nothing.
import { mergeDiagnostics, type Diagnostic } from './diagnostics.js';
import { isRootNamespace, namespaceOf, resolveHost, resourceKey, rootNamespaces, serviceFqdn } from './names.js';
import { isPlainObject } from './schema-check.js';
import type { Resource } from './types.js';
import { reporterFor, validateResources } from './validate.js';

export interface KnownWorkload {
  name: string;
  namespace: string;
  labels: Record<string, string>;
}

export interface AnalyzeOptions {
  /** Workloads the registry knows beyond those declared in `resources` (e.g. connected proxies). */
  registryWorkloads?: KnownWorkload[];
  /** Per-resource validation to merge in (default validateResources; the store passes one that caches per resource). */
  validate?: (resources: Resource[]) => Diagnostic[];
}

interface WorkloadFact extends KnownWorkload {
  /** FQDN of the service named by Workload.spec.service, when declared that way. */
  service?: string;
}

const arrayOf = (v: unknown): any[] => (Array.isArray(v) ? v : []);
const objOf = (v: unknown): Record<string, any> => (isPlainObject(v) ? v : {});
const labelsOf = (v: unknown): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(objOf(v))) if (typeof x === 'string') out[k] = x;
  return out;
};

/** `"reviews" (reviews.default.svc.cluster.local)`, or just the quoted host when it is already canonical. */
function hostText(written: string, fqdn: string): string {
  return written === fqdn ? `"${written}"` : `"${written}" (${fqdn})`;
}

function where(r: Resource): string {
  const s = r.source;
  const at = s ? ` (${s.file}:${s.line}:${s.column})` : '';
  return `${r.kind} ${namespaceOf(r)}/${r.metadata.name}${at}`;
}

function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

function canonicalLabels(l: Record<string, string>): string {
  return JSON.stringify(Object.keys(l).sort().map((k) => [k, l[k]]));
}

/** Everything the cross checks need to know, gathered once. */
class Facts {
  readonly workloads: WorkloadFact[] = [];
  readonly hosts = new Set<string>();
  readonly wildcardHosts: string[] = [];
  /** Service FQDN -> selector, for Services with a selector. */
  readonly serviceSelectors = new Map<string, { namespace: string; selector: Record<string, string> }>();
  readonly roots: string[];

  constructor(resources: Resource[], opts: AnalyzeOptions) {
    this.roots = rootNamespaces(resources);
    for (const r of resources) {
      const ns = namespaceOf(r);
      const spec = objOf(r.spec);
      switch (r.kind) {
        case 'Service': {
          const fqdn = serviceFqdn(r.metadata.name, ns);
          this.hosts.add(fqdn);
          if (isPlainObject(spec.selector)) this.serviceSelectors.set(fqdn, { namespace: ns, selector: labelsOf(spec.selector) });
          break;
        }
        case 'Workload': {
          const svc = typeof spec.service === 'string' ? serviceFqdn(spec.service, ns) : undefined;
          if (svc) this.hosts.add(svc);
          this.workloads.push({ name: r.metadata.name, namespace: ns, labels: labelsOf(r.metadata.labels), service: svc });
          break;
        }
        case 'WorkloadEntry':
          this.workloads.push({
            name: r.metadata.name,
            namespace: ns,
            labels: { ...labelsOf(r.metadata.labels), ...labelsOf(spec.labels) },
          });
          break;
        case 'ServiceEntry':
          for (const h of arrayOf(spec.hosts)) {
            if (typeof h !== 'string') continue;
            if (h.startsWith('*')) this.wildcardHosts.push(h.slice(1).toLowerCase());
            else this.hosts.add(resolveHost(h, ns));
          }
          break;
      }
    }
    for (const w of opts.registryWorkloads ?? []) this.workloads.push({ ...w, labels: w.labels ?? {} });
  }

  hostKnown(fqdn: string): boolean {
    // A wildcard (a mesh-wide DestinationRule for "*.local") names many hosts, not a missing one.
    if (fqdn.startsWith('*') || this.hosts.has(fqdn)) return true;
    return this.wildcardHosts.some((suffix) => suffix === '' || fqdn.endsWith(suffix));
  }

  /** Workloads a namespace-scoped selector can see: its own namespace, or every namespace from a root namespace. */
  inScope(namespace: string): WorkloadFact[] {
    return isRootNamespace(namespace, this.roots) ? this.workloads : this.workloads.filter((w) => w.namespace === namespace);
  }

  /** Known members of a service (by Service selector or Workload.spec.service); undefined when none are known. */
  members(fqdn: string): WorkloadFact[] | undefined {
    const sel = this.serviceSelectors.get(fqdn);
    const list = this.workloads.filter(
      (w) => w.service === fqdn || (sel !== undefined && w.namespace === sel.namespace && selects(sel.selector, w.labels)),
    );
    return list.length > 0 ? list : undefined;
  }
}

type Dest = { host: string; subset?: string; field: string };

/** Every destination a VirtualService sends traffic to, with the field path that names it. */
function vsDestinations(spec: Record<string, any>): Dest[] {
  const out: Dest[] = [];
  const add = (d: unknown, field: string): void => {
    const x = objOf(d);
    if (typeof x.host === 'string') out.push({ host: x.host, subset: typeof x.subset === 'string' ? x.subset : undefined, field });
  };
  arrayOf(spec.http).forEach((rule, i) => {
    const h = objOf(rule);
    arrayOf(h.route).forEach((rt, j) => add(objOf(rt).destination, `spec.http[${i}].route[${j}].destination`));
    if (h.mirror) add(h.mirror, `spec.http[${i}].mirror`);
    arrayOf(h.mirrors).forEach((m, j) => add(objOf(m).destination, `spec.http[${i}].mirrors[${j}].destination`));
  });
  for (const proto of ['tcp', 'tls']) {
    arrayOf(spec[proto]).forEach((rule, i) =>
      arrayOf(objOf(rule).route).forEach((rt, j) => add(objOf(rt).destination, `spec.${proto}[${i}].route[${j}].destination`)),
    );
  }
  return out;
}

function appliesToMesh(spec: Record<string, any>): boolean {
  return !Array.isArray(spec.gateways) || spec.gateways.length === 0 || spec.gateways.includes('mesh');
}

/**
 * Validates every resource, then checks them against each other. Returns diagnostics sorted by file and
 * position; any with severity 'error' means the set should not be applied.
 */
export function analyzeResources(resources: Resource[], opts: AnalyzeOptions = {}): Diagnostic[] {
  const out: Diagnostic[] = [];
  const rs = resources.filter((r) => r && isPlainObject(r.metadata) && typeof r.metadata.name === 'string');
  const facts = new Facts(rs, opts);
  const by = (kind: string): Resource[] => rs.filter((r) => r.kind === kind);
  const report = (r: Resource) => reporterFor(r, out);

  // Duplicates.
  const firstByKey = new Map<string, Resource>();
  for (const r of rs) {
    const key = resourceKey(r);
    const first = firstByKey.get(key);
    if (first) report(r)('TRL0301', 'error', 'metadata.name', `duplicate ${r.kind} ${namespaceOf(r)}/${r.metadata.name}: first defined as ${where(first)}`);
    else firstByKey.set(key, r);
  }

  // At most one Mesh.
  const meshes = by('Mesh');
  for (const m of meshes.slice(1)) report(m)('TRL0308', 'error', 'metadata.name', `more than one Mesh resource: ${where(meshes[0])} already sets mesh-wide settings`);

  // VirtualServices: host conflicts, subsets, destinations.
  const subsetsByHost = new Map<string, { dr: Resource; names: string[] }[]>();
  const drByHost = new Map<string, Resource>();
  for (const dr of by('DestinationRule')) {
    const spec = objOf(dr.spec);
    if (typeof spec.host !== 'string') continue;
    const host = resolveHost(spec.host, namespaceOf(dr));
    const names = arrayOf(spec.subsets).map((s) => objOf(s).name).filter((n): n is string => typeof n === 'string');
    subsetsByHost.set(host, [...(subsetsByHost.get(host) ?? []), { dr, names }]);
    if (!facts.hostKnown(host))
      report(dr)('TRL0304', 'warning', 'spec.host', `host ${hostText(spec.host, host)} is not declared by any Service, ServiceEntry or Workload`);
    if (!isPlainObject(spec.workloadSelector)) {
      const key = `${namespaceOf(dr)}|${host}`;
      const first = drByHost.get(key);
      if (first)
        report(dr)('TRL0307', 'error', 'spec.host', `host ${hostText(spec.host, host)} already has a DestinationRule in this namespace: ${where(first)}`, 'merge the subsets and policies into one DestinationRule');
      else drByHost.set(key, dr);
    }
    // Subset labels that select no known member of the service.
    const members = facts.members(host);
    if (members) {
      arrayOf(spec.subsets).forEach((s, i) => {
        const labels = labelsOf(objOf(s).labels);
        if (Object.keys(labels).length > 0 && !members.some((w) => selects(labels, w.labels)))
          report(dr)('TRL0306', 'warning', `spec.subsets[${i}].labels`, `subset "${objOf(s).name}" selects no workload of ${host} (labels ${formatLabels(labels)})`);
      });
    }
  }

  const vsByHost = new Map<string, Resource>();
  for (const vs of by('VirtualService')) {
    const spec = objOf(vs.spec);
    const ns = namespaceOf(vs);
    if (appliesToMesh(spec)) {
      arrayOf(spec.hosts).forEach((h, i) => {
        if (typeof h !== 'string') return;
        const host = resolveHost(h, ns);
        const first = vsByHost.get(host);
        if (first && first !== vs)
          report(vs)('TRL0302', 'error', `spec.hosts[${i}]`, `host ${hostText(h, host)} is also routed by ${where(first)}; Trellis does not merge VirtualServices`, 'put all rules for a host in one VirtualService');
        else vsByHost.set(host, vs);
      });
    }
    const warned = new Set<string>();
    for (const d of vsDestinations(spec)) {
      const host = resolveHost(d.host, ns);
      // One warning per unknown host per VirtualService: a canary split names the same host many times.
      if (!facts.hostKnown(host) && !warned.has(host) && warned.add(host))
        report(vs)('TRL0304', 'warning', `${d.field}.host`, `destination host ${hostText(d.host, host)} is not declared by any Service, ServiceEntry or Workload`);
      if (d.subset !== undefined) {
        const drs = subsetsByHost.get(host);
        if (!drs)
          report(vs)('TRL0303', 'error', `${d.field}.subset`, `subset "${d.subset}" of host "${d.host}" is not defined: no DestinationRule for ${host}`);
        else if (!drs.some((x) => x.names.includes(d.subset!))) {
          const defined = drs.flatMap((x) => x.names);
          report(vs)(
            'TRL0303',
            'error',
            `${d.field}.subset`,
            `subset "${d.subset}" of host "${d.host}" is not defined by ${drs.map((x) => `DestinationRule ${namespaceOf(x.dr)}/${x.dr.metadata.name}`).join(', ')}`,
            defined.length > 0 ? `defined subsets: ${defined.join(', ')}` : undefined,
          );
        }
      }
    }
  }

  // Gateway API routes and SMI splits: references to services, and routing a host a VirtualService already routes.
  for (const route of [...by('HTTPRoute'), ...by('GRPCRoute')]) {
    const spec = objOf(route.spec);
    const ns = namespaceOf(route);
    arrayOf(spec.parentRefs).forEach((p, i) => {
      const ref = objOf(p);
      if (ref.kind !== 'Service' || typeof ref.name !== 'string') return;
      const host = serviceFqdn(ref.name, typeof ref.namespace === 'string' ? ref.namespace : ns);
      if (!facts.hostKnown(host))
        report(route)('TRL0304', 'warning', `spec.parentRefs[${i}].name`, `parent Service "${ref.name}" (${host}) is not declared by any Service, ServiceEntry or Workload`);
      const vs = vsByHost.get(host);
      if (vs)
        report(route)('TRL0310', 'warning', `spec.parentRefs[${i}]`, `${host} is also routed by ${where(vs)}`, 'route each host with one kind of resource');
    });
    arrayOf(spec.rules).forEach((rule, i) =>
      arrayOf(objOf(rule).backendRefs).forEach((b, j) => {
        const ref = objOf(b);
        if ((ref.kind ?? 'Service') !== 'Service' || typeof ref.name !== 'string') return;
        const host = serviceFqdn(ref.name, typeof ref.namespace === 'string' ? ref.namespace : ns);
        if (!facts.hostKnown(host))
          report(route)('TRL0304', 'warning', `spec.rules[${i}].backendRefs[${j}].name`, `backend Service "${ref.name}" (${host}) is not declared by any Service, ServiceEntry or Workload`);
      }),
    );
  }
  for (const ts of by('TrafficSplit')) {
    const spec = objOf(ts.spec);
    const ns = namespaceOf(ts);
    if (typeof spec.service === 'string') {
      const host = resolveHost(spec.service, ns);
      if (!facts.hostKnown(host))
        report(ts)('TRL0304', 'warning', 'spec.service', `service ${hostText(spec.service, host)} is not declared by any Service, ServiceEntry or Workload`);
      const vs = vsByHost.get(host);
      if (vs) report(ts)('TRL0310', 'warning', 'spec.service', `${host} is also routed by ${where(vs)}`, 'route each host with one kind of resource');
    }
    arrayOf(spec.backends).forEach((b, i) => {
      const svc = objOf(b).service;
      if (typeof svc !== 'string') return;
      const host = resolveHost(svc, ns);
      if (!facts.hostKnown(host))
        report(ts)('TRL0304', 'warning', `spec.backends[${i}].service`, `backend service ${hostText(svc, host)} is not declared by any Service, ServiceEntry or Workload`);
    });
  }

  // PeerAuthentication overlaps: one namespace-wide policy per namespace (one mesh-wide across root namespaces),
  // and no two policies with the same selector in a namespace.
  const paScopes = new Map<string, Resource>();
  for (const pa of by('PeerAuthentication')) {
    const ns = namespaceOf(pa);
    const labels = labelsOf(objOf(objOf(pa.spec).selector).matchLabels);
    const hasSelector = Object.keys(labels).length > 0;
    const scope = hasSelector ? `${ns}|${canonicalLabels(labels)}` : isRootNamespace(ns, facts.roots) ? '<mesh>' : `${ns}|*`;
    const first = paScopes.get(scope);
    if (first) {
      const what = hasSelector
        ? `the same selector (${formatLabels(labels)}) as ${where(first)}`
        : scope === '<mesh>'
          ? `mesh-wide like ${where(first)}`
          : `namespace-wide in ${ns} like ${where(first)}`;
      report(pa)('TRL0305', 'error', hasSelector ? 'spec.selector' : 'metadata.name', `PeerAuthentication overlaps: it is ${what}`, 'keep one policy per scope');
    } else paScopes.set(scope, pa);
  }

  // Selectors that match no workload, only when some workloads are known (else every policy file would warn).
  if (facts.workloads.length > 0) {
    for (const r of rs) {
      if (!['PeerAuthentication', 'AuthorizationPolicy', 'RequestAuthentication', 'RateLimitPolicy'].includes(r.kind)) continue;
      const labels = labelsOf(objOf(objOf(r.spec).selector).matchLabels);
      if (Object.keys(labels).length === 0) continue;
      const scope = facts.inScope(namespaceOf(r));
      if (!scope.some((w) => selects(labels, w.labels)))
        report(r)('TRL0306', 'warning', 'spec.selector.matchLabels', `selector ${formatLabels(labels)} matches no workload in ${isRootNamespace(namespaceOf(r), facts.roots) ? 'the mesh' : `namespace ${namespaceOf(r)}`}`);
    }
    for (const svc of by('Service')) {
      const sel = labelsOf(objOf(svc.spec).selector);
      if (Object.keys(sel).length === 0) continue;
      const ns = namespaceOf(svc);
      const fqdn = serviceFqdn(svc.metadata.name, ns);
      if (!facts.workloads.some((w) => (w.namespace === ns && selects(sel, w.labels)) || w.service === fqdn))
        report(svc)('TRL0306', 'warning', 'spec.selector', `selector ${formatLabels(sel)} matches no workload in namespace ${ns}`);
    }
  }

  // Local port clashes between Workloads (trellis up runs them all on one machine).
  const ports = new Map<string, { r: Resource; what: string }>();
  for (const w of by('Workload')) {
    const spec = objOf(w.spec);
    const addr = typeof spec.address === 'string' ? spec.address : '127.0.0.1';
    const claims: [string, number, string][] = [];
    arrayOf(spec.ports).forEach((p, i) => typeof objOf(p).port === 'number' && claims.push([`spec.ports[${i}].port`, p.port, 'app port']));
    for (const k of ['outboundPort', 'inboundPort', 'adminPort', 'metricsPort']) {
      const v = objOf(spec.proxy)[k];
      if (typeof v === 'number') claims.push([`spec.proxy.${k}`, v, `proxy ${k}`]);
    }
    arrayOf(spec.upstreams).forEach((u, i) => typeof objOf(u).localPort === 'number' && claims.push([`spec.upstreams[${i}].localPort`, u.localPort, 'upstream localPort']));
    for (const [field, port, what] of claims) {
      const key = `${what.startsWith('app') ? addr : '127.0.0.1'}:${port}`;
      const prev = ports.get(key);
      if (prev && prev.r !== w) report(w)('TRL0309', 'error', field, `port ${port} is also the ${prev.what} of ${where(prev.r)}`);
      else if (!prev) ports.set(key, { r: w, what });
    }
  }

  return mergeDiagnostics((opts.validate ?? validateResources)(rs), out);
}

function formatLabels(l: Record<string, string>): string {
  return `{${Object.entries(l)
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ')}}`;
}
