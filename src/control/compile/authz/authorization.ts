// Compiles the AuthorizationPolicies that apply to a workload into Envoy RBAC HTTP filters (AUDIT, DENY, ALLOW).
import type { AuthorizationPolicySpec, Resource } from '../../../api/types.js';
import { type AnyMessage, RBAC_TYPE, packAny } from '../../../xds/protos.js';
import type { MeshSettings, WorkloadInstance } from '../../model.js';
import { type EnvoyPolicy, compileRule } from './rules.js';
import { policyNamespace, selectPolicies, show } from './select.js';

export const RBAC_FILTER_NAME = 'envoy.filters.http.rbac';

export interface HttpFilter {
  name: string;
  typed_config: AnyMessage;
}

export interface AppliedPolicy {
  /** `ns/name` */
  ref: string;
  action: 'ALLOW' | 'DENY' | 'AUDIT';
  /** Envoy policy keys produced for it (one per rule that can match). */
  keys: string[];
}

export interface AuthorizationResult {
  /** RBAC filters to put into the inbound HCM's `http_filters`, in this order, before the router. */
  filters: HttpFilter[];
  /** The same RBAC configs unpacked (plain proto-shaped objects), for config dumps and tests. */
  configs: object[];
  /** `ns/name` of every policy that applies, in evaluation order (for describe and logs). */
  decidedBy: string[];
  policies: AppliedPolicy[];
  /** One line per field Trellis could not honour, naming the policy and the field. */
  warnings: string[];
}

/** Istio's key for a rule, so the proxy can name the deciding rule: `ns[<ns>]-policy[<name>]-rule[<i>]`. */
export function policyKey(namespace: string, name: string, ruleIndex: number): string {
  return `ns[${namespace}]-policy[${name}]-rule[${ruleIndex}]`;
}

type Enforced = 'ALLOW' | 'DENY' | 'AUDIT';
const ENVOY_ACTION: Record<Enforced, string> = { ALLOW: 'ALLOW', DENY: 'DENY', AUDIT: 'LOG' };

/**
 * Chooses the policies for the workload and produces RBAC filter configs. Semantics (Istio's): any DENY match
 * denies; when ALLOW policies exist, a request matching none is denied; AUDIT only records. CUSTOM is unsupported:
 * a warning, and the policy is treated as absent.
 */
export function compileAuthorization(
  policies: Resource<AuthorizationPolicySpec>[],
  workload: WorkloadInstance,
  mesh: MeshSettings,
): AuthorizationResult {
  const warnings: string[] = [];
  const selected = selectPolicies(policies, workload, mesh, warnings);
  const byAction: Record<Enforced, Record<string, EnvoyPolicy>> = { AUDIT: {}, DENY: {}, ALLOW: {} };
  const present: Record<Enforced, boolean> = { AUDIT: false, DENY: false, ALLOW: false };
  const applied: AppliedPolicy[] = [];
  for (const p of selected) {
    const ns = policyNamespace(p);
    const name = p.metadata?.name ?? '';
    const where = `AuthorizationPolicy ${ns}/${name}`;
    const spec = p.spec ?? {};
    const action = typeof spec.action === 'string' ? spec.action : spec.action === undefined ? 'ALLOW' : show(spec.action);
    if (action === 'CUSTOM') {
      warnings.push(`${where}: action CUSTOM (provider ${show(spec.provider?.name ?? 'unset')}) is not supported; the policy is ignored`);
      continue;
    }
    if (action !== 'ALLOW' && action !== 'DENY' && action !== 'AUDIT') {
      warnings.push(`${where}: action "${action}" is not one of ALLOW, DENY, AUDIT, CUSTOM; the policy is ignored`);
      continue;
    }
    if (spec.provider) warnings.push(`${where}: provider is only used with action CUSTOM; ignored`);
    present[action] = true;
    const keys: string[] = [];
    const rules = Array.isArray(spec.rules) ? spec.rules : [];
    if (spec.rules !== undefined && !Array.isArray(spec.rules)) {
      warnings.push(`${where}: rules must be a list; treated as no rules`);
    }
    rules.forEach((rule, i) => {
      const compiled = compileRule(rule, action, `${where} rules[${i}]`, warnings);
      if (!compiled) return;
      const key = policyKey(ns, name, i);
      byAction[action][key] = compiled;
      keys.push(key);
    });
    applied.push({ ref: `${ns}/${name}`, action, keys });
  }
  const filters: HttpFilter[] = [];
  const configs: object[] = [];
  // AUDIT first so it sees every request, including ones a later filter denies.
  for (const action of ['AUDIT', 'DENY', 'ALLOW'] as const) {
    if (!present[action]) continue;
    const rbac = { rules: { action: ENVOY_ACTION[action], policies: byAction[action] } };
    configs.push(rbac);
    filters.push({ name: RBAC_FILTER_NAME, typed_config: packAny(RBAC_TYPE, rbac) });
  }
  const order: Record<string, number> = { AUDIT: 0, DENY: 1, ALLOW: 2 };
  applied.sort((a, b) => order[a.action] - order[b.action]);
  return { filters, configs, decidedBy: applied.map((a) => a.ref), policies: applied, warnings };
}
