// Turns proxies' /metrics into per-edge golden signals (rate, success, p99, mTLS) between two scrapes.
import { parsePrometheusText, histogramQuantile, type Sample } from './prom-text.js';

export interface EdgeStat {
  source: string; // ns/workload, or "unknown"
  destination: string; // destination workload (or service when unknown)
  service: string;
  requests: number; // in the window
  rps: number;
  successRate: number | undefined; // non-5xx share, undefined without traffic
  p99Ms: number | undefined;
  mtls: boolean;
  errors: Record<string, number>; // x-trellis-error code (or "HTTP <status>" for other 4xx/5xx) -> count in the window
}

interface EdgeTotals {
  source: string;
  destination: string;
  service: string;
  total: number;
  success: number;
  mtls: number;
  errors: Map<string, number>;
  buckets: Map<number, number>;
}

const key = (l: Record<string, string>) => `${l.source_namespace ?? ''}/${l.source_workload ?? ''}>${l.destination_workload ?? ''}|${l.destination_service ?? ''}`;

/**
 * Folds `reporter="source"` series into edges: every mesh call has a source-side proxy, while the
 * destination side reports per request only when its inbound parses HTTP (L7).
 */
export function edgeTotals(samples: Sample[]): Map<string, EdgeTotals> {
  const edges = new Map<string, EdgeTotals>();
  const get = (l: Record<string, string>) => {
    const k = key(l);
    let e = edges.get(k);
    if (!e) {
      const src = l.source_workload && l.source_workload !== 'unknown' ? `${l.source_namespace}/${l.source_workload}` : 'unknown';
      e = {
        source: src,
        destination: l.destination_workload ? `${l.destination_namespace}/${l.destination_workload}` : l.destination_service ?? 'unknown',
        service: l.destination_service ?? '',
        total: 0,
        success: 0,
        mtls: 0,
        errors: new Map(),
        buckets: new Map(),
      };
      edges.set(k, e);
    }
    return e;
  };
  for (const s of samples) {
    if (s.labels.reporter !== 'source') continue;
    if (s.name === 'trellis_requests_total') {
      const e = get(s.labels);
      e.total += s.value;
      if (!String(s.labels.response_code ?? '').startsWith('5')) e.success += s.value;
      if (s.labels.connection_security_policy === 'mutual_tls') e.mtls += s.value;
      // A refusal by the destination's proxy (403 denied, 429 rate_limited) carries no local error code at the
      // source; show its status so a refused caller never reads as a clean edge.
      const status = Number(s.labels.response_code ?? 0);
      const code = s.labels.error_code || (status >= 400 ? `HTTP ${status}` : '');
      if (code) e.errors.set(code, (e.errors.get(code) ?? 0) + s.value);
    } else if (s.name === 'trellis_request_duration_seconds_bucket') {
      const e = get(s.labels);
      const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
      e.buckets.set(le, (e.buckets.get(le) ?? 0) + s.value);
    }
  }
  return edges;
}

/** Differences two totals snapshots taken `seconds` apart into per-edge stats. */
export function edgeDelta(prev: Map<string, EdgeTotals>, cur: Map<string, EdgeTotals>, seconds: number): EdgeStat[] {
  const out: EdgeStat[] = [];
  for (const [k, c] of cur) {
    const p = prev.get(k);
    const requests = c.total - (p?.total ?? 0);
    const success = c.success - (p?.success ?? 0);
    const buckets = [...c.buckets].map(([le, count]) => ({ le, count: count - (p?.buckets.get(le) ?? 0) }));
    const errors: Record<string, number> = {};
    for (const [code, n] of c.errors) {
      const d = n - (p?.errors.get(code) ?? 0);
      if (d > 0) errors[code] = d;
    }
    const q = histogramQuantile(0.99, buckets);
    out.push({
      source: c.source,
      destination: c.destination,
      service: c.service,
      requests,
      rps: requests / seconds,
      successRate: requests > 0 ? success / requests : undefined,
      p99Ms: q === undefined ? undefined : q * 1000,
      mtls: c.total > 0 && c.mtls === c.total,
      errors,
    });
  }
  return out.sort((a, b) => (a.source + a.destination).localeCompare(b.source + b.destination));
}

/** Scrapes every distinct metrics port and returns all samples (unreachable ones are skipped). */
export async function scrape(ports: number[]): Promise<Sample[]> {
  const texts = await Promise.all(
    [...new Set(ports)].map(async (p) => {
      try {
        const r = await fetch(`http://127.0.0.1:${p}/metrics`, { signal: AbortSignal.timeout(2000) });
        return r.ok ? await r.text() : '';
      } catch {
        return '';
      }
    }),
  );
  return texts.flatMap((t) => parsePrometheusText(t));
}
