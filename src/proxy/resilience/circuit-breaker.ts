// Per-cluster circuit breaker: counters for connections, pending and active requests, active retries, against Envoy thresholds.
import { asArray, asMsg, wrappedNumber } from '../route/proto.js';

export type BreakerKind = 'connections' | 'pending' | 'requests' | 'retries';
export const BREAKER_KINDS: readonly BreakerKind[] = ['connections', 'pending', 'requests', 'retries'];

export interface BreakerLimits {
  connections: number;
  pending: number;
  requests: number;
  retries: number;
  /** Requests per upstream connection before the pool retires it; 0 = unlimited (for the pool, not counted here). */
  maxRequestsPerConnection: number;
}

/** Envoy's default for connections, pending and requests when a cluster sets none. */
export const ENVOY_DEFAULT_THRESHOLD = 1024;

export const DEFAULT_LIMITS: Readonly<BreakerLimits> = Object.freeze({
  connections: ENVOY_DEFAULT_THRESHOLD,
  pending: ENVOY_DEFAULT_THRESHOLD,
  requests: ENVOY_DEFAULT_THRESHOLD,
  // Envoy's own max_retries default is 3 concurrent retries; Trellis keeps 1024 like the others because the
  // retry budget is what bounds retry load, and Istio (which sets no thresholds by default) allows unlimited.
  retries: ENVOY_DEFAULT_THRESHOLD,
  maxRequestsPerConnection: 0,
});

/**
 * Admission by counter: tryAcquire succeeds while the kind's active count is below its limit (so a
 * limit of N admits exactly N at once) and counts an overflow otherwise. Every successful tryAcquire
 * must be paired with one release of the same kind.
 */
export class CircuitBreaker {
  limits: BreakerLimits;
  readonly active: Record<BreakerKind, number> = { connections: 0, pending: 0, requests: 0, retries: 0 };
  /** Refusals by kind since start (metric `trellis_circuit_breaker_overflow_total{kind}`). */
  readonly overflow: Record<BreakerKind, number> = { connections: 0, pending: 0, requests: 0, retries: 0 };

  constructor(limits: Partial<BreakerLimits> = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  tryAcquire(kind: BreakerKind): boolean {
    if (this.active[kind] >= this.limits[kind]) {
      this.overflow[kind]++;
      return false;
    }
    this.active[kind]++;
    return true;
  }

  release(kind: BreakerKind): void {
    if (this.active[kind] > 0) this.active[kind]--;
  }

  /** True when `kind` is at its limit (Envoy's "circuit breaker open" gauge). */
  isOpen(kind: BreakerKind): boolean {
    return this.active[kind] >= this.limits[kind];
  }

  /** New limits from a config update; active counts carry over, so in-flight work is not forgotten. */
  setLimits(limits: BreakerLimits): void {
    this.limits = limits;
  }

  snapshot(): { limits: BreakerLimits; active: Record<BreakerKind, number>; overflow: Record<BreakerKind, number> } {
    return { limits: { ...this.limits }, active: { ...this.active }, overflow: { ...this.overflow } };
  }
}

/**
 * Limits from a decoded xDS Cluster: `circuit_breakers.thresholds` (the DEFAULT-priority entry, else the
 * first) and `common_http_protocol_options.max_requests_per_connection` (or the deprecated cluster field).
 * A wrapper that is present but empty means 0, as in Envoy (0 admits nothing).
 */
export function breakerLimitsFromCluster(cluster: Record<string, unknown> | undefined): BreakerLimits {
  const list = asArray(asMsg(cluster?.circuit_breakers)?.thresholds).map(asMsg).filter((t) => t !== undefined);
  const t = list.find((x) => x.priority === undefined || x.priority === 'DEFAULT' || x.priority === 0) ?? {};
  const limit = (v: unknown, dflt: number) => {
    if (v === undefined || v === null) return dflt;
    const n = wrappedNumber(v);
    return n !== undefined && n >= 0 ? n : dflt;
  };
  const mrpc = asMsg(cluster?.common_http_protocol_options)?.max_requests_per_connection ?? cluster?.max_requests_per_connection;
  return {
    connections: limit(t.max_connections, DEFAULT_LIMITS.connections),
    pending: limit(t.max_pending_requests, DEFAULT_LIMITS.pending),
    requests: limit(t.max_requests, DEFAULT_LIMITS.requests),
    retries: limit(t.max_retries, DEFAULT_LIMITS.retries),
    maxRequestsPerConnection: limit(mrpc, 0),
  };
}
