// Golden signals (rate, success, latency quantiles, mTLS share) per service, workload, edge and route, from two scrapes.
import { histogramQuantile, type Sample } from './prom-text.js';

/** Running totals of one group (a service, an edge...) in one scrape. */
export interface Totals {
  dims: Record<string, string>;
  requests: number;
  success: number;
  mtls: number;
  errors: Map<string, number>;
  /** Cumulative duration buckets: upper bound (seconds) -> count. */
  buckets: Map<number, number>;
}

export interface Golden {
  key: string;
  dims: Record<string, string>;
  /** Requests in the window. */
  requests: number;
  rps: number;
  /** Share of requests that did not fail (no 5xx, and an answer was sent); undefined without traffic. */
  successRate: number | undefined;
  p50Ms: number | undefined;
  p95Ms: number | undefined;
  p99Ms: number | undefined;
  /** Share of requests sent over mutual TLS; undefined without traffic. */
  mtlsShare: number | undefined;
  /** x-trellis-error code -> requests in the window. */
  errors: Record<string, number>;
}

export type View = 'services' | 'workloads' | 'edges' | 'routes';

/** Which reporter a view reads and how it groups a series; undefined skips the series. */
interface ViewSpec {
  reporter: 'source' | 'destination';
  key(l: Record<string, string>): string | undefined;
  dims(l: Record<string, string>): Record<string, string>;
}

const known = (v: string | undefined) => (v && v !== 'unknown' ? v : undefined);
const workloadOf = (ns: string | undefined, name: string | undefined) => (known(name) ? `${ns || 'default'}/${name}` : 'unknown');

const VIEWS: Record<View, ViewSpec[]> = {
  // A service's traffic as its callers' proxies saw it (every mesh call has a source proxy).
  services: [
    {
      reporter: 'source',
      key: (l) => known(l.destination_service),
      dims: (l) => ({ service: l.destination_service }),
    },
  ],
  // A workload's inbound traffic: callers' proxies report mesh calls; its own proxy adds callers outside the mesh.
  workloads: [
    {
      reporter: 'source',
      key: (l) => (known(l.destination_workload) ? workloadOf(l.destination_namespace, l.destination_workload) : undefined),
      dims: (l) => ({ workload: workloadOf(l.destination_namespace, l.destination_workload) }),
    },
    {
      reporter: 'destination',
      key: (l) => (known(l.source_principal) ? undefined : workloadOf(l.destination_namespace, l.destination_workload)),
      dims: (l) => ({ workload: workloadOf(l.destination_namespace, l.destination_workload) }),
    },
  ],
  edges: [
    {
      reporter: 'source',
      key: (l) => `${workloadOf(l.source_namespace, l.source_workload)}>${workloadOf(l.destination_namespace, l.destination_workload)}|${l.destination_service ?? ''}`,
      dims: (l) => ({
        source: workloadOf(l.source_namespace, l.source_workload),
        sourcePrincipal: l.source_principal ?? 'unknown',
        destination: known(l.destination_workload) ? workloadOf(l.destination_namespace, l.destination_workload) : (l.destination_service ?? 'unknown'),
        destinationPrincipal: l.destination_principal ?? 'unknown',
        service: l.destination_service ?? 'unknown',
      }),
    },
  ],
  routes: [
    {
      reporter: 'source',
      key: (l) => `${l.route ?? 'unknown'}|${l.destination_service ?? ''}`,
      dims: (l) => ({ route: l.route ?? 'unknown', service: l.destination_service ?? 'unknown', source: workloadOf(l.source_namespace, l.source_workload) }),
    },
  ],
};

function failed(code: string | undefined): boolean {
  return !code || code === '0' || code.startsWith('5');
}

/** Folds one scrape's request samples into totals per group of `view`. */
export function totalsFor(view: View, samples: Sample[]): Map<string, Totals> {
  const out = new Map<string, Totals>();
  const specs = VIEWS[view];
  for (const s of samples) {
    const isCount = s.name === 'trellis_requests_total';
    if (!isCount && s.name !== 'trellis_request_duration_seconds_bucket') continue;
    for (let i = 0; i < specs.length; i++) {
      const spec = specs[i];
      if (s.labels.reporter !== spec.reporter) continue;
      const k = spec.key(s.labels);
      if (k === undefined) continue;
      let t = out.get(k);
      if (!t) out.set(k, (t = { dims: spec.dims(s.labels), requests: 0, success: 0, mtls: 0, errors: new Map(), buckets: new Map() }));
      if (isCount) {
        t.requests += s.value;
        if (!failed(s.labels.response_code)) t.success += s.value;
        if (s.labels.connection_security_policy === 'mutual_tls') t.mtls += s.value;
        const e = s.labels.error_code;
        if (e) t.errors.set(e, (t.errors.get(e) ?? 0) + s.value);
      } else {
        const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
        t.buckets.set(le, (t.buckets.get(le) ?? 0) + s.value);
      }
    }
  }
  return out;
}

/** A counter that went down restarted (a proxy restart): its whole current value is new. */
const inc = (cur: number, prev: number | undefined) => (prev === undefined || cur < prev ? cur : cur - prev);

/** The difference of two totals taken `seconds` apart, as golden signals per group (busiest first). */
export function goldenDelta(prev: Map<string, Totals> | undefined, cur: Map<string, Totals>, seconds: number): Golden[] {
  const out: Golden[] = [];
  const secs = seconds > 0 ? seconds : 1;
  for (const [key, c] of cur) {
    const p = prev?.get(key);
    const reset = p !== undefined && c.requests < p.requests;
    const pp = reset ? undefined : p;
    const requests = inc(c.requests, pp?.requests);
    const success = inc(c.success, pp?.success);
    const mtls = inc(c.mtls, pp?.mtls);
    const errors: Record<string, number> = {};
    for (const [code, n] of c.errors) {
      const d = inc(n, pp?.errors.get(code));
      if (d > 0) errors[code] = d;
    }
    const buckets = [...c.buckets].map(([le, n]) => ({ le, count: inc(n, pp?.buckets.get(le)) }));
    const q = (x: number) => {
      const v = histogramQuantile(x, buckets);
      return v === undefined ? undefined : round(v * 1000, 3);
    };
    out.push({
      key,
      dims: c.dims,
      requests,
      rps: round(requests / secs, 3),
      successRate: requests > 0 ? round(success / requests, 4) : undefined,
      p50Ms: q(0.5),
      p95Ms: q(0.95),
      p99Ms: q(0.99),
      mtlsShare: requests > 0 ? round(mtls / requests, 4) : undefined,
      errors,
    });
  }
  return out.sort((a, b) => b.rps - a.rps || a.key.localeCompare(b.key));
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export const VIEW_NAMES: View[] = ['services', 'workloads', 'edges', 'routes'];

function seriesKey(s: Sample): string {
  let k = s.name;
  for (const n in s.labels) k += `\u0001${n}=${s.labels[n]}`;
  return k;
}

/**
 * Per-series increase between two scrapes of the same target, so a restarted proxy (counters back near zero)
 * counts what it served since, not a negative rate. Without `prev` every value is new.
 */
export function sampleDelta(prev: Sample[] | undefined, cur: Sample[]): Sample[] {
  const before = new Map<string, number>();
  for (const s of prev ?? []) before.set(seriesKey(s), s.value);
  const out: Sample[] = [];
  for (const s of cur) {
    const d = inc(s.value, prev ? (before.get(seriesKey(s)) ?? 0) : undefined);
    if (d > 0) out.push({ name: s.name, labels: s.labels, value: d });
  }
  return out;
}

/** Only the samples golden signals read (keeps scrapes held in memory small). */
export function requestSamples(samples: Sample[]): Sample[] {
  return samples.filter((s) => s.name === 'trellis_requests_total' || s.name === 'trellis_request_duration_seconds_bucket');
}
