// Scrapes connected proxies' /metrics, keeps recent scrapes in memory, and answers golden signals and cost over a window.
import { parsePrometheusText, type Sample } from '../telemetry/prom-text.js';
import { goldenDelta, requestSamples, sampleDelta, totalsFor, VIEW_NAMES, type Golden, type View } from '../telemetry/golden.js';
import { costOf, type ProxyCost, type CostReport } from '../telemetry/cost.js';
import type { ProxyStatus } from './ads-server.js';

export interface ScrapeTarget {
  proxy: string;
  mode: string;
  url: string;
  adminUrl?: string;
  workloads: string[];
}

interface Scrape {
  at: number;
  ok: boolean;
  error?: string;
  /** Request counters and duration buckets only. */
  requests: Sample[];
  /** Process and cost series (small). */
  process: Sample[];
}

export interface StatsReport {
  windowSeconds: number;
  at: string;
  targets: { proxy: string; url: string; ok: boolean; error?: string }[];
  services: Golden[];
  workloads: Golden[];
  edges: Golden[];
  routes: Golden[];
}

export interface StatsCollectorOptions {
  targets: () => ScrapeTarget[];
  fetchText?: (url: string) => Promise<string>;
  now?: () => number;
  /** Scrapes at most this often; a request inside it reuses the last scrape (default 100 ms). */
  minIntervalMs?: number;
  /** While someone asked within the last minute, scrape this often so a window is ready (default 2000 ms). */
  backgroundMs?: number;
}

const KEEP_MS = 5 * 60_000;
const PROCESS_NAMES = new Set([
  'process_resident_memory_bytes',
  'process_cpu_seconds_total',
  'trellis_proxy_info',
  'trellis_proxy_overhead_seconds_bucket',
  'trellis_proxy_overhead_seconds_sum',
  'trellis_proxy_overhead_seconds_count',
  'trellis_tls_handshakes_total',
  'trellis_requests_total',
]);

/** host:port of a gRPC peer string such as "127.0.0.1:5000", "ipv4:127.0.0.1:5000" or "[::1]:5000". */
export function peerHost(peer: string | undefined): string | undefined {
  if (!peer) return undefined;
  const p = peer.replace(/^ipv[46]:/, '');
  const v6 = /^\[([^\]]+)\]:\d+$/.exec(p);
  if (v6) return v6[1] === '::1' || v6[1].startsWith('::ffff:127.') ? '127.0.0.1' : v6[1];
  const m = /^([^:]+):\d+$/.exec(p);
  return m ? m[1] : undefined;
}

/** Where to scrape each connected Trellis proxy (from the ports it advertised when it connected). */
export function targetsOf(proxies: ProxyStatus[]): ScrapeTarget[] {
  const out: ScrapeTarget[] = [];
  for (const p of proxies) {
    if (p.kind !== 'trellis') continue;
    const t = p.workloads.find((w) => w.proxy?.telemetry?.metricsPort)?.proxy?.telemetry;
    if (!t?.metricsPort) continue;
    const host = peerHost(p.peer) ?? p.workloads[0]?.address ?? '127.0.0.1';
    const h = host.includes(':') ? `[${host}]` : host;
    out.push({
      proxy: p.id,
      mode: p.workloads.length > 1 ? 'node' : 'sidecar',
      url: `http://${h}:${t.metricsPort}/metrics`,
      // The admin port listens on loopback only: reachable when the proxy runs on this host.
      ...(t.adminPort ? { adminUrl: `http://127.0.0.1:${t.adminPort}` } : {}),
      workloads: p.workloads.map((w) => `${w.namespace}/${w.name}`),
    });
  }
  return out;
}

async function defaultFetch(url: string): Promise<string> {
  const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return r.text();
}

export class StatsCollector {
  private readonly history = new Map<string, Scrape[]>();
  private lastScrape = 0;
  private scraping: Promise<void> | undefined;
  private lastAsked = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly fetchText: (url: string) => Promise<string>;

  constructor(private readonly opts: StatsCollectorOptions) {
    this.now = opts.now ?? Date.now;
    this.fetchText = opts.fetchText ?? defaultFetch;
  }

  /** Scrapes every target once (concurrent callers share one scrape). */
  scrape(): Promise<void> {
    this.scraping ??= this.scrapeAll().finally(() => (this.scraping = undefined));
    return this.scraping;
  }

  private async scrapeAll(): Promise<void> {
    const targets = this.opts.targets();
    const live = new Set(targets.map((t) => t.url));
    for (const k of this.history.keys()) if (!live.has(k)) this.history.delete(k);
    await Promise.all(
      targets.map(async (t) => {
        const at = this.now();
        let s: Scrape;
        try {
          const samples = parsePrometheusText(await this.fetchText(t.url));
          s = { at, ok: true, requests: requestSamples(samples), process: samples.filter((x) => PROCESS_NAMES.has(x.name)) };
        } catch (err) {
          s = { at, ok: false, error: (err as Error).message, requests: [], process: [] };
        }
        const h = this.history.get(t.url) ?? [];
        h.push(s);
        while (h.length > 2 && h[0].at < at - KEEP_MS) h.shift();
        if (h.length > 200) h.splice(0, h.length - 200);
        this.history.set(t.url, h);
      }),
    );
    this.lastScrape = this.now();
  }

  /** Ensures a fresh scrape and one at least ~1 s older, so the first question already has a rate. */
  private async fresh(): Promise<void> {
    this.lastAsked = this.now();
    this.keepWarm();
    if (this.now() - this.lastScrape >= (this.opts.minIntervalMs ?? 100)) await this.scrape();
    const oldest = Math.min(...[...this.history.values()].map((h) => h.find((s) => s.ok)?.at ?? Infinity));
    if (this.history.size && (oldest === Infinity || this.now() - oldest < 900)) {
      await new Promise((r) => setTimeout(r, Math.max(100, 1000 - (this.now() - (Number.isFinite(oldest) ? oldest : this.now())))));
      await this.scrape();
    }
  }

  private keepWarm(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.now() - this.lastAsked > 60_000) {
        clearInterval(this.timer);
        this.timer = undefined;
        return;
      }
      void this.scrape();
    }, this.opts.backgroundMs ?? 2000);
    this.timer.unref();
  }

  /** For each target, the latest good scrape and the oldest good one inside the window (or just before it). */
  private pairs(windowMs: number): { cur: Scrape; prev: Scrape | undefined; url: string }[] {
    const out: { cur: Scrape; prev: Scrape | undefined; url: string }[] = [];
    for (const [url, h] of this.history) {
      const good = h.filter((s) => s.ok);
      if (!good.length) continue;
      const cur = good[good.length - 1];
      const from = cur.at - windowMs;
      let prev: Scrape | undefined;
      for (const s of good) {
        if (s === cur) break;
        if (s.at >= from - 250) {
          prev = s;
          break;
        }
      }
      prev ??= good.length > 1 ? good[good.length - 2] : undefined;
      out.push({ cur, prev, url });
    }
    return out;
  }

  async stats(windowSeconds = 10): Promise<StatsReport> {
    await this.fresh();
    const pairs = this.pairs(windowSeconds * 1000);
    const deltas: Sample[] = [];
    let spanMs = 0;
    let n = 0;
    for (const p of pairs) {
      if (!p.prev) continue;
      deltas.push(...sampleDelta(p.prev.requests, p.cur.requests));
      spanMs += p.cur.at - p.prev.at;
      n++;
    }
    const seconds = n ? spanMs / n / 1000 : windowSeconds;
    const views = Object.fromEntries(VIEW_NAMES.map((v) => [v, goldenDelta(undefined, totalsFor(v, deltas), seconds)])) as Record<View, Golden[]>;
    return {
      windowSeconds: Math.round(seconds * 100) / 100,
      at: new Date(this.now()).toISOString(),
      targets: this.targetStatus(),
      ...views,
    };
  }

  private targetStatus() {
    return this.opts.targets().map((t) => {
      const last = this.history.get(t.url)?.at(-1);
      return { proxy: t.proxy, url: t.url, ok: last?.ok ?? false, ...(last?.error ? { error: last.error } : {}) };
    });
  }

  /** Each proxy's measured cost over the window, the mesh's total, and projections. */
  async cost(windowSeconds = 10, projectTo: number[] = [100, 400, 1000]): Promise<CostReport> {
    await this.fresh();
    const targets = new Map(this.opts.targets().map((t) => [t.url, t]));
    const rows: ProxyCost[] = [];
    for (const p of this.pairs(windowSeconds * 1000)) {
      const t = targets.get(p.url);
      if (!t) continue;
      rows.push({ proxy: t.proxy, mode: t.mode, workloads: t.workloads, cur: p.cur.process, prev: p.prev?.process, seconds: p.prev ? (p.cur.at - p.prev.at) / 1000 : 0 });
    }
    return costOf(rows, projectTo);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
