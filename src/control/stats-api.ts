// HTTP endpoints for the live CLI and Prometheus: /api/v1/stats, /cost, /describe/..., /tap/... (relayed), /prometheus/targets (HTTP SD).
import * as http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Resource } from '../api/types.js';
import type { MeshSettings, RegistrySnapshot } from './model.js';
import { DescribeError, describeService, describeWorkload, type DescribeInput } from './describe.js';
import type { ScrapeTarget, StatsCollector } from './stats.js';

export interface ObservabilityDeps {
  stats: StatsCollector;
  targets: () => ScrapeTarget[];
  resources: () => readonly Resource[];
  registry: () => RegistrySnapshot;
  mesh: () => MeshSettings;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function positive(q: URLSearchParams, name: string, dflt: number, max: number): number {
  const v = q.get(name);
  if (v === null || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > max) throw new DescribeError(400, `${name} must be a number between 0 and ${max} (got "${v}")`);
  return n;
}

/** Outlier state of every proxy on this host (admin /resilience), for describe's endpoint column. */
async function outliers(targets: ScrapeTarget[]): Promise<DescribeInput['outliers']> {
  const out: NonNullable<DescribeInput['outliers']> = new Map();
  await Promise.all(
    targets.map(async (t) => {
      if (!t.adminUrl) return;
      try {
        const r = await fetch(`${t.adminUrl}/resilience`, { signal: AbortSignal.timeout(1000) });
        if (!r.ok) return;
        const snap = (await r.json()) as Record<string, { outlier?: { hosts?: { id: string; ejected: boolean; ejectedForMs: number; lastReason?: string }[] } }>;
        for (const [cluster, s] of Object.entries(snap)) {
          for (const h of s.outlier?.hosts ?? []) {
            let m = out.get(cluster);
            if (!m) out.set(cluster, (m = new Map()));
            const prev = m.get(h.id);
            if (!prev || (h.ejected && !prev.ejected)) m.set(h.id, { ejected: h.ejected, ejectedForMs: h.ejectedForMs, lastReason: h.lastReason, proxy: t.proxy });
          }
        }
      } catch {
        /* a proxy elsewhere or gone: describe shows config without its view */
      }
    }),
  );
  return out;
}

/** Relays a proxy's tap stream (NDJSON) to the client until either side goes away. */
function relayTap(res: ServerResponse, req: IncomingMessage, target: ScrapeTarget, workload: string, q: URLSearchParams): void {
  const params = new URLSearchParams({ workload });
  for (const k of ['path', 'method', 'to', 'limit']) {
    const v = q.get(k);
    if (v) params.set(k, v);
  }
  const up = http.get(`${target.adminUrl}/tap?${params}`, (upRes) => {
    res.writeHead(upRes.statusCode ?? 502, { 'content-type': upRes.headers['content-type'] ?? 'application/x-ndjson', 'cache-control': 'no-cache' });
    res.flushHeaders();
    upRes.pipe(res);
  });
  up.on('error', (err) => {
    if (!res.headersSent) send(res, 502, { error: `cannot reach the admin port of proxy ${target.proxy} (${err.message}); tap needs the proxy on this host` });
    else res.end();
  });
  req.on('close', () => up.destroy());
  res.on('close', () => up.destroy());
}

/** Prometheus HTTP service discovery (http_sd_configs): every connected proxy's /metrics, labelled with its proxy id and mode. */
export function prometheusTargets(targets: ScrapeTarget[]): { targets: string[]; labels: Record<string, string> }[] {
  return targets.map((t) => {
    const u = new URL(t.url);
    return { targets: [u.host], labels: { trellis_proxy: t.proxy, trellis_mode: t.mode, __metrics_path__: u.pathname } };
  });
}

/** Handles the observability routes; returns false for any other path. */
export function observabilityHandler(deps: ObservabilityDeps) {
  const input = async (withOutliers: boolean): Promise<DescribeInput> => ({
    resources: deps.resources(),
    registry: deps.registry(),
    mesh: deps.mesh(),
    ...(withOutliers ? { outliers: await outliers(deps.targets()) } : {}),
  });
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const p = url.pathname;
    if (!p.startsWith('/api/v1/stats') && !p.startsWith('/api/v1/cost') && !p.startsWith('/api/v1/describe/') && !p.startsWith('/api/v1/tap/') && p !== '/api/v1/prometheus/targets') return false;
    try {
      if (req.method !== 'GET') throw new DescribeError(405, `${req.method} not allowed on ${p}`);
      const q = url.searchParams;
      if (p === '/api/v1/prometheus/targets') return send(res, 200, prometheusTargets(deps.targets())), true;
      if (p === '/api/v1/stats') return send(res, 200, await deps.stats.stats(positive(q, 'window', 10, 300))), true;
      if (p === '/api/v1/cost') {
        const at = (q.get('workloads') ?? '100,400,1000').split(',').map((s) => Number(s.trim()));
        if (at.some((n) => !Number.isInteger(n) || n <= 0 || n > 1_000_000)) throw new DescribeError(400, `workloads must be positive whole numbers such as 100,400 (got "${q.get('workloads')}")`);
        return send(res, 200, await deps.stats.cost(positive(q, 'window', 10, 300), at)), true;
      }
      const d = /^\/api\/v1\/describe\/(workload|service)\/([^/]+)\/([^/]+)$/.exec(p);
      if (d) {
        const [kind, ns, name] = [d[1], decodeURIComponent(d[2]), decodeURIComponent(d[3])];
        const body = kind === 'workload' ? describeWorkload(await input(true), name, ns) : describeService(await input(true), name, ns);
        return send(res, 200, body), true;
      }
      const t = /^\/api\/v1\/tap\/([^/]+)\/([^/]+)$/.exec(p);
      if (t) {
        const workload = `${decodeURIComponent(t[1])}/${decodeURIComponent(t[2])}`;
        const target = deps.targets().find((x) => x.workloads.includes(workload));
        if (!target) throw new DescribeError(404, `no connected proxy hosts workload ${workload} (see trellis status)`);
        if (!target.adminUrl) throw new DescribeError(409, `the proxy of ${workload} has no admin port (started with --admin-port -1?); tap reads from it`);
        relayTap(res, req, target, workload, q);
        return true;
      }
      throw new DescribeError(404, `no such endpoint: ${p}`);
    } catch (err) {
      if (err instanceof DescribeError) send(res, err.status, { error: err.message });
      else send(res, 500, { error: `internal error: ${(err as Error).message}` });
      return true;
    }
  };
}
