// Micro-benchmark of the proxy's pure decision layer: selectRoute on a 50-route table and each balancer's pick.
// Run: node --import tsx bench/route-select.ts [iterations]
// (tsx turns cross-module imports into getters, which inflates selectRoute; compile with tsc for production figures)
import { compileRouteTable } from '../src/proxy/route/table.js';
import { selectRoute } from '../src/proxy/route/select.js';
import type { RouteRequest } from '../src/proxy/route/types.js';
import { createBalancer, type LbPolicy } from '../src/proxy/balance/balancer.js';
import type { EndpointInfo } from '../src/proxy/balance/endpoints.js';
import { hashKey } from '../src/proxy/balance/hash.js';

const N = Number(process.argv[2] ?? 300_000);

function bench(name: string, fn: (i: number) => unknown): void {
  let sink = 0;
  for (let i = 0; i < Math.min(N, 50_000); i++) if (fn(i)) sink++; // warm-up
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) if (fn(i)) sink++;
  const ns = Number(process.hrtime.bigint() - t0) / N;
  const c = process.cpuUsage(c0);
  // CPU time is the steadier figure on a shared machine; wall time includes waiting for a core
  const cpuNs = ((c.user + c.system) * 1000) / N;
  console.log(`${name.padEnd(54)} ${cpuNs.toFixed(1).padStart(7)} ns/op cpu ${ns.toFixed(1).padStart(7)} ns/op wall${sink < 0 ? '' : ''}`);
}

// 50 routes over 5 virtual hosts of 10 routes; the last route of each catches everything.
const virtualHosts = [];
for (let v = 0; v < 5; v++) {
  const routes: object[] = [];
  for (let r = 0; r < 9; r++) {
    const kind = r % 3;
    const match =
      kind === 0
        ? { prefix: `/svc${r}/`, headers: [{ name: 'x-version', string_match: { exact: `v${r}` } }] }
        : kind === 1
          ? { safe_regex: { regex: `/items/${r}/[0-9]+` } }
          : { path: `/exact/${r}`, headers: [{ name: ':method', string_match: { exact: 'POST' } }] };
    routes.push({ name: `ns/vs${v}#${r}`, match, route: { cluster: `c${v}-${r}`, timeout: { seconds: 5 } } });
  }
  routes.push({
    name: `ns/vs${v}#9`,
    match: { prefix: '/' },
    route: { weighted_clusters: { clusters: [{ name: `c${v}-a`, weight: { value: 90 } }, { name: `c${v}-b`, weight: { value: 10 } }] } },
  });
  virtualHosts.push({ name: `svc${v}.default.svc.cluster.local:80`, domains: [`svc${v}`, `svc${v}:80`, `svc${v}.default.svc.cluster.local`, `svc${v}.default.svc.cluster.local:80`], routes });
}
const table = compileRouteTable({ name: 'bench', virtual_hosts: virtualHosts });
if (table.warnings.length) console.log(table.warnings);

const mk = (authority: string, path: string, headers: Record<string, string> = {}, method = 'GET'): RouteRequest => ({ authority, path, query: '', method, headers });
const first = mk('svc0:80', '/svc0/a', { 'x-version': 'v0' });
const regex = mk('svc3', '/items/7/12345');
const fallthrough = mk('svc4.default.svc.cluster.local:80', '/nothing/here', { 'x-version': 'zzz' });
const miss = mk('unknown:80', '/');

console.log(`node ${process.version}, ${N} iterations each`);
bench('selectRoute: first route (prefix + header)', () => selectRoute(table, first));
bench('selectRoute: regex route (#7 of 10)', () => selectRoute(table, regex));
bench('selectRoute: falls through 9 routes to weighted', () => selectRoute(table, fallthrough));
bench('selectRoute: no virtual host', () => selectRoute(table, miss));

const endpoints: EndpointInfo[] = [];
for (let i = 0; i < 20; i++) {
  endpoints.push({ id: `10.0.${i}.1:15006`, address: `10.0.${i}.1`, port: 15006, weight: 1, healthy: i !== 3, locality: { region: 'eu', zone: `eu-${i % 3}` }, metadata: {} });
}
const ctx = {};
const excluded = { excluded: new Set(['10.0.0.1:15006', '10.0.1.1:15006']) };
for (const policy of ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'] as LbPolicy[]) {
  const b = createBalancer({ policy, endpoints });
  const hashed = { hash: 0 };
  bench(`pick ${policy} (20 endpoints)`, (i) => {
    hashed.hash = (i * 2654435761) >>> 0;
    return b.pick(policy === 'RING_HASH' || policy === 'MAGLEV' ? hashed : ctx);
  });
}
const local = createBalancer({ policy: 'ROUND_ROBIN', endpoints, localityAware: true, localLocality: { region: 'eu', zone: 'eu-0' } });
bench('pick ROUND_ROBIN locality-aware, 2 excluded', () => local.pick(excluded));
const lr = createBalancer({ policy: 'LEAST_REQUEST', endpoints });
bench('LEAST_REQUEST pick + onRequestStart + onRequestEnd', () => {
  const e = lr.pick(ctx);
  if (e) {
    lr.onRequestStart(e);
    lr.onRequestEnd(e);
  }
  return e;
});
const policies = [{ kind: 'header' as const, name: 'x-user', terminal: false }];
const hreq = { headers: { 'x-user': 'alice@example.com' }, sourceIp: '10.1.2.3' };
bench('hashKey (one header policy)', () => hashKey(policies, hreq));
