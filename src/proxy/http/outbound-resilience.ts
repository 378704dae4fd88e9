// Outbound resilience layers: the overall deadline, breaker/budget admission, and an endpoint pick that skips ejected hosts.
import { performance } from 'node:perf_hooks';
import type { ResilienceRegistry } from '../resilience/index.js';
import type { Exchange, Layer } from './exchange.js';
import { parseGrpcTimeout } from './headers.js';
import { reject } from './layers.js';
import { abortFlight, pickEndpoint, requestHash, type Flight } from './outbound-forward.js';

/**
 * The route timeout and a gRPC caller's grpc-timeout both bound the request (the smaller wins); the same
 * deadline bounds every retry. Expiring while a try waits on the upstream answers upstream_timeout; expiring
 * while no try is in flight (body still arriving, or between tries) answers request_timeout.
 */
export const outboundDeadline: Layer = (next) => (ex) => {
  const routeMs = ex.decision!.timeoutMs;
  const grpcMs = ex.grpc ? parseGrpcTimeout(ex.headers['grpc-timeout']) : undefined;
  let ms = routeMs > 0 ? routeMs : 0;
  if (grpcMs !== undefined && (ms === 0 || grpcMs < ms)) {
    ms = grpcMs;
    ex.deadlineSource = `grpc-timeout ${grpcMs}ms`;
  } else ex.deadlineSource = `route ${ex.routeName} timeout ${routeMs}ms`;
  if (ms > 0) {
    ex.deadline = performance.now() + ms;
    ex.timer = setTimeout(onDeadline, ms, ex);
  }
  next(ex);
};

function onDeadline(ex: Exchange): void {
  ex.timer = undefined;
  if (ex.res.writableEnded) return;
  const f = ex.flight as Flight | undefined;
  const where = ex.cluster ? ` waiting for cluster ${ex.cluster.config.name}` : '';
  if (f !== undefined) {
    const between = f.backoffTimer !== undefined;
    const noTry = f.attempt === 0;
    abortFlight(ex, f, true);
    // Still reading a body to buffer for retries: the client was too slow, not the upstream.
    if (noTry) return reject(ex, 'request_timeout', `${ex.deadlineSource} passed before the request body was received`);
    if (between) return reject(ex, 'request_timeout', `${ex.deadlineSource} passed before retry ${f.attempt} of route ${ex.routeName} could start`);
    return reject(ex, 'upstream_timeout', `${ex.deadlineSource} exceeded${where}${f.attempt > 1 ? ` (try ${f.attempt})` : ''}`);
  }
  ex.abortUpstream?.();
  reject(ex, 'upstream_timeout', `${ex.deadlineSource} exceeded${where}`);
}

/**
 * Once per request: counts it for the destination's retry budget and takes a circuit-breaker
 * 'requests' slot, answering a fast 503 overflow at the limit. The slot is released when the exchange ends.
 */
export function admit(reg: ResilienceRegistry | undefined): Layer {
  if (!reg) return (next) => next;
  return (next) => (ex) => {
    const r = reg.get(ex.decision!.cluster);
    if (r !== undefined) {
      ex.resilience = r;
      r.budget.onRequest(performance.now());
      if (!r.breaker.tryAcquire('requests')) {
        return reject(ex, 'overflow', `route ${ex.routeName}: cluster ${ex.decision!.cluster} circuit breaker is open (max_requests ${r.breaker.limits.requests} in flight)`);
      }
      ex.holdsRequestSlot = true;
    }
    next(ex);
  };
}

/** Picks an endpoint of the decided cluster (skipping ejected ones). */
export const outboundBalance: Layer = (next) => function balance(ex, waited?: boolean) {
  const name = ex.decision!.cluster;
  const cs = ex.state.clusters.get(name);
  if (!cs) return reject(ex, 'no_healthy_upstream', `route ${ex.routeName}: cluster ${name} is not known to this proxy`);
  // On-demand EDS: the first request to a cluster waits (up to its connect timeout) for its endpoints.
  if (cs.fetchEndpoints && !waited) {
    return void cs.fetchEndpoints(cs.config.connectTimeoutMs).then((st) => {
      if (ex.res.writableEnded || ex.res.destroyed) return;
      ex.state = st;
      balance(ex, true);
    });
  }
  ex.cluster = cs;
  const ep = pickEndpoint(ex, requestHash(ex), undefined);
  if (!ep) {
    const n = cs.endpoints.length;
    if (n === 0) return reject(ex, 'no_healthy_upstream', `route ${ex.routeName}: cluster ${name} has no endpoints`);
    return reject(ex, 'no_healthy_upstream', `route ${ex.routeName}: cluster ${name} has no healthy endpoint (${n} endpoint${n === 1 ? '' : 's'} known)`);
  }
  ex.endpoint = ep;
  next(ex);
};
