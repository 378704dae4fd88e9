// Standard process metrics (CPU, memory, start time, heap) and the proxy's info series, on the light registry.
import { performance } from 'node:perf_hooks';
import { labelKey, type Registry } from './registry.js';

export interface ProcessInfo {
  /** Labels of trellis_proxy_info (e.g. mode, version). */
  info?: Record<string, string>;
}

/** Registers process_* and nodejs_* families with the names Prometheus client libraries use, read on each scrape. */
export function registerProcessMetrics(r: Registry, opts: ProcessInfo = {}): void {
  const cpuUser = r.counter('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.');
  const cpuSystem = r.counter('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.');
  const cpu = r.counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.');
  const start = r.gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.');
  const rss = r.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.');
  const heapTotal = r.gauge('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.');
  const heapUsed = r.gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.');
  const external = r.gauge('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.');
  const info = r.gauge('trellis_proxy_info', 'Constant 1, labelled with the proxy process id, mode and version.');
  const startSeconds = Math.round((Date.now() - performance.now()) / 10) / 100;
  start.set('', startSeconds);
  const labels = { pid: String(process.pid), ...(opts.info ?? {}) };
  info.set(labelKey(labels), 1);
  r.beforeRender(() => {
    const u = process.cpuUsage();
    cpuUser.values[''] = u.user / 1e6;
    cpuSystem.values[''] = u.system / 1e6;
    cpu.values[''] = (u.user + u.system) / 1e6;
    const m = process.memoryUsage();
    rss.set('', m.rss);
    heapTotal.set('', m.heapTotal);
    heapUsed.set('', m.heapUsed);
    external.set('', m.external);
  });
}
