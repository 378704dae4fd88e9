// Cost from process samples: per-proxy rates, restarts, and projections for sidecar and node mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { costOf, proxyRow, ASSUMED_PER_WORKLOAD_BYTES } from '../../src/telemetry/cost.js';
import type { Sample } from '../../src/telemetry/prom-text.js';

const MiB = 1024 * 1024;
function samples(o: { rss: number; cpu: number; req: number; hs?: number; pid?: number; mode?: string; overhead?: [number, number][] }): Sample[] {
  const out: Sample[] = [
    { name: 'process_resident_memory_bytes', labels: {}, value: o.rss },
    { name: 'process_cpu_seconds_total', labels: {}, value: o.cpu },
    { name: 'trellis_requests_total', labels: { reporter: 'source' }, value: o.req },
    { name: 'trellis_tls_handshakes_total', labels: { direction: 'inbound' }, value: o.hs ?? 0 },
    { name: 'trellis_proxy_info', labels: { pid: String(o.pid ?? 1), mode: o.mode ?? 'sidecar' }, value: 1 },
  ];
  let count = 0;
  for (const [le, n] of o.overhead ?? []) {
    out.push({ name: 'trellis_proxy_overhead_seconds_bucket', labels: { le: String(le) }, value: n });
    count = n;
  }
  if (o.overhead) {
    out.push({ name: 'trellis_proxy_overhead_seconds_count', labels: {}, value: count });
    out.push({ name: 'trellis_proxy_overhead_seconds_sum', labels: {}, value: count * 0.0002 });
  }
  return out;
}

test('one proxy over 10 s: cores, CPU per 1,000 requests, handshakes, added latency', () => {
  const row = proxyRow({
    proxy: 'p1',
    mode: 'sidecar',
    workloads: ['default/a'],
    prev: samples({ rss: 50 * MiB, cpu: 10, req: 1000, hs: 5, overhead: [[0.0001, 0], [0.0005, 0], [Infinity, 0]] }),
    cur: samples({ rss: 60 * MiB, cpu: 12, req: 3000, hs: 25, pid: 42, overhead: [[0.0001, 1000], [0.0005, 2000], [Infinity, 2000]] }),
    seconds: 10,
  });
  assert.equal(row.pid, 42);
  assert.equal(row.rssBytes, 60 * MiB);
  assert.equal(row.cpuCores, 0.2);
  assert.equal(row.rps, 200);
  assert.equal(row.cpuSecondsPer1kRequests, 1);
  assert.equal(row.handshakesPerSecond, 2);
  assert.equal(row.addedLatencyMs.mean, 0.2);
  assert.ok(row.addedLatencyMs.p50! <= 0.1 && row.addedLatencyMs.p99! > 0.1 && row.addedLatencyMs.p99! <= 0.5);
});

test('without an earlier scrape there are no rates; a restart counts from zero', () => {
  const first = proxyRow({ proxy: 'p', mode: 'sidecar', workloads: ['a'], cur: samples({ rss: MiB, cpu: 5, req: 10 }), prev: undefined, seconds: 0 });
  assert.equal(first.cpuCores, undefined);
  assert.equal(first.rps, undefined);
  const restarted = proxyRow({ proxy: 'p', mode: 'sidecar', workloads: ['a'], cur: samples({ rss: MiB, cpu: 1, req: 100 }), prev: samples({ rss: MiB, cpu: 50, req: 9000 }), seconds: 10 });
  assert.equal(restarted.rps, 10);
  assert.equal(restarted.cpuCores, 0.1);
});

test('projections: sidecars and a node proxy measured together solve base and per-workload memory', () => {
  const mk = (proxy: string, workloads: number, rss: number) => ({
    proxy,
    mode: workloads > 1 ? 'node' : 'sidecar',
    workloads: Array.from({ length: workloads }, (_, i) => `ns/w${i}`),
    prev: samples({ rss, cpu: 0, req: 0 }),
    cur: samples({ rss, cpu: workloads * 0.1, req: workloads * 100 }),
    seconds: 1,
  });
  // base 40 MiB + 5 MiB per workload: sidecars 45 MiB, a 5-workload node proxy 65 MiB.
  const r = costOf([mk('s1', 1, 45 * MiB), mk('s2', 1, 45 * MiB), mk('n1', 5, 65 * MiB)], [400]);
  assert.equal(r.basis.nodePerWorkloadRssBytes, 5 * MiB);
  assert.equal(r.basis.nodeBaseRssBytes, 40 * MiB);
  assert.equal(r.total.workloads, 7);
  assert.equal(r.basis.cpuCoresPerWorkload, 0.1);
  const p = r.projections[0];
  assert.equal(p.workloads, 400);
  assert.equal(p.sidecar.memoryGiB, Math.round(((400 * 45) / 1024) * 1000) / 1000);
  assert.equal(p.node.proxies, 20);
  assert.equal(p.node.memoryGiB, Math.round(((20 * 40 + 400 * 5) / 1024) * 1000) / 1000);
  assert.equal(p.sidecar.vcpu, 40);
  assert.ok(p.node.memoryGiB < p.sidecar.memoryGiB);
});

test('only sidecars measured: node mode is estimated with the assumed per-workload memory, and says so', () => {
  const r = costOf([{ proxy: 's', mode: 'sidecar', workloads: ['a'], prev: undefined, cur: samples({ rss: 50 * MiB, cpu: 1, req: 1 }), seconds: 0 }], [100]);
  assert.equal(r.basis.nodePerWorkloadRssBytes, ASSUMED_PER_WORKLOAD_BYTES);
  assert.match(r.basis.notes.join(' '), /only sidecars measured/);
  assert.match(r.basis.notes.join(' '), /no traffic/);
});
