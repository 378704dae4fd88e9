// A light metrics registry: counters, gauges and histograms in plain objects keyed by a precomputed label key, rendered on scrape.

export type Labels = Record<string, string>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** Renders labels once, so the hot path only indexes by the returned string. */
export function labelKey(labels: Labels): string {
  const parts: string[] = [];
  for (const k of Object.keys(labels)) parts.push(`${k}="${escapeLabel(labels[k])}"`);
  return parts.join(',');
}

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
}

export class Counter implements Family {
  readonly type = 'counter' as const;
  values: Record<string, number> = Object.create(null);
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(key: string, n = 1): void {
    this.values[key] = (this.values[key] ?? 0) + n;
  }
  get(key: string): number {
    return this.values[key] ?? 0;
  }
}

export class Gauge implements Family {
  readonly type = 'gauge' as const;
  values: Record<string, number> = Object.create(null);
  /** Computed on scrape (e.g. seconds until a certificate expires). */
  collect?: () => void;
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  set(key: string, v: number): void {
    this.values[key] = v;
  }
  get(key: string): number | undefined {
    return this.values[key];
  }
}

/** Seconds, from a tenth of a millisecond (a proxy hop) to half a minute (a slow upstream). */
export const DEFAULT_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Histogram implements Family {
  readonly type = 'histogram' as const;
  /** Per-bucket (not cumulative) counts. */
  series: Record<string, { counts: number[]; sum: number; count: number }> = Object.create(null);
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: number[] = DEFAULT_BUCKETS,
  ) {}
  observe(key: string, v: number): void {
    let s = this.series[key];
    if (!s) s = this.series[key] = { counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
    // One increment per observation (the bucket it falls in); render makes the counts cumulative.
    const b = this.buckets;
    let i = 0;
    while (i < b.length && v > b[i]) i++;
    if (i < b.length) s.counts[i]++;
    s.sum += v;
    s.count++;
  }
}

export class Registry {
  private families: (Counter | Gauge | Histogram)[] = [];
  private collectors: (() => void)[] = [];
  /** Runs before each render (values computed on scrape: process memory, CPU time). */
  beforeRender(fn: () => void): void {
    this.collectors.push(fn);
  }
  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }
  gauge(name: string, help: string): Gauge {
    return this.add(new Gauge(name, help));
  }
  histogram(name: string, help: string, buckets?: number[]): Histogram {
    return this.add(new Histogram(name, help, buckets));
  }
  find(name: string): Counter | Gauge | Histogram | undefined {
    return this.families.find((f) => f.name === name);
  }
  private add<T extends Counter | Gauge | Histogram>(f: T): T {
    this.families.push(f);
    return f;
  }

  /** Prometheus text exposition format 0.0.4. */
  render(): string {
    const out: string[] = [];
    for (const c of this.collectors) c();
    for (const f of this.families) {
      if (f.type === 'gauge' && f.collect) f.collect();
      out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
      if (f.type === 'histogram') {
        for (const key of Object.keys(f.series)) {
          const s = f.series[key];
          const sep = key ? ',' : '';
          let cum = 0;
          for (let i = 0; i < f.buckets.length; i++) {
            cum += s.counts[i];
            out.push(`${f.name}_bucket{${key}${sep}le="${f.buckets[i]}"} ${cum}`);
          }
          out.push(`${f.name}_bucket{${key}${sep}le="+Inf"} ${s.count}`);
          out.push(`${f.name}_sum${key ? `{${key}}` : ''} ${s.sum}`);
          out.push(`${f.name}_count${key ? `{${key}}` : ''} ${s.count}`);
        }
      } else {
        for (const key of Object.keys(f.values)) out.push(`${f.name}${key ? `{${key}}` : ''} ${f.values[key]}`);
      }
    }
    return out.join('\n') + '\n';
  }
}
