// Per-cluster resilience state (breaker, outlier detector, retry budget) that survives config swaps; synced from each new snapshot.
import { CircuitBreaker, breakerLimitsFromCluster, type BreakerKind } from './circuit-breaker.js';
import { OutlierDetector, outlierConfigFromCluster, type EjectionReason, type OutlierSnapshot } from './outlier-detector.js';
import { RetryBudget, retryBudgetOptionsFromCluster } from './retry-budget.js';

type Obj = Record<string, unknown>;

export interface ClusterResilience {
  readonly name: string;
  readonly breaker: CircuitBreaker;
  /** Absent when the cluster has no outlier_detection. */
  outlier: OutlierDetector | undefined;
  budget: RetryBudget;
}

/** What sync reads from a proxy snapshot (structurally ProxyState: raw clusters and parsed endpoint lists). */
export interface SnapshotView {
  raw: { clusters: Map<string, Obj> };
  clusters: Map<string, { endpoints: readonly { id: string }[] }>;
}

export interface ResilienceOptions {
  now?: () => number;
  random?: () => number;
  onEject?: (cluster: string, endpoint: string, reason: EjectionReason, durationMs: number) => void;
  onUneject?: (cluster: string, endpoint: string) => void;
  /** Config problems worth a log line (unsupported outlier fields). */
  onWarning?: (message: string) => void;
}

interface Entry {
  r: ClusterResilience;
  raw: Obj | undefined;
  endpoints: readonly { id: string }[] | undefined;
}

/** One per proxy. Counters and ejections carry over when a cluster's config changes; a removed cluster's state goes. */
export class ResilienceRegistry {
  private readonly entries = new Map<string, Entry>();
  constructor(private readonly opts: ResilienceOptions = {}) {}

  get(cluster: string): ClusterResilience | undefined {
    return this.entries.get(cluster)?.r;
  }

  /** Call on every StateStore 'change' (cheap when little changed: unchanged raw objects are skipped). */
  sync(state: SnapshotView): void {
    for (const name of this.entries.keys()) if (!state.raw.clusters.has(name)) this.entries.delete(name);
    for (const [name, raw] of state.raw.clusters) {
      let e = this.entries.get(name);
      if (!e) {
        e = { r: { name, breaker: new CircuitBreaker(breakerLimitsFromCluster(raw)), outlier: undefined, budget: new RetryBudget(retryBudgetOptionsFromCluster(raw)) }, raw: undefined, endpoints: undefined };
        this.entries.set(name, e);
      }
      if (e.raw !== raw) {
        e.raw = raw;
        e.r.breaker.setLimits(breakerLimitsFromCluster(raw));
        const b = retryBudgetOptionsFromCluster(raw);
        const cur = e.r.budget;
        if (b.ratio !== cur.ratio || b.minPerSecond !== cur.minPerSecond || b.windowSeconds !== cur.windowSeconds) e.r.budget = new RetryBudget(b);
        const warnings: string[] = [];
        const od = outlierConfigFromCluster(raw, warnings);
        for (const w of warnings) this.opts.onWarning?.(w);
        if (!od) e.r.outlier = undefined;
        else if (e.r.outlier) e.r.outlier.setConfig(od);
        else {
          e.r.outlier = this.detector(name, od);
          e.endpoints = undefined;
        }
      }
      const eps = state.clusters.get(name)?.endpoints;
      if (e.r.outlier && eps && eps !== e.endpoints) {
        e.endpoints = eps;
        e.r.outlier.setEndpoints(eps.map((x) => x.id));
      }
    }
  }

  /** Outlier interval work for every cluster; call from one timer (e.g. every second: each detector decays per its own interval). */
  tick(now?: number): void {
    for (const e of this.entries.values()) e.r.outlier?.tick(now);
  }

  /** For `trellis describe` / the admin endpoint. */
  snapshot(): Record<string, { breaker: ReturnType<CircuitBreaker['snapshot']>; outlier?: OutlierSnapshot; budget: ReturnType<RetryBudget['window']> & { exhausted: number } }> {
    const now = (this.opts.now ?? Date.now)();
    const out: ReturnType<ResilienceRegistry['snapshot']> = {};
    for (const [name, { r }] of this.entries) {
      out[name] = {
        breaker: r.breaker.snapshot(),
        ...(r.outlier ? { outlier: r.outlier.snapshot() } : {}),
        budget: { ...r.budget.window(now), exhausted: r.budget.exhausted },
      };
    }
    return out;
  }

  /** Counter and gauge values for the metrics exporter, one row per cluster. */
  *metricRows(): Generator<{
    cluster: string;
    overflow: Record<BreakerKind, number>;
    active: Record<BreakerKind, number>;
    ejectionsTotal: Record<EjectionReason, number>;
    ejectedNow: number;
    retryBudgetExhausted: number;
  }> {
    for (const [cluster, { r }] of this.entries) {
      yield {
        cluster,
        overflow: r.breaker.overflow,
        active: r.breaker.active,
        ejectionsTotal: r.outlier ? r.outlier.ejectionsByReason : { consecutive_5xx: 0, consecutive_gateway_failure: 0 },
        ejectedNow: r.outlier ? r.outlier.currentlyEjected : 0,
        retryBudgetExhausted: r.budget.exhausted,
      };
    }
  }

  private detector(cluster: string, od: NonNullable<ReturnType<typeof outlierConfigFromCluster>>): OutlierDetector {
    const { onEject, onUneject } = this.opts;
    return new OutlierDetector(od, {
      now: this.opts.now,
      random: this.opts.random,
      onEject: onEject ? (id, reason, ms) => onEject(cluster, id, reason, ms) : undefined,
      onUneject: onUneject ? (id) => onUneject(cluster, id) : undefined,
    });
  }
}
