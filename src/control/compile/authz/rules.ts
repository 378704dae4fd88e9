// Compiles one AuthorizationPolicy rule (from / to / when) into an Envoy RBAC Policy, failing closed on what it cannot honour.
import type { AuthzCondition, AuthzOperation, AuthzRule, AuthzSource } from '../../../api/types.js';
import {
  type StringMatcher,
  escapeRe2,
  istioStringMatch,
  namespaceMatch,
  parseCidr,
  parsePort,
  pathMatch,
} from './values.js';

/** Metadata filter our proxy (and Istio's istio_authn filter) fills with request.auth.* attributes. */
export const AUTHN_METADATA_FILTER = 'istio_authn';

export type Permission = Record<string, unknown>;
export type Principal = Record<string, unknown>;

export interface EnvoyPolicy {
  permissions: Permission[];
  principals: Principal[];
}

interface Ctx {
  /** DENY drops a constraint it cannot honour (the rule matches more); ALLOW and AUDIT drop the whole rule. */
  enforcing: 'DENY' | 'ALLOW' | 'AUDIT';
  where: string;
  warnings: string[];
  dead: boolean;
}

function bad(ctx: Ctx, msg: string): undefined {
  if (ctx.enforcing === 'DENY') {
    ctx.warnings.push(`${ctx.where}: ${msg}; the constraint is dropped so the DENY rule matches more requests (fail closed)`);
  } else {
    ctx.warnings.push(`${ctx.where}: ${msg}; the rule never matches (fail closed)`);
    ctx.dead = true;
  }
  return undefined;
}

const anyPerm = (): Permission => ({ any: true });
const anyPrin = (): Principal => ({ any: true });

function orIds(ids: Principal[]): Principal {
  return ids.length === 1 ? ids[0] : { or_ids: { ids } };
}
function andIds(ids: Principal[]): Principal {
  if (ids.length === 0) return anyPrin();
  return ids.length === 1 ? ids[0] : { and_ids: { ids } };
}
function orRules(rules: Permission[]): Permission {
  return rules.length === 1 ? rules[0] : { or_rules: { rules } };
}
function andRules(rules: Permission[]): Permission {
  if (rules.length === 0) return anyPerm();
  return rules.length === 1 ? rules[0] : { and_rules: { rules } };
}

function strings(ctx: Ctx, field: string, values: unknown): string[] | undefined {
  if (values === undefined || values === null) return [];
  if (!Array.isArray(values) || values.some((v) => typeof v !== 'string' && typeof v !== 'number')) {
    return bad(ctx, `${field} must be a list of strings`);
  }
  return values.map(String);
}

/** Builds one matcher per value; undefined (constraint dropped or rule dead) when any value is invalid. */
function mapAll<T>(ctx: Ctx, field: string, values: unknown, one: (v: string) => T | string): T[] | undefined {
  const list = strings(ctx, field, values);
  if (!list) return undefined;
  const out: T[] = [];
  for (const v of list) {
    const m = one(v);
    if (typeof m === 'string') return bad(ctx, `${field}: ${m}`);
    out.push(m);
  }
  return out;
}

const principalName = (sm: StringMatcher): Principal => ({ authenticated: { principal_name: sm } });

function principalValue(v: string): Principal {
  return principalName(v.startsWith('*') && v !== '*' ? istioStringMatch(v) : istioStringMatch(v, { prefixWith: 'spiffe://' }));
}

function cidrPrincipal(kind: 'direct_remote_ip' | 'remote_ip') {
  return (v: string): Principal | string => {
    const c = parseCidr(v);
    return c ? { [kind]: c } : `"${v}" is not an IP address or CIDR`;
  };
}

function authnMetadata(keys: string[], value: Record<string, unknown>): Principal {
  return { metadata: { filter: AUTHN_METADATA_FILTER, path: keys.map((key) => ({ key })), value } };
}

/** A claim may be a string or a list of strings; either form matches. */
function stringOrListValue(sm: StringMatcher): Record<string, unknown> {
  return { or_match: { value_matchers: [{ string_match: sm }, { list_match: { one_of: { string_match: sm } } }] } };
}

function serviceAccountValue(v: string): Principal | string {
  const parts = v.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) return `"${v}" is not of the form <namespace>/<serviceAccount>`;
  return principalName({ safe_regex: { regex: `spiffe://[^/]+/ns/${escapeRe2(parts[0])}/sa/${escapeRe2(parts[1])}` } });
}

type SourceField = (v: string) => Principal | string;
const SOURCE_FIELDS: Record<string, SourceField> = {
  principals: principalValue,
  requestPrincipals: (v) => authnMetadata(['request.auth.principal'], { string_match: istioStringMatch(v) }),
  namespaces: (v) => principalName(namespaceMatch(v)),
  ipBlocks: cidrPrincipal('direct_remote_ip'),
  remoteIpBlocks: cidrPrincipal('remote_ip'),
  serviceAccounts: serviceAccountValue,
};

function compileSource(ctx: Ctx, source: AuthzSource | undefined, i: number): Principal {
  const conj: Principal[] = [];
  for (const [key, values] of Object.entries(source ?? {})) {
    const negated = /^not[A-Z]/.test(key);
    const base = negated ? key[3].toLowerCase() + key.slice(4) : key;
    const fn = SOURCE_FIELDS[base];
    const field = `from[${i}].source.${key}`;
    if (!fn) {
      bad(ctx, `${field} is not supported`);
      continue;
    }
    const ids = mapAll(ctx, field, values, fn);
    if (!ids || ids.length === 0) continue;
    conj.push(negated ? { not_id: orIds(ids) } : orIds(ids));
  }
  return andIds(conj);
}

function hostValue(v: string): Permission {
  const sm = istioStringMatch(v, { ignoreCase: true });
  const header = (m: StringMatcher): Permission => ({ header: { name: ':authority', string_match: m } });
  // A Host header may carry a port; `hosts: [example.com]` should still match `example.com:8080`.
  if (sm.exact !== undefined) return { or_rules: { rules: [header(sm), header({ prefix: `${v}:`, ignore_case: true })] } };
  return header(sm);
}

type OpField = (v: string) => Permission | string;
const OPERATION_FIELDS: Record<string, OpField> = {
  hosts: hostValue,
  ports: (v) => {
    const p = parsePort(v);
    return p === undefined ? `"${v}" is not a port number` : { destination_port: p };
  },
  methods: (v) => ({ header: { name: ':method', string_match: istioStringMatch(v) } }),
  paths: (v) => (v === '' ? 'empty path' : { url_path: { path: pathMatch(v) } }),
};

function compileOperation(ctx: Ctx, op: AuthzOperation | undefined, i: number): Permission {
  const conj: Permission[] = [];
  for (const [key, values] of Object.entries(op ?? {})) {
    const negated = /^not[A-Z]/.test(key);
    const base = negated ? key[3].toLowerCase() + key.slice(4) : key;
    const fn = OPERATION_FIELDS[base];
    const field = `to[${i}].operation.${key}`;
    if (!fn) {
      bad(ctx, `${field} is not supported`);
      continue;
    }
    const rules = mapAll(ctx, field, values, fn);
    if (!rules || rules.length === 0) continue;
    conj.push(negated ? { not_rule: orRules(rules) } : orRules(rules));
  }
  return andRules(conj);
}

type Cond = { principal: (v: string) => Principal | string } | { permission: (v: string) => Permission | string };

const HEADER_KEY = /^request\.headers\[([^[\]]+)\]$/;
const CLAIMS_KEY = /^request\.auth\.claims((?:\[[^[\]]+\])+)$/;

function conditionFor(key: string): Cond | undefined {
  let m = HEADER_KEY.exec(key);
  if (m) {
    const name = m[1].trim().toLowerCase();
    return { principal: (v) => ({ header: { name, string_match: istioStringMatch(v) } }) };
  }
  m = CLAIMS_KEY.exec(key);
  if (m) {
    const path = m[1].slice(1, -1).split('][');
    return { principal: (v) => authnMetadata(['request.auth.claims', ...path], stringOrListValue(istioStringMatch(v))) };
  }
  switch (key) {
    case 'source.ip':
      return { principal: cidrPrincipal('direct_remote_ip') };
    case 'remote.ip':
      return { principal: cidrPrincipal('remote_ip') };
    case 'source.namespace':
      return { principal: (v) => principalName(namespaceMatch(v)) };
    case 'source.principal':
      return { principal: principalValue };
    case 'request.auth.principal':
      return { principal: (v) => authnMetadata(['request.auth.principal'], { string_match: istioStringMatch(v) }) };
    case 'request.auth.audiences':
      return { principal: (v) => authnMetadata(['request.auth.audiences'], stringOrListValue(istioStringMatch(v))) };
    case 'request.auth.presenter':
      return { principal: (v) => authnMetadata(['request.auth.presenter'], { string_match: istioStringMatch(v) }) };
    case 'destination.ip':
      return {
        permission: (v) => {
          const c = parseCidr(v);
          return c ? { destination_ip: c } : `"${v}" is not an IP address or CIDR`;
        },
      };
    case 'destination.port':
      return {
        permission: (v) => {
          const p = parsePort(v);
          return p === undefined ? `"${v}" is not a port number` : { destination_port: p };
        },
      };
    case 'connection.sni':
      return { permission: (v) => ({ requested_server_name: istioStringMatch(v) }) };
    default:
      return undefined;
  }
}

function compileCondition(ctx: Ctx, c: AuthzCondition, i: number, perms: Permission[], prins: Principal[]): void {
  const field = `when[${i}]`;
  if (!isMapping(c) || typeof c.key !== 'string') {
    bad(ctx, `${field}.key is missing`);
    return;
  }
  const cond = conditionFor(c.key);
  if (!cond) {
    bad(ctx, `${field}.key ${JSON.stringify(c.key)} is not supported`);
    return;
  }
  const hasValues = (c.values?.length ?? 0) > 0;
  const hasNot = (c.notValues?.length ?? 0) > 0;
  if (!hasValues && !hasNot) {
    bad(ctx, `${field} (${c.key}) needs values or notValues`);
    return;
  }
  if ('principal' in cond) {
    const pos = hasValues ? mapAll(ctx, `${field}.values`, c.values, cond.principal) : [];
    const neg = hasNot ? mapAll(ctx, `${field}.notValues`, c.notValues, cond.principal) : [];
    // A condition is one conjunct: if either half is invalid, DENY drops the whole condition.
    if (!pos || !neg) return;
    if (pos.length) prins.push(orIds(pos));
    if (neg.length) prins.push({ not_id: orIds(neg) });
  } else {
    const pos = hasValues ? mapAll(ctx, `${field}.values`, c.values, cond.permission) : [];
    const neg = hasNot ? mapAll(ctx, `${field}.notValues`, c.notValues, cond.permission) : [];
    if (!pos || !neg) return;
    if (pos.length) perms.push(orRules(pos));
    if (neg.length) perms.push({ not_rule: orRules(neg) });
  }
}

const RULE_FIELDS = new Set(['from', 'to', 'when']);

function isMapping(v: unknown): v is Record<string, any> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** Istio rejects a missing or empty source/operation; here it fails closed like any field it cannot honour. */
function nonEmpty(ctx: Ctx, v: unknown, field: string): boolean {
  if (isMapping(v) && Object.keys(v).length > 0) return true;
  bad(ctx, `${field} must be a non-empty mapping`);
  return false;
}

/**
 * One Istio rule as an Envoy Policy: (any `from` source) AND (any `to` operation) AND (every `when`).
 * Returns undefined when the rule can never match (ALLOW/AUDIT with something it cannot honour).
 */
export function compileRule(
  rule: AuthzRule | null | undefined,
  action: 'ALLOW' | 'DENY' | 'AUDIT',
  where: string,
  warnings: string[],
): EnvoyPolicy | undefined {
  const ctx: Ctx = { enforcing: action, where, warnings, dead: false };
  const principals: Principal[] = [];
  const permissions: Permission[] = [];
  if (!isMapping(rule)) {
    bad(ctx, 'a rule must be a mapping');
    rule = {};
  }
  for (const key of Object.keys(rule)) if (!RULE_FIELDS.has(key)) bad(ctx, `field ${key} is not supported`);
  if (rule.from !== undefined && !Array.isArray(rule.from)) bad(ctx, 'from must be a list');
  else if (rule.from?.length) {
    principals.push(orIds(rule.from.map((f, i) => (nonEmpty(ctx, f?.source, `from[${i}].source`) ? compileSource(ctx, f.source, i) : anyPrin()))));
  }
  if (rule.to !== undefined && !Array.isArray(rule.to)) bad(ctx, 'to must be a list');
  else if (rule.to?.length) {
    permissions.push(orRules(rule.to.map((t, i) => (nonEmpty(ctx, t?.operation, `to[${i}].operation`) ? compileOperation(ctx, t.operation, i) : anyPerm()))));
  }
  if (rule?.when !== undefined && !Array.isArray(rule.when)) bad(ctx, 'when must be a list');
  else (rule.when ?? []).forEach((c, i) => compileCondition(ctx, c, i, permissions, principals));
  if (ctx.dead) return undefined;
  return { permissions: [andRules(permissions)], principals: [andIds(principals)] };
}
