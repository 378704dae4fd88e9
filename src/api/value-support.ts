// TRL0402 warnings for values Trellis accepts but does not honour (the field itself works for other values).
import { isIP } from 'node:net';
import type { Severity } from './diagnostics.js';
import { joinPath } from './positions.js';
import { isPlainObject, type Report } from './schema-check.js';
import type { KindName } from './types.js';

type Rule = (spec: Record<string, any>, warn: (field: string, message: string, hint?: string) => void) => void;

const arrayOf = (v: unknown): any[] => (Array.isArray(v) ? v : []);
const objOf = (v: unknown): Record<string, any> => (isPlainObject(v) ? v : {});

const NO_ORIGINATION = 'TLS origination is not implemented: Trellis uses mesh mTLS to endpoints that run a Trellis proxy and plaintext to all others';

/** One traffic policy (top level, per port, per subset): load balancer and TLS values. */
function trafficPolicyValues(tp: unknown, field: string, warn: Parameters<Rule>[1]): void {
  const t = objOf(tp);
  if (objOf(t.loadBalancer).simple === 'PASSTHROUGH')
    warn(`${field}.loadBalancer.simple`, 'PASSTHROUGH is not honoured: there is no original destination to pass through to; endpoints are balanced ROUND_ROBIN');
  const http = objOf(objOf(t.connectionPool).http);
  if (http.h2UpgradePolicy === 'UPGRADE' || http.h2UpgradePolicy === 'DO_NOT_UPGRADE')
    warn(`${field}.connectionPool.http.h2UpgradePolicy`, `${http.h2UpgradePolicy} is not honoured: the proxies choose the protocol between themselves`);
  if (http.useClientProtocol === true)
    warn(`${field}.connectionPool.http.useClientProtocol`, 'true is not honoured: the proxies choose the protocol between themselves');
  const od = objOf(t.outlierDetection);
  if (od.splitExternalLocalOriginErrors === true)
    warn(`${field}.outlierDetection.splitExternalLocalOriginErrors`, 'true is not honoured: local-origin failures (connect failure, reset) count as 5xx errors towards consecutive5xxErrors');
  if (typeof od.minHealthPercent === 'number' && od.minHealthPercent > 0)
    warn(`${field}.outlierDetection.minHealthPercent`, `${od.minHealthPercent} is not honoured: ejection stays on whatever share is healthy (bounded by maxEjectionPercent)`);
  const mode = objOf(t.tls).mode;
  if (mode === 'DISABLE')
    warn(`${field}.tls.mode`, 'DISABLE is not honoured: endpoints that run a Trellis proxy are always reached over mesh mTLS', 'use a PeerAuthentication on the destination to accept plaintext');
  else if (mode === 'SIMPLE' || mode === 'MUTUAL')
    warn(`${field}.tls.mode`, `${mode} is not honoured: ${NO_ORIGINATION}`, 'let the app speak TLS to the destination itself');
  arrayOf(t.portLevelSettings).forEach((p, i) => trafficPolicyValues(p, `${field}.portLevelSettings[${i}]`, warn));
}

function endpointAddress(e: unknown, field: string, warn: Parameters<Rule>[1]): void {
  const a = objOf(e).address;
  if (typeof a === 'string' && a !== '' && isIP(a) === 0)
    warn(joinPath(field, 'address'), `"${a}" is not honoured: Trellis does not resolve DNS names, so this endpoint is skipped`, 'give the IP address');
}

/** Gateway API filters on a backendRef: only header modifiers are applied per backend. */
function backendFilterValues(rule: unknown, field: string, warn: Parameters<Rule>[1]): void {
  arrayOf(objOf(rule).backendRefs).forEach((b, j) => {
    arrayOf(objOf(b).filters).forEach((f, k) => {
      const t = objOf(f).type;
      if (typeof t === 'string' && t !== 'RequestHeaderModifier' && t !== 'ResponseHeaderModifier')
        warn(`${field}.backendRefs[${j}].filters[${k}].type`, `filter type ${t} on a backendRef is not honoured: only header modifiers apply per backend`, 'put the filter on the rule');
    });
  });
  arrayOf(objOf(rule).filters).forEach((f, k) => {
    const kind = objOf(objOf(objOf(f).requestMirror).backendRef).kind;
    if (typeof kind === 'string' && kind !== 'Service')
      warn(`${field}.filters[${k}].requestMirror.backendRef.kind`, `backendRef kind "${kind}" is not honoured: mirrors are Services`);
  });
}

const gatewayRoute: Rule = (spec, warn) => arrayOf(spec.rules).forEach((r, i) => backendFilterValues(r, `spec.rules[${i}]`, warn));

const RULES: Partial<Record<KindName, Rule>> = {
  VirtualService: (spec, warn) => {
    arrayOf(spec.http).forEach((h, i) => {
      if (objOf(objOf(h).retries).retryRemoteLocalities === true)
        warn(`spec.http[${i}].retries.retryRemoteLocalities`, 'true is not honoured: retries pick endpoints with the same locality priorities as first tries');
      if (objOf(objOf(h).retries).retryIgnorePreviousHosts === false)
        warn(`spec.http[${i}].retries.retryIgnorePreviousHosts`, 'false is not honoured: a retry always avoids hosts tried before while another is left');
    });
  },
  DestinationRule: (spec, warn) => {
    trafficPolicyValues(spec.trafficPolicy, 'spec.trafficPolicy', warn);
    arrayOf(spec.subsets).forEach((s, i) => trafficPolicyValues(objOf(s).trafficPolicy, `spec.subsets[${i}].trafficPolicy`, warn));
  },
  ServiceEntry: (spec, warn) => {
    const endpoints = arrayOf(spec.endpoints);
    if (spec.resolution === 'DNS' || spec.resolution === 'DNS_ROUND_ROBIN')
      warn('spec.resolution', `${spec.resolution} is not honoured: Trellis does not resolve DNS names; only endpoints with IP addresses are used`, 'list the endpoints\' IP addresses with resolution STATIC');
    else if (spec.resolution === 'NONE' && endpoints.length === 0 && !spec.workloadSelector)
      warn('spec.resolution', 'NONE is not honoured: Trellis has no original destination to pass through to, so this service has no endpoints', 'list endpoints (IP addresses) with resolution STATIC');
    if (spec.location === 'MESH_INTERNAL' && endpoints.length > 0)
      warn('spec.location', 'MESH_INTERNAL is not honoured for static endpoints: they run no Trellis proxy and are reached in plaintext', 'select Workloads with workloadSelector for mTLS endpoints');
    arrayOf(spec.ports).forEach((p, i) => {
      if (objOf(p).protocol === 'UDP') warn(`spec.ports[${i}].protocol`, 'UDP is not honoured: Trellis proxies TCP only');
    });
    endpoints.forEach((e, i) => endpointAddress(e, `spec.endpoints[${i}]`, warn));
  },
  WorkloadEntry: (spec, warn) => endpointAddress(spec, 'spec', warn),
  Service: (spec, warn) => {
    arrayOf(spec.ports).forEach((p, i) => {
      const proto = objOf(p).protocol;
      if (proto === 'UDP' || proto === 'SCTP') warn(`spec.ports[${i}].protocol`, `${proto} is not honoured: Trellis proxies TCP only`);
    });
    if (spec.internalTrafficPolicy === 'Local')
      warn('spec.internalTrafficPolicy', 'Local is not honoured: Trellis has no nodes; traffic goes to every endpoint', 'use a DestinationRule localityLbSetting to prefer nearby endpoints');
  },
  RequestAuthentication: (spec, warn) => {
    const targets = spec.targetRef ? [['spec.targetRef', spec.targetRef]] : arrayOf(spec.targetRefs).map((t, i) => [`spec.targetRefs[${i}]`, t]);
    for (const [f, t] of targets) {
      const k = objOf(t).kind;
      if (typeof k === 'string' && k !== 'Service')
        warn(`${f}.kind`, `targetRef kind "${k}" is not honoured: Trellis policies target a Service`);
    }
  },
  HTTPRoute: gatewayRoute,
  GRPCRoute: gatewayRoute,
};

/** Reports TRL0402 for every value of `spec` (a plain object) that Trellis accepts but does not honour. */
export function checkValueSupport(kind: KindName, spec: Record<string, any>, report: Report): void {
  const severity: Severity = 'warning';
  RULES[kind]?.(spec, (field, message, hint) => report('TRL0402', severity, field, message, hint));
}
