// ADS scale benchmark: 1,000 simulated sidecars and 5,000 endpoints against one in-process control plane.
// Run: node --import tsx bench/ads-scale.ts   (env CLIENTS, ENDPOINTS, CHANGES, WORKERS to resize)
import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Resource } from '../src/api/types.js';
import { startControlPlane } from '../src/control/control-plane.js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE } from '../src/xds/protos.js';
import { compileForProxy } from '../src/control/compile/index.js';
import type { CompileInput, ProxyDescriptor, XdsSnapshot } from '../src/control/model.js';

const CLIENTS = Number(process.env.CLIENTS ?? 1000);
const ENDPOINTS = Number(process.env.ENDPOINTS ?? 5000);
const CHANGES = Number(process.env.CHANGES ?? 6);
const WORKERS = Number(process.env.WORKERS ?? 2);
const SERVICES = 50;
/** real: compileForProxy for every proxy. template: compile once per config generation and derive each proxy's
 * snapshot from it (per-proxy listeners, routes and inbound cluster; shared clusters and endpoints), i.e. what a
 * compiler that memoizes caller-independent parts per CompileInput would hand the ADS server. */
const COMPILE = process.env.COMPILE ?? 'template';
const TYPES = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MB`;

function config(): Resource[] {
  const out: Resource[] = [];
  for (let s = 0; s < SERVICES; s++) {
    out.push({ apiVersion: 'v1', kind: 'Service', metadata: { name: `svc-${s}`, namespace: 'default' }, spec: { selector: { app: `svc-${s}` }, ports: [{ name: 'http', port: 8080 }] } });
  }
  // The sidecars' own workloads count as endpoints; WorkloadEntries (loopback addresses: config only, no traffic) make up the rest.
  for (let e = 0; e < Math.max(0, ENDPOINTS - CLIENTS); e++) {
    out.push(entry(e, 8080));
  }
  return out;
}

function entry(e: number, port: number): Resource {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'WorkloadEntry',
    metadata: { name: `we-${e}`, namespace: 'default' },
    spec: { address: `127.1.${Math.floor(e / 250)}.${(e % 250) + 1}`, ports: { http: port }, labels: { app: `svc-${e % SERVICES}` }, serviceAccount: 'vm' },
  };
}

function vs(timeout: string): Resource {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'svc-0', namespace: 'default' }, spec: { hosts: ['svc-0'], http: [{ timeout, route: [{ destination: { host: 'svc-0' } }] }] } };
}

function templateCompiler(): typeof compileForProxy {
  const templates = new WeakMap<CompileInput, { snap: XdsSnapshot; workload: string }>();
  return (input: CompileInput, proxy: ProxyDescriptor, subs?: { listeners?: string[] }): XdsSnapshot => {
    let t = templates.get(input);
    if (!t) {
      t = { snap: compileForProxy(input, proxy, subs), workload: proxy.workloads[0]?.name ?? '' };
      templates.set(input, t);
    }
    const mine = proxy.workloads[0]?.name ?? '';
    if (mine === t.workload) return t.snap;
    const out: XdsSnapshot = {};
    for (const [type, byName] of Object.entries(t.snap)) {
      out[type] = {};
      for (const [name, obj] of Object.entries(byName)) {
        if (!name.includes(`/${t.workload}`)) out[type][name] = obj;
        else {
          const n = name.replace(`/${t.workload}`, `/${mine}`);
          out[type][n] = 'cluster_name' in obj ? { ...obj, cluster_name: n } : { ...obj, name: n };
        }
      }
    }
    return out;
  };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-bench-'));
  const cp = await startControlPlane({
    stateDir: dir,
    store: 'memory',
    grpcListen: '127.0.0.1:0',
    httpListen: '127.0.0.1:0',
    compile: COMPILE === 'real' ? compileForProxy : templateCompiler(),
  });
  await cp.store.apply([...config(), vs('5s')]);
  const token = await cp.tokens.create({ namespace: 'default', serviceAccount: 'bench' });
  const rssBefore = process.memoryUsage().rss;

  const per = Math.ceil(CLIENTS / WORKERS);
  const workers = [];
  for (let w = 0; w < WORKERS; w++) {
    const n = Math.min(per, CLIENTS - w * per);
    const child = fork(join(import.meta.dirname, 'ads-scale-client.ts'), [`127.0.0.1:${cp.grpcPort}`, token, String(w * per), String(n)], {
      execArgv: ['--import', 'tsx'],
    });
    child.on('message', (m: { error?: string }) => m.error && console.error(m.error));
    workers.push(child);
  }
  // Worker start-up (loading TypeScript and protos) is not the control plane's time: start the clock at "go".
  await Promise.all(workers.map((w) => new Promise<void>((r) => w.on('message', (m: { ready?: boolean }) => m.ready && r()))));
  const t0 = Date.now();
  for (const w of workers) w.send({ go: true });
  const allSynced = () => TYPES.every((t) => cp.ads.ackedSince(t, 0).acked === CLIENTS);
  const deadline = Date.now() + 60_000;
  while (!allSynced() && Date.now() < deadline) {
    await sleep(25);
    if (process.env.DEBUG) console.error(Date.now() - t0, cp.ads.connectionCount, TYPES.map((t) => cp.ads.ackedSince(t, 0).acked).join(" "));
  }
  // Registration of 1,000 workloads changes EDS for everyone; count sync once the last push is acknowledged.
  while (Date.now() < deadline && !(allSynced() && cp.ads.proxies().every((p) => Object.values(p.types).every((s) => s.state === 'SYNCED')))) await sleep(50);
  const initialSync = Date.now() - t0;
  const synced = allSynced();
  if (!synced || process.env.DEBUG) {
    const states: Record<string, number> = {};
    for (const p of cp.ads.proxies()) for (const [t, st] of Object.entries(p.types)) states[`${t}:${st.state}`] = (states[`${t}:${st.state}`] ?? 0) + 1;
    console.error('sync states', cp.ads.connectionCount, JSON.stringify(states));
  }

  const latencies: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    await sleep(300);
    const type = i % 2 === 0 ? ENDPOINT_TYPE : ROUTE_TYPE;
    const start = Date.now();
    if (type === ENDPOINT_TYPE) await cp.store.apply([entry(i, 9000 + i)]);
    else await cp.store.apply([vs(`${6 + i}s`)]);
    const until = Date.now() + 20_000;
    while (cp.ads.ackedSince(type, start).acked < CLIENTS && Date.now() < until) await sleep(5);
    const r = cp.ads.ackedSince(type, start);
    latencies.push(r.acked === CLIENTS ? r.lastAckAt - start : Number.NaN);
  }
  const mem = process.memoryUsage();
  const rss = mem.rss;
  const maxRss = process.resourceUsage().maxRSS * 1024;
  const sorted = latencies.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const p99 = sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] : Number.NaN;

  const rows: [string, string, string][] = [
    ['clients (sidecars, raw grpc-js streams)', String(CLIENTS), ''],
    ['endpoints', String(ENDPOINTS), `${SERVICES} services`],
    ['compile mode', COMPILE, COMPILE === 'real' ? 'compileForProxy per proxy' : 'one compile per change, per-proxy parts derived'],
    ['initial sync of all clients (CDS+EDS+LDS+RDS ACKed)', synced ? `${initialSync} ms` : `NOT SYNCED after ${initialSync} ms`, '<= 5000 ms'],
    ['change -> last client ACK, p99', `${p99} ms`, '<= 500 ms'],
    ['change -> last client ACK, each', latencies.join(', ') + ' ms', `${CHANGES} changes, EDS and RDS alternating`],
    ['control-plane RSS after sync', mb(rss), '<= 300 MB'],
    ['control-plane peak RSS', mb(maxRss), ''],
    ['control-plane heap used / total / external', `${mb(mem.heapUsed)} / ${mb(mem.heapTotal)} / ${mb(mem.external)}`, ''],
    ['control-plane RSS before clients', mb(rssBefore), ''],
    ['distinct encoded resources held', String(cp.ads.encodedResources), ''],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  console.log(`\nADS scale benchmark — node ${process.version}, command: CLIENTS=${CLIENTS} ENDPOINTS=${ENDPOINTS} COMPILE=${COMPILE} node --import tsx bench/ads-scale.ts`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`);

  for (const w of workers) w.send({ exit: true });
  await cp.close();
  await rm(dir, { recursive: true, force: true });
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
