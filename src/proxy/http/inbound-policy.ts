// The inbound layer-7 security layers, in Envoy's order: request hygiene and normalization -> JWT -> authorization -> rate limit.
import type { InboundChain } from '../config/types.js';
import { evaluate, type AuthzDecision } from '../authz/index.js';
import type { JwtResult } from '../authz/index.js';
import { normalizePath } from '../route/normalize.js';
import type { InboundPolicy } from '../inbound-policy/policy.js';
import { callerKey, policyHost, validMethod } from '../inbound-policy/request.js';
import { labelKey } from '../../telemetry/registry.js';
import type { ProxyMetrics } from '../../telemetry/proxy-metrics.js';
import type { Exchange, Layer } from './exchange.js';
import { reject } from './layers.js';

/** What the inbound path knows about a request beyond the shared Exchange. */
export interface InboundExchange extends Exchange {
  /** Verified SPIFFE ID of the caller; undefined for plaintext. */
  peer?: string;
  /** This workload's SPIFFE ID. */
  local: string;
  chain: InboundChain;
  policy: InboundPolicy;
  /** Socket peer address (IPv4-mapped prefix removed). */
  sourceIp: string;
  /** Host as authorization compares it (set by the hygiene layer). */
  policyHost: string;
  /** The verified token (iss/sub and claims), when one was presented and accepted. */
  jwt?: { payload: Record<string, unknown>; principal: string };
}

export type LogFn = (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void;

export interface InboundPolicyDeps {
  metrics: ProxyMetrics;
  log: LogFn;
}

/** Client requests never carry headers only this proxy may set; paths and methods are checked and the path normalized once. */
export const requestHygiene: Layer = (next) => (e) => {
  const ex = e as InboundExchange;
  const strip = ex.policy.stripHeaders;
  for (let i = 0; i < strip.length; i++) delete ex.headers[strip[i]];
  if (!validMethod(ex.method)) {
    return reject(ex, 'bad_request', `inbound ${ex.listener.name}: method ${JSON.stringify(ex.method.slice(0, 40))} is not an uppercase token`);
  }
  const n = normalizePath(ex.path, ex.policy.normalize ?? { escapedSlashes: ex.policy.escapedSlashes });
  if (!n.ok) return reject(ex, 'bad_request', `inbound ${ex.listener.name}: request path refused: ${n.reason}`);
  // The app receives exactly the path that was authorized.
  ex.path = n.path;
  ex.policyHost = policyHost(ex.authority);
  next(ex);
};

const gone = (ex: Exchange): boolean => ex.res.writableEnded || ex.res.destroyed;

/** JWT (RequestAuthentication): a token present must verify (401 otherwise); its claims then reach authorization. */
export function authenticate(deps: InboundPolicyDeps): Layer {
  return (next) => {
    const onResult = (ex: InboundExchange, r: JwtResult): void => {
      if (gone(ex)) return;
      if (r.kind === 'invalid') {
        ex.decidedBy = 'jwt_authn';
        ex.decisionReason = r.reason;
        if (!ex.grpc) (ex.res as { setHeader(n: string, v: string): void }).setHeader('www-authenticate', 'Bearer realm="trellis"');
        return reject(ex, 'unauthenticated', `JWT rejected: ${r.reason}`);
      }
      if (r.kind === 'ok') {
        if (r.removeHeader) delete ex.headers[r.removeHeader];
        for (const [h, v] of r.headersToAdd) ex.headers[h] = v;
        ex.jwt = { payload: r.payload, principal: r.principal };
      }
      next(ex);
    };
    return (e) => {
      const ex = e as InboundExchange;
      const jwt = ex.policy.security.jwt;
      if (!jwt) return next(ex);
      let p: Promise<JwtResult>;
      try {
        p = jwt.verify({ headers: ex.headers, query: ex.query });
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then(
        (r) => onResult(ex, r),
        (err: Error) => {
          deps.log('warn', `inbound ${ex.listener.name}: JWT verification failed unexpectedly: ${err?.message ?? err}`);
          onResult(ex, { kind: 'invalid', reason: 'Jwt verification fails' });
        },
      );
    };
  };
}

const ALLOW_KEY = labelKey({ action: 'ALLOW', decision: 'allow' });

/** Authorization (RBAC, Istio semantics). Denials name no policy to the caller; the rule goes to the exchange and logs. */
export function authorize(deps: InboundPolicyDeps): Layer {
  const counted = new Map<string, string>();
  const count = (action: string, allowed: boolean): void => {
    const c = `${action}|${allowed}`;
    let k = counted.get(c);
    if (k === undefined) counted.set(c, (k = action === 'ALLOW' && allowed ? ALLOW_KEY : labelKey({ action, decision: allowed ? 'allow' : 'deny' })));
    deps.metrics.authzDecisions.inc(k);
  };
  return (next) => (e) => {
    const ex = e as InboundExchange;
    const policy = ex.policy;
    if (policy.denyAll !== undefined) {
      count('CONFIG', false);
      ex.decidedBy = 'config';
      ex.decisionReason = policy.denyAll;
      deps.log('debug', `inbound ${ex.listener.name}: denied ${ex.method} ${ex.path}: ${policy.denyAll}`);
      return reject(ex, 'denied', 'denied by authorization policy');
    }
    const engine = policy.security.engine;
    if (engine.stages.length === 0) return next(ex);
    let d: AuthzDecision;
    try {
      d = evaluate(engine, {
        principal: ex.peer,
        sourceIp: ex.sourceIp,
        directRemoteIp: ex.sourceIp,
        destinationPort: ex.chain.destinationPort ?? 0,
        method: ex.method,
        path: ex.path,
        host: ex.policyHost,
        headers: ex.headers,
        jwt: ex.jwt,
      });
    } catch (err) {
      d = { allowed: false, action: 'NONE', reason: `authorization could not be evaluated: ${(err as Error).message}` };
    }
    if (d.auditMatches) deps.log('debug', `inbound ${ex.listener.name}: audit ${d.auditMatches.join(', ')} matched ${ex.method} ${ex.path} from ${ex.peer ?? ex.sourceIp}`);
    count(d.action, d.allowed);
    if (d.decidedBy !== undefined) ex.decidedBy = d.decidedBy;
    ex.decisionReason = d.reason;
    if (d.allowed) return next(ex);
    deps.log('debug', `inbound ${ex.listener.name}: ${d.reason}: ${ex.method} ${ex.path} from ${ex.peer ?? ex.sourceIp}`);
    reject(ex, 'denied', 'denied by authorization policy');
  };
}

/** Local rate limit after authorization (denied requests spend no tokens); the caller is its SPIFFE ID, else its IP. */
export function rateLimit(deps: InboundPolicyDeps): Layer {
  const keys = { total: labelKey({ limit: 'total' }), per_caller: labelKey({ limit: 'per_caller' }) };
  return (next) => (e) => {
    const ex = e as InboundExchange;
    const limiter = ex.policy.limiter;
    if (!limiter) return next(ex);
    const v = limiter.take(callerKey(ex.peer, ex.sourceIp), ex.chain.routeName, ex.path);
    if (v.allowed) return next(ex);
    deps.metrics.rateLimited.inc(keys[v.limit]);
    ex.decidedBy = v.rule;
    ex.decisionReason = `${v.limit === 'total' ? 'total' : 'per-caller'} limit of ${v.rule} exceeded`;
    (ex.res as { setHeader(n: string, v: string): void }).setHeader('retry-after', String(v.retryAfterSeconds));
    reject(ex, 'rate_limited', `request rate limit exceeded (${v.limit === 'total' ? 'total' : 'per-caller'} limit); retry after ${v.retryAfterSeconds}s`);
  };
}

/** The security layers of the inbound stack, in order. */
export function inboundPolicyLayers(deps: InboundPolicyDeps): Layer[] {
  return [requestHygiene, authenticate(deps), authorize(deps), rateLimit(deps)];
}
