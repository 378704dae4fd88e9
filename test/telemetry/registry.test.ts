// The proxy's metric registry renders valid exposition: cumulative histogram buckets from per-bucket counts, process metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ProxyMetrics } from '../../src/telemetry/proxy-metrics.js';
import { Registry } from '../../src/telemetry/registry.js';
import { parsePrometheusText } from '../../src/telemetry/prom-text.js';

test('histogram buckets are cumulative, +Inf equals the count, sub-millisecond buckets exist', () => {
  const r = new Registry();
  const h = r.histogram('x_seconds', 'x');
  for (const v of [0.00005, 0.0003, 0.002, 7, 100]) h.observe('a="1"', v);
  const s = parsePrometheusText(r.render());
  const b = (le: string) => s.find((x) => x.name === 'x_seconds_bucket' && x.labels.le === le)?.value;
  assert.equal(b('0.0001'), 1);
  assert.equal(b('0.0005'), 2);
  assert.equal(b('0.0025'), 3);
  assert.equal(b('10'), 4);
  assert.equal(b('30'), 4);
  assert.equal(b('+Inf'), 5);
  assert.equal(s.find((x) => x.name === 'x_seconds_count')?.value, 5);
});

test('proxy exposition has process metrics and the info series with the pid, and passes promtool when installed', () => {
  const m = new ProxyMetrics();
  m.setInfo({ mode: 'sidecar', version: '1.2.3' });
  const text = m.render();
  const s = parsePrometheusText(text);
  const info = s.find((x) => x.name === 'trellis_proxy_info');
  assert.equal(info?.labels.pid, String(process.pid));
  assert.equal(info?.labels.mode, 'sidecar');
  assert.ok((s.find((x) => x.name === 'process_resident_memory_bytes')?.value ?? 0) > 1e6);
  assert.ok((s.find((x) => x.name === 'process_cpu_seconds_total')?.value ?? 0) > 0);
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) return; // promtool not installed: the e2e test covers it where it is
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
