// Per-resource validation: the kind's schema plus semantic rules the schema cannot express.
import type { Diagnostic, Severity } from './diagnostics.js';
import { namespaceOf } from './names.js';
import { joinPath, positionOf } from './positions.js';
import { checkField, checkObject, isPlainObject, type Report } from './schema-check.js';
import { METADATA_SCHEMA, kindSchema } from './schema.js';
import { checkValueSupport } from './value-support.js';
import { API_VERSIONS, type KindName, type Resource } from './types.js';

/** Builds a reporter that stamps the resource's identity and the field's source position on each finding. */
export function reporterFor(r: Resource, out: Diagnostic[]): Report {
  return (code: string, severity: Severity, field: string, message: string, hint?: string) => {
    const pos = positionOf(r, field);
    const d: Diagnostic = { code, severity, message };
    if (hint) d.hint = hint;
    if (r.source?.file) d.file = r.source.file;
    if (pos) {
      d.line = pos.line;
      d.column = pos.column;
    }
    d.kind = r.kind;
    d.namespace = namespaceOf(r);
    d.name = r.metadata?.name;
    d.field = field;
    out.push(d);
  };
}

const arrayOf = (v: unknown): any[] => (Array.isArray(v) ? v : []);
const objOf = (v: unknown): Record<string, any> => (isPlainObject(v) ? v : {});

/** Checks one resource; works on resources from files (with positions) and from the API (without). */
export function validateResource(r: Resource): Diagnostic[] {
  const out: Diagnostic[] = [];
  const report = reporterFor(r, out);
  const schema = kindSchema(r.kind);
  if (!schema) {
    report('TRL0104', 'error', 'kind', `unknown kind "${r.kind}"`);
    return out;
  }
  if (!API_VERSIONS[schema.kind].includes(r.apiVersion))
    report('TRL0105', 'error', 'apiVersion', `apiVersion "${r.apiVersion}" is not accepted for ${r.kind}`, `use ${API_VERSIONS[schema.kind].join(' or ')}`);
  if (!isPlainObject(r.metadata) || typeof r.metadata.name !== 'string' || r.metadata.name === '') {
    report('TRL0106', 'error', 'metadata', 'missing metadata.name');
    return out;
  }
  checkObject(r.metadata as unknown as Record<string, unknown>, METADATA_SCHEMA, 'metadata', report);
  const empty = r.spec === undefined || r.spec === null || (isPlainObject(r.spec) && Object.keys(r.spec).length === 0);
  if (empty) {
    if (schema.specRequired) report('TRL0109', 'error', 'spec', 'missing spec');
    return out;
  }
  checkField(r.spec, schema.spec, 'spec', report);
  if (!isPlainObject(r.spec)) return out;
  SEMANTIC[schema.kind]?.(r.spec, report, r);
  checkValueSupport(schema.kind, r.spec, report);
  return out;
}

export function validateResources(resources: Resource[]): Diagnostic[] {
  return resources.flatMap((r) => validateResource(r));
}

// ------------------------------------------------------------------ semantic rules per kind

type Rule = (spec: Record<string, any>, report: Report, r: Resource) => void;

function checkWeights(routes: unknown, field: string, report: Report): void {
  const list = arrayOf(routes);
  if (list.length < 2) return;
  let sum = 0;
  for (const d of list) {
    if (typeof objOf(d).weight === 'number') sum += d.weight;
  }
  if (sum !== 100) {
    const last = list.length - 1;
    const where = typeof objOf(list[last]).weight === 'number' ? joinPath(joinPath(field, last), 'weight') : field;
    report('TRL0203', 'error', where, `weights sum to ${sum}, must be 100`, 'with more than one destination, give each a weight and make them add up to 100');
  }
}

function checkGateways(gateways: unknown, field: string, report: Report): void {
  arrayOf(gateways).forEach((g, i) => {
    if (typeof g === 'string' && g !== 'mesh')
      report('TRL0402', 'warning', joinPath(field, i), `gateway "${g}" is not honoured: Trellis has no gateways, only "mesh"`);
  });
}

function checkUnique(list: unknown, key: (item: any) => unknown, field: string, what: string, report: Report): void {
  const seen = new Set<string>();
  arrayOf(list).forEach((item, i) => {
    const k = key(objOf(item));
    if (k === undefined || k === null) return;
    const s = String(k);
    if (seen.has(s)) report('TRL0219', 'error', joinPath(field, i), `duplicate ${what} ${JSON.stringify(k)}`);
    seen.add(s);
  });
}

const virtualService: Rule = (spec, report) => {
  if (Array.isArray(spec.hosts) && spec.hosts.length === 0) report('TRL0204', 'error', 'spec.hosts', 'hosts must not be empty');
  checkGateways(spec.gateways, 'spec.gateways', report);
  arrayOf(spec.http).forEach((rule, i) => {
    const f = `spec.http[${i}]`;
    const h = objOf(rule);
    if (!h.route && !h.redirect && !h.directResponse && !h.delegate)
      report('TRL0213', 'error', f, 'rule has no route, redirect or directResponse');
    if (h.redirect && h.rewrite) report('TRL0213', 'error', `${f}.rewrite`, 'rewrite cannot be combined with redirect');
    if (h.mirror && h.mirrors) report('TRL0213', 'error', `${f}.mirrors`, 'mirror and mirrors exclude each other: use mirrors');
    if ((h.mirrorPercentage || h.mirrorPercent !== undefined) && !h.mirror)
      report('TRL0213', 'error', `${f}.mirrorPercentage`, 'mirrorPercentage needs mirror (with mirrors, set each percentage)');
    checkWeights(h.route, `${f}.route`, report);
    arrayOf(h.match).forEach((m, j) => checkGateways(objOf(m).gateways, `${f}.match[${j}].gateways`, report));
  });
  arrayOf(spec.tcp).forEach((rule, i) => checkWeights(objOf(rule).route, `spec.tcp[${i}].route`, report));
  arrayOf(spec.tls).forEach((rule, i) => checkWeights(objOf(rule).route, `spec.tls[${i}].route`, report));
};

function checkTrafficPolicy(tp: unknown, field: string, report: Report): void {
  const t = objOf(tp);
  const lb = objOf(t.loadBalancer);
  const loc = objOf(lb.localityLbSetting);
  if (loc.distribute && loc.failover) report('TRL0213', 'error', `${field}.loadBalancer.localityLbSetting`, 'distribute and failover exclude each other');
  checkUnique(t.portLevelSettings, (p) => objOf(p.port).number, `${field}.portLevelSettings`, 'port', report);
  arrayOf(t.portLevelSettings).forEach((p, i) => {
    const l = objOf(objOf(objOf(p).loadBalancer).localityLbSetting);
    if (l.distribute && l.failover)
      report('TRL0213', 'error', `${field}.portLevelSettings[${i}].loadBalancer.localityLbSetting`, 'distribute and failover exclude each other');
  });
  arrayOf(loc.distribute).forEach((d, i) => {
    const to = objOf(objOf(d).to);
    const sum = Object.values(to).reduce((a: number, w) => a + (typeof w === 'number' ? w : 0), 0);
    if (Object.keys(to).length > 0 && sum !== 100)
      report('TRL0203', 'error', `${field}.loadBalancer.localityLbSetting.distribute[${i}].to`, `weights sum to ${sum}, must be 100`);
  });
}

const destinationRule: Rule = (spec, report) => {
  checkTrafficPolicy(spec.trafficPolicy, 'spec.trafficPolicy', report);
  checkUnique(spec.subsets, (s) => s.name, 'spec.subsets', 'subset name', report);
  arrayOf(spec.subsets).forEach((s, i) => checkTrafficPolicy(objOf(s).trafficPolicy, `spec.subsets[${i}].trafficPolicy`, report));
};

const serviceEntry: Rule = (spec, report) => {
  if (Array.isArray(spec.hosts) && spec.hosts.length === 0) report('TRL0204', 'error', 'spec.hosts', 'hosts must not be empty');
  checkUnique(spec.ports, (p) => p.number, 'spec.ports', 'port', report);
  checkUnique(spec.ports, (p) => p.name, 'spec.ports', 'port name', report);
  if (spec.resolution === 'STATIC' && !spec.endpoints && !spec.workloadSelector)
    report('TRL0204', 'error', 'spec.resolution', 'resolution STATIC needs endpoints or a workloadSelector');
  if (spec.resolution === 'DNS' || spec.resolution === 'DNS_ROUND_ROBIN') {
    arrayOf(spec.hosts).forEach((h, i) => {
      if (typeof h === 'string' && h.startsWith('*') && !spec.endpoints)
        report('TRL0215', 'error', `spec.hosts[${i}]`, `wildcard host "${h}" cannot be resolved with DNS`, 'use resolution NONE, or list endpoints');
    });
  }
};

const peerAuthentication: Rule = (spec, report) => {
  if (spec.portLevelMtls && !objOf(spec.selector).matchLabels)
    report('TRL0204', 'error', 'spec.portLevelMtls', 'portLevelMtls needs a selector with matchLabels');
};

const AUTHZ_KEYS = [
  /^request\.headers\[[^\]]+\]$/,
  /^source\.(ip|namespace|principal)$/,
  /^remote\.ip$/,
  /^request\.auth\.(principal|audiences|presenter)$/,
  /^request\.auth\.claims\[[^\]]+\](\[[^\]]+\])*$/,
  /^destination\.(ip|port)$/,
  /^connection\.sni$/,
  /^experimental\.envoy\.filters\./,
];

const authorizationPolicy: Rule = (spec, report) => {
  if (spec.action === 'CUSTOM')
    report('TRL0402', 'warning', 'spec.action', 'action CUSTOM is not honoured: external authorizers are not implemented, so this policy is ignored');
  if (spec.provider && spec.action !== 'CUSTOM') report('TRL0213', 'error', 'spec.provider', 'provider is only allowed with action CUSTOM');
  const targets = spec.targetRef ? [['spec.targetRef', spec.targetRef]] : arrayOf(spec.targetRefs).map((t, i) => [`spec.targetRefs[${i}]`, t]);
  for (const [f, t] of targets) {
    const k = objOf(t).kind;
    if (typeof k === 'string' && k !== 'Service')
      report('TRL0402', 'warning', `${f}.kind`, `targetRef kind "${k}" is not honoured: Trellis policies target a Service`);
  }
  arrayOf(spec.rules).forEach((rule, i) => {
    arrayOf(objOf(rule).when).forEach((c, j) => {
      const f = `spec.rules[${i}].when[${j}]`;
      const cond = objOf(c);
      if (typeof cond.key === 'string' && !AUTHZ_KEYS.some((re) => re.test(cond.key)))
        report('TRL0205', 'error', `${f}.key`, `unknown condition key "${cond.key}"`, 'e.g. request.headers[x-user], source.ip, source.namespace, request.auth.claims[iss]');
      if (!cond.values && !cond.notValues) report('TRL0213', 'error', f, 'set values or notValues');
    });
    arrayOf(objOf(rule).from).forEach((fr, j) => {
      if (Object.keys(objOf(objOf(fr).source)).length === 0) report('TRL0204', 'error', `spec.rules[${i}].from[${j}].source`, 'source must set at least one field');
    });
    arrayOf(objOf(rule).to).forEach((to, j) => {
      if (Object.keys(objOf(objOf(to).operation)).length === 0) report('TRL0204', 'error', `spec.rules[${i}].to[${j}].operation`, 'operation must set at least one field');
    });
  });
};

const requestAuthentication: Rule = (spec, report) => {
  arrayOf(spec.jwtRules).forEach((rule, i) => {
    const j = objOf(rule);
    if (typeof j.issuer !== 'string' || j.issuer === '')
      report('TRL0218', 'error', `spec.jwtRules[${i}]`, 'jwtRule has no issuer', 'set issuer to the "iss" claim the tokens carry');
    if (typeof j.jwks === 'string') {
      try {
        const k = JSON.parse(j.jwks);
        if (!Array.isArray(k?.keys)) throw new Error('no "keys" list');
      } catch (err) {
        report('TRL0216', 'error', `spec.jwtRules[${i}].jwks`, `jwks is not a JSON Web Key Set: ${(err as Error).message}`);
      }
    }
    if (typeof j.jwksUri === 'string' && !/^https?:\/\//.test(j.jwksUri))
      report('TRL0216', 'error', `spec.jwtRules[${i}].jwksUri`, `jwksUri must be an http(s) URL, got "${j.jwksUri}"`);
  });
  checkUnique(spec.jwtRules, (j) => j.issuer, 'spec.jwtRules', 'issuer', report);
};

const FILTER_FIELD: Record<string, string> = {
  RequestHeaderModifier: 'requestHeaderModifier',
  ResponseHeaderModifier: 'responseHeaderModifier',
  RequestRedirect: 'requestRedirect',
  URLRewrite: 'urlRewrite',
  RequestMirror: 'requestMirror',
  ExtensionRef: 'extensionRef',
};

function checkFilters(filters: unknown, field: string, report: Report): void {
  const list = arrayOf(filters);
  list.forEach((fl, i) => {
    const f = objOf(fl);
    const want = FILTER_FIELD[f.type as string];
    if (!want) return; // the enum check reported it
    const p = joinPath(field, i);
    if (f[want] === undefined) report('TRL0204', 'error', joinPath(p, want), `filter type ${f.type} needs ${want}`);
    for (const [t, other] of Object.entries(FILTER_FIELD)) {
      if (other !== want && f[other] !== undefined) report('TRL0213', 'error', joinPath(p, other), `${other} does not belong to a filter of type ${f.type} (that is type ${t})`);
    }
    for (const mod of ['requestRedirect', 'urlRewrite']) {
      const path = objOf(objOf(f[mod]).path);
      if (path.type === 'ReplaceFullPath' && path.replaceFullPath === undefined)
        report('TRL0204', 'error', `${p}.${mod}.path.replaceFullPath`, 'path type ReplaceFullPath needs replaceFullPath');
      if (path.type === 'ReplacePrefixMatch' && path.replacePrefixMatch === undefined)
        report('TRL0204', 'error', `${p}.${mod}.path.replacePrefixMatch`, 'path type ReplacePrefixMatch needs replacePrefixMatch');
    }
  });
  const types = list.map((fl) => objOf(fl).type);
  if (types.includes('RequestRedirect') && types.includes('URLRewrite'))
    report('TRL0213', 'error', field, 'RequestRedirect and URLRewrite cannot be used in the same rule');
}

function checkParentRefs(spec: Record<string, any>, report: Report): void {
  arrayOf(spec.parentRefs).forEach((p, i) => {
    const ref = objOf(p);
    const kind = ref.kind ?? 'Gateway';
    if (kind !== 'Service')
      report(
        'TRL0402',
        'warning',
        `spec.parentRefs[${i}]`,
        `parentRef kind "${kind}" is not honoured: Trellis has no gateways, so this parent attaches the route to nothing`,
        'for mesh routing use kind: Service, group: ""',
      );
    else if (ref.group !== undefined && ref.group !== '' && ref.group !== 'core')
      report('TRL0402', 'warning', `spec.parentRefs[${i}].group`, `parentRef group "${ref.group}" is not honoured for kind Service`, 'use group: ""');
  });
}

function checkBackendRefs(refs: unknown, field: string, report: Report): void {
  arrayOf(refs).forEach((b, i) => {
    const k = objOf(b).kind;
    if (k !== undefined && k !== 'Service')
      report('TRL0402', 'warning', `${field}[${i}].kind`, `backendRef kind "${k}" is not honoured: backends are Services`);
  });
}

const httpRoute: Rule = (spec, report) => {
  checkParentRefs(spec, report);
  arrayOf(spec.rules).forEach((rule, i) => {
    const f = `spec.rules[${i}]`;
    const r = objOf(rule);
    checkFilters(r.filters, `${f}.filters`, report);
    checkBackendRefs(r.backendRefs, `${f}.backendRefs`, report);
    arrayOf(r.backendRefs).forEach((b, j) => checkFilters(objOf(b).filters, `${f}.backendRefs[${j}].filters`, report));
    arrayOf(r.matches).forEach((m, j) => {
      const path = objOf(objOf(m).path);
      const type = path.type ?? 'PathPrefix';
      if (typeof path.value === 'string') {
        if (type === 'RegularExpression') {
          try {
            new RegExp(path.value);
          } catch (err) {
            report('TRL0208', 'error', `${f}.matches[${j}].path.value`, `regular expression ${JSON.stringify(path.value)} does not compile: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
          }
        } else if (!path.value.startsWith('/')) report('TRL0216', 'error', `${f}.matches[${j}].path.value`, `path "${path.value}" must start with "/"`);
      }
      arrayOf(objOf(m).headers).forEach((h, k) => {
        const hm = objOf(h);
        if (hm.type === 'RegularExpression' && typeof hm.value === 'string') {
          try {
            new RegExp(hm.value);
          } catch (err) {
            report('TRL0208', 'error', `${f}.matches[${j}].headers[${k}].value`, `regular expression ${JSON.stringify(hm.value)} does not compile: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
          }
        }
      });
    });
  });
};

const grpcRoute: Rule = (spec, report) => {
  checkParentRefs(spec, report);
  arrayOf(spec.rules).forEach((rule, i) => {
    const f = `spec.rules[${i}]`;
    const r = objOf(rule);
    checkFilters(r.filters, `${f}.filters`, report);
    checkBackendRefs(r.backendRefs, `${f}.backendRefs`, report);
    arrayOf(r.matches).forEach((m, j) => {
      const method = objOf(objOf(m).method);
      if (objOf(m).method && method.service === undefined && method.method === undefined)
        report('TRL0204', 'error', `${f}.matches[${j}].method`, 'method match needs service or method');
    });
  });
};

const service: Rule = (spec, report) => {
  checkUnique(spec.ports, (p) => p.name, 'spec.ports', 'port name', report);
  checkUnique(spec.ports, (p) => p.port, 'spec.ports', 'port', report);
  if (arrayOf(spec.ports).length > 1)
    arrayOf(spec.ports).forEach((p, i) => {
      if (objOf(p).name === undefined) report('TRL0204', 'error', `spec.ports[${i}].name`, 'ports need names when a Service has more than one');
    });
};

const workload: Rule = (spec, report) => {
  checkUnique(spec.ports, (p) => p.port, 'spec.ports', 'port', report);
  checkUnique(spec.ports, (p) => p.name, 'spec.ports', 'port name', report);
  const proxy = objOf(spec.proxy);
  const used = new Map<number, string>();
  for (const p of arrayOf(spec.ports)) if (typeof objOf(p).port === 'number') used.set(p.port, 'an app port');
  for (const k of ['outboundPort', 'inboundPort', 'adminPort', 'metricsPort']) {
    const v = proxy[k];
    if (typeof v !== 'number') continue;
    const prev = used.get(v);
    if (prev) report('TRL0309', 'error', `spec.proxy.${k}`, `port ${v} is already used by ${prev} of this workload`);
    else used.set(v, `proxy.${k}`);
  }
  checkUnique(spec.upstreams, (u) => u.localPort, 'spec.upstreams', 'localPort', report);
};

const rateLimitPolicy: Rule = (spec, report) => {
  const limits = objOf(spec.limits);
  if (spec.limits && !limits.total && !limits.perCaller) report('TRL0213', 'error', 'spec.limits', 'set total, perCaller, or both');
  if (spec.targetRef && objOf(spec.targetRef).kind !== 'Service' && typeof objOf(spec.targetRef).kind === 'string')
    report('TRL0402', 'warning', 'spec.targetRef.kind', `targetRef kind "${spec.targetRef.kind}" is not honoured: rate limits target a Service`);
  if (!spec.selector && !spec.targetRef)
    report('TRL0204', 'error', 'spec', 'set selector or targetRef to say which workloads are limited');
  // Enforced by the destination's proxy, whose only HTTP route is "inbound": callers' route names never reach it.
  arrayOf(spec.routes).forEach((r, i) => {
    if (typeof r === 'string' && r !== 'inbound')
      report('TRL0402', 'warning', `spec.routes[${i}]`, `route "${r}" never matches: the limit runs in the destination's proxy, whose only route is "inbound"`, 'use spec.paths to limit part of a service');
  });
};

const trafficSplit: Rule = (spec, report) => {
  checkUnique(spec.backends, (b) => b.service, 'spec.backends', 'backend service', report);
};

const mesh: Rule = (spec, report) => {
  // Mesh default retries cover idempotent requests only: the compiler drops the token, so say so.
  const on = objOf(objOf(spec.defaults).retries).retryOn;
  if (typeof on === 'string' && on.split(',').some((t) => t.trim() === 'non-idempotent'))
    report('TRL0402', 'warning', 'spec.defaults.retries.retryOn', '"non-idempotent" is not honoured here: mesh default retries apply to idempotent requests only', 'set retries with non-idempotent on the VirtualService routes that need it');
};

const SEMANTIC: Partial<Record<KindName, Rule>> = {
  VirtualService: virtualService,
  DestinationRule: destinationRule,
  ServiceEntry: serviceEntry,
  PeerAuthentication: peerAuthentication,
  AuthorizationPolicy: authorizationPolicy,
  RequestAuthentication: requestAuthentication,
  HTTPRoute: httpRoute,
  GRPCRoute: grpcRoute,
  Service: service,
  Workload: workload,
  RateLimitPolicy: rateLimitPolicy,
  TrafficSplit: trafficSplit,
  Mesh: mesh,
};
