// Effective PeerAuthentication mTLS mode per workload port, with Istio's precedence and the deciding resource.
import type { MeshSettings, WorkloadInstance } from '../model.js';
import { type PeerAuthenticationSpec, type Res, nsOf, ofKind, refOf } from './spec.js';
import { labelsMatch } from './util.js';

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface EffectiveMtls {
  mode: MtlsMode;
  /** "ns/name" of the PeerAuthentication that decided, or "default". */
  decidedBy: string;
}

function definite(mode: string | undefined): MtlsMode | undefined {
  const m = (mode ?? '').toUpperCase();
  return m === 'STRICT' || m === 'PERMISSIVE' || m === 'DISABLE' ? m : undefined;
}

function hasSelector(pa: Res<PeerAuthenticationSpec>): boolean {
  return Object.keys(pa.spec?.selector?.matchLabels ?? {}).length > 0;
}

/**
 * Resolves the mode for one workload port: port-level > workload selector > namespace > mesh root namespace
 * > PERMISSIVE. UNSET at one level inherits from the next. Among equals the oldest resource wins.
 */
export function effectiveMtls(
  resources: Res[],
  mesh: MeshSettings,
  workload: Pick<WorkloadInstance, 'namespace' | 'labels'>,
  port: number,
): EffectiveMtls {
  const pas = ofKind<PeerAuthenticationSpec>(resources, 'PeerAuthentication');
  const selected = pas.filter(
    (pa) => nsOf(pa) === workload.namespace && hasSelector(pa) && labelsMatch(pa.spec?.selector?.matchLabels, workload.labels),
  );
  for (const pa of selected) {
    const portMode = definite(pa.spec?.portLevelMtls?.[String(port)]?.mode);
    if (portMode) return { mode: portMode, decidedBy: refOf(pa) };
  }
  for (const pa of selected) {
    const mode = definite(pa.spec?.mtls?.mode);
    if (mode) return { mode, decidedBy: refOf(pa) };
  }
  const nsWide = pas.filter((pa) => nsOf(pa) === workload.namespace && !hasSelector(pa));
  for (const pa of nsWide) {
    const mode = definite(pa.spec?.mtls?.mode);
    if (mode) return { mode, decidedBy: refOf(pa) };
  }
  const roots = new Set(mesh.rootNamespaces);
  // Istio-style policies written for istio-system keep working even if the Mesh names another root.
  roots.add('istio-system');
  const meshWide = pas.filter((pa) => roots.has(nsOf(pa)) && !hasSelector(pa) && nsOf(pa) !== workload.namespace);
  for (const pa of meshWide) {
    const mode = definite(pa.spec?.mtls?.mode);
    if (mode) return { mode, decidedBy: refOf(pa) };
  }
  return { mode: 'PERMISSIVE', decidedBy: 'default' };
}
