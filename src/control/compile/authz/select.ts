// Chooses the security policies (AuthorizationPolicy, RequestAuthentication) that apply to one workload, as Istio does.
import type { PolicyTargetReference, Resource, WorkloadSelector } from '../../../api/types.js';
import { serviceFqdn } from '../../../api/names.js';
import type { MeshSettings, WorkloadInstance } from '../../model.js';

interface Selectable {
  selector?: WorkloadSelector;
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
}

/** Any user-supplied value as text for a warning, never throwing. */
export function show(v: unknown): string {
  if (typeof v === 'string') return v;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return '(unprintable)';
  }
}

export function policyNamespace(r: Pick<Resource, 'metadata'>): string {
  return r.metadata?.namespace || 'default';
}

/** `ns/name`, the way describe and warnings name a resource. */
export function policyRef(r: Pick<Resource, 'metadata' | 'kind'>): string {
  return `${r.kind ?? 'policy'} ${policyNamespace(r)}/${show(r.metadata?.name ?? '')}`;
}

function isRoot(ns: string, mesh: MeshSettings): boolean {
  // istio-system always counts, so Istio policies keep their mesh-wide meaning whatever the Mesh says.
  return mesh.rootNamespaces.includes(ns) || ns === 'istio-system';
}

function labelsSubset(selector: Record<string, string>, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

function targetRefsOf(spec: Selectable): PolicyTargetReference[] {
  const refs = Array.isArray(spec.targetRefs) ? [...spec.targetRefs] : [];
  if (spec.targetRef) refs.push(spec.targetRef);
  return refs;
}

/**
 * True when the policy applies to the workload. Pushes a warning for target references that cannot
 * apply to a sidecar (Gateway kinds) or that are written cross-namespace, which Istio rejects.
 */
export function appliesTo(
  r: Resource<Selectable>,
  workload: Pick<WorkloadInstance, 'namespace' | 'labels' | 'services'>,
  mesh: MeshSettings,
  warnings: string[],
): boolean {
  const ns = policyNamespace(r);
  const spec = r.spec ?? {};
  const refs = targetRefsOf(spec);
  if (refs.length > 0) {
    if (spec.selector && Object.keys(spec.selector.matchLabels ?? {}).length > 0) {
      warnings.push(`${policyRef(r)}: both selector and targetRef(s) are set; only targetRef(s) is used`);
    }
    let hit = false;
    for (const ref of refs) {
      const kind = show(ref?.kind ?? '');
      const group = show(ref?.group ?? '');
      if (kind === 'Service' && (group === '' || group === 'core')) {
        if (ref.namespace && ref.namespace !== ns) {
          warnings.push(`${policyRef(r)}: targetRef namespace ${show(ref.namespace)} differs from the policy's namespace; ignored`);
          continue;
        }
        if (typeof ref.name === 'string' && workload.services.includes(serviceFqdn(ref.name, ns))) hit = true;
      } else if (kind === 'ServiceEntry') {
        // ServiceEntry hosts are not workload memberships here; a ServiceEntry-targeted policy guards no sidecar.
        continue;
      } else {
        warnings.push(`${policyRef(r)}: targetRef kind ${group ? group + '/' : ''}${kind} does not apply to workloads; ignored`);
      }
    }
    return hit;
  }
  const selector = spec.selector?.matchLabels;
  const hasSelector = !!selector && Object.keys(selector).length > 0;
  if (ns !== workload.namespace && !isRoot(ns, mesh)) return false;
  if (!hasSelector) return true;
  return labelsSubset(selector, workload.labels);
}

/** The policies of a list that apply to the workload, in a stable order (namespace, then name). */
export function selectPolicies<S extends Selectable>(
  policies: Resource<S>[],
  workload: Pick<WorkloadInstance, 'namespace' | 'labels' | 'services'>,
  mesh: MeshSettings,
  warnings: string[],
): Resource<S>[] {
  return policies
    .filter((p) => appliesTo(p, workload, mesh, warnings))
    .sort((a, b) => {
      const ka = `${policyNamespace(a)}/${a.metadata?.name ?? ''}`;
      const kb = `${policyNamespace(b)}/${b.metadata?.name ?? ''}`;
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
}
