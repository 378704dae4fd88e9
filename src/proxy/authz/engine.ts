// Evaluates the inbound listener's RBAC filter configs against a request: AUDIT records, DENY denies, ALLOW must match.
import { EvalContext, type Predicate, compilePermission, compilePrincipal } from './rbac-matchers.js';
import type { AuthzDecision, AuthzRequest } from './types.js';

type Action = 'ALLOW' | 'DENY' | 'LOG';

interface CompiledPolicy {
  key: string;
  matches: Predicate;
}

interface Stage {
  action: Action;
  policies: CompiledPolicy[];
  /** Shadow (dry-run) rules: evaluated, recorded, never enforced. */
  shadow?: { action: Action; policies: CompiledPolicy[] };
}

export interface AuthzEngine {
  readonly stages: readonly Stage[];
  /** Policies the engine could not evaluate, and how it failed closed; for logs and `trellis describe`. */
  readonly errors: readonly string[];
}

const never: Predicate = () => false;
const always: Predicate = () => true;

type Obj = Record<string, any>;

function actionOf(v: unknown): Action {
  // proto3 enum default ALLOW (0) is left out of decoded objects.
  if (v === undefined || v === 'ALLOW' || v === 0) return 'ALLOW';
  if (v === 'DENY' || v === 1) return 'DENY';
  if (v === 'LOG' || v === 2) return 'LOG';
  throw new Error(`unknown RBAC action ${String(v)}`);
}

function compilePolicy(key: string, p: Obj, action: Action, errors: string[]): CompiledPolicy {
  try {
    if (p.condition || p.checked_condition) throw new Error('CEL conditions are not supported');
    const perms = (p.permissions ?? []).map(compilePermission);
    const prins = (p.principals ?? []).map(compilePrincipal);
    if (perms.length === 0 || prins.length === 0) throw new Error('a policy needs permissions and principals');
    const anyPerm: Predicate = perms.length === 1 ? perms[0] : (c) => perms.some((f: Predicate) => f(c));
    const anyPrin: Predicate = prins.length === 1 ? prins[0] : (c) => prins.some((f: Predicate) => f(c));
    return { key, matches: (c) => anyPerm(c) && anyPrin(c) };
  } catch (e) {
    // Fail closed: an unevaluable DENY policy matches everything, an unevaluable ALLOW or LOG policy nothing.
    const how = action === 'DENY' ? 'treated as matching every request' : 'treated as matching no request';
    errors.push(`${key}: ${(e as Error).message}; ${how}`);
    return { key, matches: action === 'DENY' ? always : never };
  }
}

function compileRules(rules: Obj, errors: string[], label: string): { action: Action; policies: CompiledPolicy[] } {
  let action: Action;
  try {
    action = actionOf(rules.action);
  } catch (e) {
    errors.push(`${label}: ${(e as Error).message}; denying every request`);
    return { action: 'DENY', policies: [{ key: `${label}-unknown-action`, matches: always }] };
  }
  const entries = Object.entries((rules.policies ?? {}) as Record<string, Obj>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { action, policies: entries.map(([key, p]) => compilePolicy(key, p, action, errors)) };
}

/** Builds an engine from the RBAC filter configs (unpacked `envoy.extensions.filters.http.rbac.v3.RBAC`), in filter order. */
export function compileRbac(filterConfigs: readonly Obj[]): AuthzEngine {
  const errors: string[] = [];
  const stages: Stage[] = [];
  filterConfigs.forEach((cfg, i) => {
    const label = `rbac-filter[${i}]`;
    if (cfg.matcher || cfg.shadow_matcher) {
      errors.push(`${label}: matcher trees are not supported; denying every request`);
      stages.push({ action: 'DENY', policies: [{ key: `${label}-unsupported-matcher`, matches: always }] });
      return;
    }
    const shadow = cfg.shadow_rules ? compileRules(cfg.shadow_rules, errors, label) : undefined;
    if (cfg.rules) stages.push({ ...compileRules(cfg.rules, errors, label), shadow });
    // Without `rules` Envoy enforces nothing; a LOG stage with no policies carries the shadow rules.
    else if (shadow) stages.push({ action: 'LOG', policies: [], shadow });
  });
  return { stages, errors };
}

function firstMatch(policies: readonly CompiledPolicy[], c: EvalContext): string | undefined {
  for (const p of policies) if (p.matches(c)) return p.key;
  return undefined;
}

/** Decides one request. Pure; allocates one small context object, plus the audit list when an audit rule matches. */
export function evaluate(engine: AuthzEngine, req: AuthzRequest): AuthzDecision {
  const c = new EvalContext(req);
  let audit: string[] | undefined;
  let allowedBy: string | undefined;
  let sawAllow = false;
  for (const stage of engine.stages) {
    if (stage.shadow) {
      for (const p of stage.shadow.policies) if (p.matches(c)) (audit ??= []).push(`dry-run:${p.key}`);
    }
    if (stage.action === 'LOG') {
      for (const p of stage.policies) if (p.matches(c)) (audit ??= []).push(p.key);
    } else if (stage.action === 'DENY') {
      const key = firstMatch(stage.policies, c);
      if (key !== undefined) {
        return { allowed: false, action: 'DENY', decidedBy: key, reason: `denied by ${key}`, auditMatches: audit };
      }
    } else {
      sawAllow = true;
      const key = firstMatch(stage.policies, c);
      if (key === undefined) {
        return { allowed: false, action: 'ALLOW', reason: 'no ALLOW policy matched', auditMatches: audit };
      }
      allowedBy ??= key;
    }
  }
  if (sawAllow) return { allowed: true, action: 'ALLOW', decidedBy: allowedBy, reason: `allowed by ${allowedBy}`, auditMatches: audit };
  return { allowed: true, action: 'NONE', reason: 'no policy denied', auditMatches: audit };
}

/** An engine that allows everything: a workload with no authorization filters. */
export const ALLOW_ALL: AuthzEngine = { stages: [], errors: [] };
