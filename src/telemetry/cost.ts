// The mesh's own cost from proxies' process metrics: memory, CPU per 1,000 requests, added latency, handshakes; projections.
import { histogramQuantile, type Sample } from './prom-text.js';

/** One proxy's process samples now and at the start of the window. */
export interface ProxyCost {
  proxy: string;
  mode: string;
  workloads: string[];
  cur: Sample[];
  prev: Sample[] | undefined;
  seconds: number;
}

export interface ProxyCostRow {
  proxy: string;
  pid?: number;
  mode: string;
  workloads: number;
  rssBytes: number;
  /** CPU used over the window, in cores (1 = one vCPU busy). */
  cpuCores: number | undefined;
  /** Requests this proxy handled per second (both directions). */
  rps: number | undefined;
  cpuSecondsPer1kRequests: number | undefined;
  /** Time a request spends in the proxy (total minus upstream time). */
  addedLatencyMs: { mean?: number; p50?: number; p99?: number };
  handshakesPerSecond: number | undefined;
}

export interface Projection {
  workloads: number;
  sidecar: { memoryGiB: number; vcpu: number };
  node: { memoryGiB: number; vcpu: number; proxies: number };
}

export interface CostReport {
  windowSeconds: number;
  proxies: ProxyCostRow[];
  total: { proxies: number; workloads: number; rssBytes: number; cpuCores: number; rps: number; cpuSecondsPer1kRequests?: number };
  /** The per-workload figures projections scale from, and where each comes from. */
  basis: {
    sidecarRssBytes: number;
    nodeBaseRssBytes: number;
    nodePerWorkloadRssBytes: number;
    workloadsPerNode: number;
    cpuCoresPerWorkload: number;
    notes: string[];
  };
  projections: Projection[];
}

const GiB = 1024 ** 3;
const sum = (xs: Sample[], name: string, pred: (l: Record<string, string>) => boolean = () => true) =>
  xs.reduce((a, s) => (s.name === name && pred(s.labels) ? a + s.value : a), 0);
const r3 = (v: number) => Math.round(v * 1000) / 1000;

function overheadBuckets(xs: Sample[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const s of xs) {
    if (s.name !== 'trellis_proxy_overhead_seconds_bucket') continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    m.set(le, (m.get(le) ?? 0) + s.value);
  }
  return m;
}

/** Measures one proxy over its window (counters that went backwards mean a restart: the current value counts). */
export function proxyRow(p: ProxyCost): ProxyCostRow {
  const d = (name: string, pred?: (l: Record<string, string>) => boolean) => {
    const c = sum(p.cur, name, pred);
    // A series absent from the earlier scrape had not counted anything yet.
    if (!p.prev) return undefined;
    const v = sum(p.prev, name, pred);
    return c >= v ? c - v : c;
  };
  const secs = p.seconds > 0 ? p.seconds : undefined;
  const cpu = d('process_cpu_seconds_total');
  const req = d('trellis_requests_total');
  const hs = d('trellis_tls_handshakes_total');
  const info = p.cur.find((s) => s.name === 'trellis_proxy_info');
  const oc = d('trellis_proxy_overhead_seconds_count');
  const os = d('trellis_proxy_overhead_seconds_sum');
  const cb = overheadBuckets(p.cur);
  const pb = overheadBuckets(p.prev ?? []);
  const buckets = [...cb].map(([le, n]) => ({ le, count: n - (pb.get(le) ?? 0) >= 0 ? n - (pb.get(le) ?? 0) : n }));
  const q = (x: number) => {
    const v = histogramQuantile(x, buckets);
    return v === undefined ? undefined : r3(v * 1000);
  };
  return {
    proxy: p.proxy,
    ...(info?.labels.pid ? { pid: Number(info.labels.pid) } : {}),
    mode: info?.labels.mode ?? p.mode,
    workloads: p.workloads.length,
    rssBytes: sum(p.cur, 'process_resident_memory_bytes'),
    cpuCores: cpu !== undefined && secs ? r3(cpu / secs) : undefined,
    rps: req !== undefined && secs ? r3(req / secs) : undefined,
    cpuSecondsPer1kRequests: cpu !== undefined && req ? r3((cpu / req) * 1000) : undefined,
    addedLatencyMs: oc ? { mean: r3(((os ?? 0) / oc) * 1000), p50: q(0.5), p99: q(0.99) } : {},
    handshakesPerSecond: hs !== undefined && secs ? r3(hs / secs) : undefined,
  };
}

/** Memory a node-mode proxy adds per hosted workload when it cannot be measured (listeners, certificate, pools). */
export const ASSUMED_PER_WORKLOAD_BYTES = 2 * 1024 * 1024;
export const DEFAULT_WORKLOADS_PER_NODE = 20;

/**
 * Whole-mesh figures and projections. Memory follows base + per-workload: sidecars pay the base once per workload,
 * node proxies once per node. CPU follows traffic, so it scales with workloads at today's traffic per workload.
 */
export function costOf(inputs: ProxyCost[], projectTo: number[], workloadsPerNode = DEFAULT_WORKLOADS_PER_NODE): CostReport {
  const rows = inputs.map(proxyRow).sort((a, b) => a.proxy.localeCompare(b.proxy));
  const notes: string[] = [];
  const workloads = rows.reduce((a, r) => a + r.workloads, 0);
  const rssBytes = rows.reduce((a, r) => a + r.rssBytes, 0);
  const cpuCores = r3(rows.reduce((a, r) => a + (r.cpuCores ?? 0), 0));
  const rps = r3(rows.reduce((a, r) => a + (r.rps ?? 0), 0));
  const windowSeconds = r3(Math.max(0, ...inputs.map((i) => i.seconds)));
  const sidecars = rows.filter((r) => r.workloads === 1 && r.rssBytes > 0);
  const nodes = rows.filter((r) => r.workloads > 1 && r.rssBytes > 0);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  let perWorkload = ASSUMED_PER_WORKLOAD_BYTES;
  let sidecarRss = mean(sidecars.map((r) => r.rssBytes));
  let nodeBase: number;
  if (sidecars.length && nodes.length) {
    // base + w = sidecar; base + k*w = node: two measurements, two unknowns.
    const k = mean(nodes.map((r) => r.workloads));
    const nodeRss = mean(nodes.map((r) => r.rssBytes));
    perWorkload = Math.max(0, (nodeRss - sidecarRss) / (k - 1));
    nodeBase = Math.max(0, sidecarRss - perWorkload);
    notes.push('memory per workload and per proxy solved from measured sidecar and node-mode proxies');
  } else if (nodes.length) {
    const k = mean(nodes.map((r) => r.workloads));
    nodeBase = Math.max(0, mean(nodes.map((r) => r.rssBytes)) - k * perWorkload);
    sidecarRss = nodeBase + perWorkload;
    notes.push(`only node-mode proxies measured: a sidecar is estimated as the node proxy's base plus ${perWorkload / 1048576} MiB (assumed per-workload memory)`);
  } else if (sidecars.length) {
    nodeBase = Math.max(0, sidecarRss - perWorkload);
    notes.push(`only sidecars measured: a node proxy is estimated as one sidecar's memory plus ${perWorkload / 1048576} MiB per further workload (assumed)`);
  } else {
    nodeBase = 0;
    sidecarRss = 0;
    notes.push('no proxy reported memory: nothing to project');
  }
  const cpuPerWorkload = workloads ? cpuCores / workloads : 0;
  if (!rps) notes.push('no traffic in the window: CPU projections are idle CPU only');
  const projections = projectTo.map((n) => {
    const nodeProxies = Math.ceil(n / workloadsPerNode);
    return {
      workloads: n,
      sidecar: { memoryGiB: r3((n * sidecarRss) / GiB), vcpu: r3(n * cpuPerWorkload) },
      node: { memoryGiB: r3((nodeProxies * nodeBase + n * perWorkload) / GiB), vcpu: r3(n * cpuPerWorkload), proxies: nodeProxies },
    };
  });
  const cpuTotal = rows.reduce((a, r) => a + (r.cpuCores ?? 0) * windowSeconds, 0);
  const reqTotal = rps * windowSeconds;
  return {
    windowSeconds,
    proxies: rows,
    total: { proxies: rows.length, workloads, rssBytes, cpuCores, rps, ...(reqTotal > 0 ? { cpuSecondsPer1kRequests: r3((cpuTotal / reqTotal) * 1000) } : {}) },
    basis: {
      sidecarRssBytes: Math.round(sidecarRss),
      nodeBaseRssBytes: Math.round(nodeBase),
      nodePerWorkloadRssBytes: Math.round(perWorkload),
      workloadsPerNode,
      cpuCoresPerWorkload: r3(cpuPerWorkload),
      notes,
    },
    projections,
  };
}
