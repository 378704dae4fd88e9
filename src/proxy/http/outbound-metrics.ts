// Resilience metric families (breaker, outlier detection, retry budget), filled from the registry on each scrape.
import type { ProxyMetrics } from '../../telemetry/proxy-metrics.js';
import { labelKey } from '../../telemetry/registry.js';
import { BREAKER_KINDS, type ResilienceRegistry } from '../resilience/index.js';

/** Registers the families on the proxy's metric registry; values are copied from `reg` when /metrics renders. */
export function registerResilienceMetrics(metrics: ProxyMetrics, reg: ResilienceRegistry): void {
  const r = metrics.registry;
  // The gauge's collect runs first (registration order) and refreshes the families after it.
  const active = r.gauge('trellis_circuit_breaker_active', 'Connections, pending requests, requests and retries in flight per cluster, against its circuit breaker');
  const overflow = r.counter('trellis_circuit_breaker_overflow_total', 'Connections, requests and retries refused by a circuit breaker limit');
  const ejections = r.counter('trellis_outlier_ejections_total', 'Endpoints ejected by outlier detection, by reason');
  const ejected = r.gauge('trellis_outlier_ejected', 'Endpoints currently ejected by outlier detection');
  const exhausted = r.counter('trellis_retry_budget_exhausted_total', 'Retries refused because the retry budget was spent');
  active.collect = () => {
    for (const row of reg.metricRows()) {
      const cluster = row.cluster;
      for (const kind of BREAKER_KINDS) {
        const k = labelKey({ cluster, kind });
        active.set(k, row.active[kind]);
        overflow.values[k] = row.overflow[kind];
      }
      for (const reason of Object.keys(row.ejectionsTotal) as (keyof typeof row.ejectionsTotal)[]) {
        ejections.values[labelKey({ cluster, reason })] = row.ejectionsTotal[reason];
      }
      const c = labelKey({ cluster });
      ejected.set(c, row.ejectedNow);
      exhausted.values[c] = row.retryBudgetExhausted;
    }
  };
}
