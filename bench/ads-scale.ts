// ADS scale benchmark: 1,000 simulated sidecars and 5,000 endpoints against one in-process control plane.
// Run: node --import tsx bench/ads-scale.ts   (env CLIENTS, ENDPOINTS, SERVICES, CHANGES, WORKERS to resize; CALLS or
// SUBSCRIBE=all for the sidecars' EDS subscriptions; see bench/README.md)
import { fork } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import inspector from 'node:inspector';
import v8 from 'node:v8';
import { loadavg, tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import type { Resource } from '../src/api/types.js';
import { startControlPlane } from '../src/control/control-plane.js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../src/xds/protos.js';

const CLIENTS = Number(process.env.CLIENTS ?? 1000);
const ENDPOINTS = Number(process.env.ENDPOINTS ?? 5000);
const CHANGES = Number(process.env.CHANGES ?? 20);
const WORKERS = Number(process.env.WORKERS ?? 2);
const SERVICES = Number(process.env.SERVICES ?? 200);
// On-demand EDS (the proxy's default): each sidecar subscribes the endpoints of CALLS services; SUBSCRIBE=all: every one.
const SUBSCRIBE_ALL = process.env.SUBSCRIBE === 'all';
const CALLS = SUBSCRIBE_ALL ? 0 : Number(process.env.CALLS ?? 5);
const edsName = (svc: number) => `outbound|8080||svc-${svc}.default.svc.cluster.local`;
const TYPES = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(n < 10 * 1048576 ? 2 : 0)} MB`;

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

async function startProfile(): Promise<inspector.Session> {
  const session = new inspector.Session();
  session.connect();
  await new Promise((r) => session.post('Profiler.enable', () => session.post('Profiler.start', r)));
  return session;
}

async function stopProfile(session: inspector.Session, file: string): Promise<void> {
  const { profile } = await new Promise<any>((r) => session.post('Profiler.stop', (_e, res) => r(res)));
  await writeFile(file, JSON.stringify(profile));
  session.disconnect();
}

async function main(): Promise<void> {
  const load0 = loadavg();
  const dir = await mkdtemp(join(tmpdir(), 'trellis-bench-'));
  // The control plane exactly as `trellis control` builds it: real compiler, registry, ADS server, CA and tokens.
  const cp = await startControlPlane({
    stateDir: dir,
    store: 'memory',
    grpcListen: '127.0.0.1:0',
    httpListen: '127.0.0.1:0',
    ...(process.env.MAX_DELAY_MS ? { maxDelayMs: Number(process.env.MAX_DELAY_MS) } : {}),
  });
  await cp.store.apply([...config(), vs('5s')]);
  const token = await cp.tokens.create({ namespace: 'default', serviceAccount: 'bench' });
  const rssBefore = process.memoryUsage().rss;

  const per = Math.ceil(CLIENTS / WORKERS);
  const workers = [];
  for (let w = 0; w < WORKERS; w++) {
    const n = Math.min(per, CLIENTS - w * per);
    const args = [`127.0.0.1:${cp.grpcPort}`, token, String(w * per), String(n), String(SERVICES), String(CALLS)];
    // The worker's own extension: the benchmark also runs compiled to JavaScript (bench/README.md, RSS without tsx).
    const client = join(import.meta.dirname, `ads-scale-client${extname(import.meta.filename)}`);
    const child = fork(client, args, { execArgv: ['--import', 'tsx'] });
    child.on('message', (m: { error?: string }) => m.error && console.error(m.error));
    workers.push(child);
  }
  // Worker start-up (loading TypeScript and protos) is not the control plane's time: start the clock at "go".
  await Promise.all(workers.map((w) => new Promise<void>((r) => w.on('message', (m: { ready?: boolean }) => m.ready && r()))));
  const syncSession = process.env.PROFILE === 'sync' ? await startProfile() : undefined;
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  for (const w of workers) w.send({ go: true });
  const allSynced = () => TYPES.every((t) => cp.ads.ackedSince(t, 0).acked === CLIENTS);
  const deadline = Date.now() + 120_000;
  // Every registration changes EDS for everyone: sync is when every client has ACKed every type and nothing is outstanding.
  const settled = () => allSynced() && cp.ads.proxies().every((p) => Object.values(p.types).every((s) => s.state === 'SYNCED'));
  // Polling runs in the measured process: keep it cheap (the full status walk only once every type is ACKed).
  while (Date.now() < deadline && !(allSynced() && settled())) {
    await sleep(50);
    if (process.env.DEBUG) console.error(Date.now() - t0, cp.ads.connectionCount, TYPES.map((t) => cp.ads.ackedSince(t, 0).acked).join(' '));
  }
  const initialSync = Date.now() - t0;
  const syncCpu = process.cpuUsage(cpu0);
  if (syncSession) await stopProfile(syncSession, 'bench-sync.cpuprofile');
  const syncBytes = cp.ads.bytesSent;
  const syncResponses = cp.ads.responsesSent;
  const syncByType = Object.entries(cp.ads.bytesByType).map(([t, n]) => `${t.split('.').at(-1)} ${mb(n)}`).join(', ');
  const clientCpu = await Promise.all(
    workers.map((w) => {
      const got = new Promise<number>((r) => w.on('message', (m: { cpuMs?: number }) => m.cpuMs !== undefined && r(m.cpuMs)));
      w.send({ cpu: true });
      return got;
    }),
  );
  const synced = settled();
  if (!synced || process.env.DEBUG) {
    const states: Record<string, number> = {};
    for (const p of cp.ads.proxies()) for (const [t, st] of Object.entries(p.types)) states[`${t}:${st.state}`] = (states[`${t}:${st.state}`] ?? 0) + 1;
    console.error('sync states', cp.ads.connectionCount, JSON.stringify(states));
  }
  await sleep(500);
  const memSync = process.memoryUsage();
  if (process.env.HEAPSNAP) v8.writeHeapSnapshot(process.env.HEAPSNAP);

  // PROFILE=changes writes a CPU profile of the change phase only (bench-changes.cpuprofile).
  const session = process.env.PROFILE === 'changes' ? await startProfile() : undefined;
  const latencies: number[] = [];
  const byType: Record<string, number[]> = { eds: [], rds: [] };
  const edsReached: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    await sleep(300);
    const type = i % 2 === 0 ? ENDPOINT_TYPE : ROUTE_TYPE;
    const start = Date.now();
    if (type === ENDPOINT_TYPE) await cp.store.apply([entry(i, 9000 + i)]);
    else await cp.store.apply([vs(`${6 + i}s`)]);
    const until = Date.now() + 20_000;
    // An EDS change concerns the clients subscribed to that service's endpoints (all of them with SUBSCRIBE=all).
    const resource = type === ENDPOINT_TYPE ? edsName(i % SERVICES) : undefined;
    const expected = resource ? cp.ads.ackedSince(type, 0, resource).total : CLIENTS;
    if (resource) edsReached.push(expected);
    // ACK times are recorded by the server as they arrive; the poll only decides when to stop waiting.
    while (cp.ads.ackedSince(type, start, resource).acked < expected && Date.now() < until) await sleep(20);
    const r = cp.ads.ackedSince(type, start, resource);
    const ms = r.acked === expected && expected > 0 ? r.lastAckAt - start : Number.NaN;
    latencies.push(ms);
    byType[type === ENDPOINT_TYPE ? 'eds' : 'rds'].push(ms);
  }
  if (session) await stopProfile(session, 'bench-changes.cpuprofile');
  const mem = process.memoryUsage();
  const maxRss = process.resourceUsage().maxRSS * 1024;
  const pct = (xs: number[], p: number) => {
    const sorted = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
    return sorted.length < xs.length || !sorted.length ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)];
  };
  const p99 = pct(latencies, 0.99);
  const load1 = loadavg();

  const rows: [string, string, string][] = [
    ['clients (sidecars: own ADS stream and connection each)', String(CLIENTS), `${WORKERS} client processes`],
    ['endpoints', String(ENDPOINTS), `${SERVICES} services, ${CLIENTS} sidecar workloads + ${Math.max(0, ENDPOINTS - CLIENTS)} WorkloadEntries`],
    ['initial sync of all clients (CDS+EDS+LDS+RDS+SDS ACKed)', synced ? `${initialSync} ms` : `NOT SYNCED after ${initialSync} ms`, '<= 5000 ms'],
    ['control-plane CPU during initial sync (user+sys)', `${Math.round((syncCpu.user + syncCpu.system) / 1000)} ms`, `client processes: ${clientCpu.join(' + ')} ms`],
    ['xDS responses / bytes sent during initial sync', `${syncResponses} / ${mb(syncBytes)}`, syncByType],
    ['change -> last client ACK, p99', `${p99} ms`, '<= 500 ms'],
    ['change -> last client ACK, median EDS / RDS', `${pct(byType.eds, 0.5)} / ${pct(byType.rds, 0.5)} ms`, ''],
    ['change -> last client ACK, each', latencies.join(', ') + ' ms', `${CHANGES} changes, EDS and RDS alternating`],
    ['clients an EDS change reached (subscribers of that service)', edsReached.length ? `${Math.min(...edsReached)}-${Math.max(...edsReached)}` : '-', SUBSCRIBE_ALL ? 'SUBSCRIBE=all: every client' : `on demand: each client calls ${CALLS} services`],
    ['control-plane RSS after sync / after changes', `${mb(memSync.rss)} / ${mb(mem.rss)}`, '<= 300 MB'],
    ['control-plane peak RSS', mb(maxRss), ''],
    ['control-plane heap used / heap total / external (after changes)', `${mb(mem.heapUsed)} / ${mb(mem.heapTotal)} / ${mb(mem.external)}`, ''],
    ['control-plane RSS before clients', mb(rssBefore), ''],
    ['distinct encoded resources held', String(cp.ads.encodedResources), ''],
    ['load average (1 min) at start / end', `${load0[0].toFixed(2)} / ${load1[0].toFixed(2)}`, ''],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  const env = ['MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_', 'MAX_DELAY_MS', 'CLIENT_WINDOW', 'WORKERS', 'SUBSCRIBE', 'CALLS'].filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]} `).join('');
  console.log(`\nADS scale benchmark — node ${process.version}, command: ${env}CLIENTS=${CLIENTS} ENDPOINTS=${ENDPOINTS} SERVICES=${SERVICES} CHANGES=${CHANGES} node --import tsx bench/ads-scale.ts`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`);
  console.log(
    'RESULT ' +
      JSON.stringify({ subscribe: SUBSCRIBE_ALL ? 'all' : CALLS, sync: synced ? initialSync : null, syncCpu: Math.round((syncCpu.user + syncCpu.system) / 1000), clientCpu, syncMB: Math.round(syncBytes / 1048576), p99, eds: pct(byType.eds, 0.5), rds: pct(byType.rds, 0.5), rssSync: Math.round(memSync.rss / 1048576), rss: Math.round(mem.rss / 1048576), peak: Math.round(maxRss / 1048576), load: [load0[0], load1[0]] }),
  );

  for (const w of workers) w.send({ exit: true });
  await cp.close();
  await rm(dir, { recursive: true, force: true });
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
