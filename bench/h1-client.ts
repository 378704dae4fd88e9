// Benchmark: the mTLS upstream HTTP/1.1 leg, Node's http.request + keep-alive Agent (as forward.ts today) vs the hand-written client (src/proxy/upstream/h1-client.ts).
//
// Run: node --import tsx bench/h1-client.ts
// Knobs (env): ROUNDS (default 7), ROUND_MS (2000), CONCURRENCY (32), BODY (response bytes, 1024), REQ_BODY (request bytes, 0 = GET)
//
// One nginx (one worker, TLS with a required client certificate, a fixed body) is the upstream. Two worker
// processes drive it at fixed concurrency over mTLS connections made by the proxy's own openUpstream (SPIFFE
// check included): "node" uses UpstreamPool's agent and http.request exactly as forward.ts does; "h1" uses
// H1Pool + h1Request. Rounds alternate node/h1 so both see the same machine load; each worker reports requests
// and its own CPU (process.cpuUsage) for the measured part of the round. Printed: per-round numbers and the
// medians of req/s and CPU per request, with the h1/node ratios.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { CertificateAuthority } from '../src/identity/ca.js';
import { generateKeyAndCsr } from '../src/identity/keys.js';
import { StaticCertificateSource, WorkloadTls } from '../src/proxy/tls/identity.js';
import type { ClusterConfig } from '../src/proxy/config/types.js';
import type { EndpointInfo } from '../src/proxy/policy-api.js';
import { UpstreamPool } from '../src/proxy/upstream/pool.js';
import { openUpstream } from '../src/proxy/upstream/connect.js';
import { H1Pool } from '../src/proxy/upstream/h1-pool.js';
import { h1Request } from '../src/proxy/upstream/h1-client.js';
import { installCleanup, stop } from './children.js';
import { startNginx } from './nginx-chain.js';
import { loadAverage, median } from './proc-stats.js';

const ROUNDS = Number(process.env.ROUNDS ?? 7);
const ROUND_MS = Number(process.env.ROUND_MS ?? 2000);
const WARM_MS = 300;
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32);
const BODY = Number(process.env.BODY ?? 1024);
const REQ_BODY = Number(process.env.REQ_BODY ?? 0);
const TRUST = 'cluster.local';

interface WorkerConfig {
  port: number;
  serverId: string;
  keyPem: string;
  certChainPem: string;
  bundlePem: string;
}

interface RoundResult {
  requests: number;
  cpuMs: number;
  ms: number;
  errors: number;
}

// ---------------------------------------------------------------- worker: drives one client variant

/** The headers the outbound proxy sends upstream for a typical app request. */
function requestHeaders(): Record<string, string> {
  return {
    host: 'reviews.default.svc.cluster.local',
    'user-agent': 'bench/1.0',
    accept: '*/*',
    'x-request-id': '3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b',
    'x-forwarded-proto': 'http',
    ...(REQ_BODY > 0 ? { 'content-type': 'application/octet-stream', 'content-length': String(REQ_BODY) } : {}),
  };
}

async function worker(variant: 'node' | 'h1', cfg: WorkerConfig): Promise<void> {
  const caller = new WorkloadTls('spiffe://cluster.local/ns/bench/sa/client', TRUST, new StaticCertificateSource({ keyPem: cfg.keyPem, certChainPem: cfg.certChainPem, trustBundlePem: cfg.bundlePem }));
  const cluster = { name: 'bench', type: 'STATIC', edsServiceName: '', connectTimeoutMs: 5000, lbPolicy: 'ROUND_ROBIN', localityAware: false, service: 'reviews', port: 80, protocol: 'HTTP' } as ClusterConfig;
  const ep: EndpointInfo = { id: `127.0.0.1:${cfg.port}`, address: '127.0.0.1', port: cfg.port, weight: 1, healthy: true, locality: { region: '', zone: '', subZone: '' } as EndpointInfo['locality'], metadata: { tls: 'mutual', identity: cfg.serverId } };
  const body = REQ_BODY > 0 ? Buffer.alloc(REQ_BODY, 'q') : undefined;
  const method = body ? 'POST' : 'GET';
  let running = false;
  let done = 0;
  let errors = 0;
  let inflight = 0;
  let idle: (() => void) | undefined;

  let one: (next: () => void) => void;
  if (variant === 'node') {
    const pool = new UpstreamPool();
    const agent = pool.agent(cluster, ep, caller);
    one = (next) => {
      const req = http.request({ agent, host: ep.address, port: ep.port, method, path: '/api/v1/items?page=2', headers: requestHeaders(), setHost: false });
      req.on('error', () => {
        errors++;
        next();
      });
      req.on('response', (res) => {
        res.on('data', () => {});
        res.on('end', next);
      });
      req.end(body);
    };
  } else {
    const pool = new H1Pool({ connect: () => openUpstream(cluster, ep, caller, ['http/1.1']), readyEvent: 'trellis:ready', maxSockets: 512, maxIdle: 64, idleMs: 4000 });
    const handler = (next: () => void) => ({
      onResponse() {},
      onData() {},
      onEnd: next,
      onError() {
        errors++;
        next();
      },
    });
    one = (next) => {
      h1Request(pool, { method, path: '/api/v1/items?page=2', headers: requestHeaders(), body }, handler(next));
    };
  }

  const lane = (): void => {
    if (!running) {
      inflight--;
      if (inflight === 0) idle?.();
      return;
    }
    one(() => {
      done++;
      lane();
    });
  };

  process.on('message', async (m: { go: number } | 'exit') => {
    if (m === 'exit') {
      caller.close();
      process.exit(0);
    }
    running = true;
    done = 0;
    errors = 0;
    for (let i = 0; i < CONCURRENCY; i++) {
      inflight++;
      lane();
    }
    await new Promise((r) => setTimeout(r, WARM_MS));
    const d0 = done;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, m.go));
    const d1 = done;
    const c1 = process.cpuUsage(c0);
    const ms = performance.now() - t0;
    running = false;
    await new Promise<void>((r) => (inflight === 0 ? r() : (idle = r)));
    idle = undefined;
    const res: RoundResult = { requests: d1 - d0, cpuMs: (c1.user + c1.system) / 1000, ms, errors };
    process.send!(res);
  });
  process.send!('ready');
}

// ---------------------------------------------------------------- parent: nginx, workers, rounds

async function issue(ca: CertificateAuthority, sa: string): Promise<{ spiffeId: string; keyPem: string; certChainPem: string }> {
  const spiffeId = `spiffe://${TRUST}/ns/bench/sa/${sa}`;
  const { keyPem, csrPem } = await generateKeyAndCsr(spiffeId);
  const { certChainPem } = await ca.signCsr(csrPem, { spiffeId, ttlSeconds: 3600 });
  return { spiffeId, keyPem, certChainPem: Array.isArray(certChainPem) ? certChainPem.join('\n') : certChainPem };
}

function nginxConfig(dir: string, port: number): string {
  const p = (x: string) => join(dir, x);
  mkdirSync(p('tmp'), { recursive: true });
  return `daemon off;
master_process on;
worker_processes 1;
${process.getuid?.() === 0 ? 'user root;' : ''}
pid ${p('nginx.pid')};
error_log ${p('error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  client_body_temp_path ${p('tmp')}/body;
  proxy_temp_path ${p('tmp')}/proxy;
  fastcgi_temp_path ${p('tmp')}/fastcgi;
  uwsgi_temp_path ${p('tmp')}/uwsgi;
  scgi_temp_path ${p('tmp')}/scgi;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${p('server.crt')};
    ssl_certificate_key ${p('server.key')};
    ssl_client_certificate ${p('ca.crt')};
    ssl_verify_client on;
    ssl_verify_depth 3;
    ssl_protocols TLSv1.2 TLSv1.3;
    client_body_buffer_size 64k;
    location / {
      default_type text/plain;
      return 200 '${'x'.repeat(BODY)}';
    }
  }
}
`;
}

async function freePort(): Promise<number> {
  const s = http.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  return port;
}

function ask(w: ChildProcess, ms: number): Promise<RoundResult> {
  const p = once(w, 'message') as Promise<[RoundResult]>;
  w.send({ go: ms });
  return p.then(([r]) => r);
}

async function main(): Promise<void> {
  installCleanup();
  const dir = mkdtempSync(join(tmpdir(), 'trellis-bench-h1-'));
  const workers: ChildProcess[] = [];
  try {
    const ca = await CertificateAuthority.loadOrCreate({ stateDir: join(dir, 'ca'), trustDomain: TRUST });
    const server = await issue(ca, 'server');
    const client = await issue(ca, 'client');
    writeFileSync(join(dir, 'server.crt'), server.certChainPem);
    writeFileSync(join(dir, 'server.key'), server.keyPem);
    writeFileSync(join(dir, 'ca.crt'), ca.trustBundlePem());
    const port = await freePort();
    const nginx = await startNginx({ dir, name: 'upstream' }, nginxConfig(dir, port), port);
    const cfg: WorkerConfig = { port, serverId: server.spiffeId, keyPem: client.keyPem, certChainPem: client.certChainPem, bundlePem: ca.trustBundlePem() };
    const self = fileURLToPath(import.meta.url);
    const spawnWorker = async (v: string) => {
      const w = fork(self, ['--worker', v], { execArgv: ['--import', 'tsx'], env: { ...process.env, BENCH_CFG: JSON.stringify(cfg) } });
      workers.push(w);
      const [m] = (await once(w, 'message')) as [string];
      if (m !== 'ready') throw new Error(`worker ${v}: unexpected first message`);
      return w;
    };
    const node = await spawnWorker('node');
    const h1 = await spawnWorker('h1');
    const cmd = `ROUNDS=${ROUNDS} ROUND_MS=${ROUND_MS} CONCURRENCY=${CONCURRENCY} BODY=${BODY} REQ_BODY=${REQ_BODY} node --import tsx bench/h1-client.ts`;
    console.log(`# ${cmd}`);
    console.log(`# node ${process.version}, nginx upstream (1 worker, mTLS), load average at start ${loadAverage()}`);
    // Warm-up: JIT, TLS handshakes and pools of both variants.
    await ask(node, 1000);
    await ask(h1, 1000);
    const rows: { v: string; rps: number; us: number; errors: number }[] = [];
    console.log('round | variant | req/s | CPU µs/req | errors');
    for (let r = 1; r <= ROUNDS; r++) {
      // Alternate which goes first so neither always runs right after the other.
      const order = r % 2 === 1 ? ([['node', node], ['h1', h1]] as const) : ([['h1', h1], ['node', node]] as const);
      for (const [v, w] of order) {
        const res = await ask(w, ROUND_MS);
        const row = { v, rps: (res.requests * 1000) / res.ms, us: (res.cpuMs * 1000) / Math.max(1, res.requests), errors: res.errors };
        rows.push(row);
        console.log(`${r} | ${v} | ${Math.round(row.rps)} | ${row.us.toFixed(1)} | ${row.errors}`);
      }
    }
    const med = (v: string, k: 'rps' | 'us') => median(rows.filter((x) => x.v === v).map((x) => x[k]));
    const rn = med('node', 'rps');
    const rh = med('h1', 'rps');
    const un = med('node', 'us');
    const uh = med('h1', 'us');
    console.log('');
    console.log('variant | median req/s | median CPU µs/req');
    console.log(`node http.request + Agent | ${Math.round(rn)} | ${un.toFixed(1)}`);
    console.log(`h1-client | ${Math.round(rh)} | ${uh.toFixed(1)}`);
    console.log(`h1/node | ${(rh / rn).toFixed(2)}x | ${(uh / un).toFixed(2)}x`);
    console.log(`# load average at end ${loadAverage()}`);
    await stop(nginx.tracked);
  } finally {
    for (const w of workers) if (w.connected) w.send('exit');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--worker') {
  await worker(process.argv[3] as 'node' | 'h1', JSON.parse(process.env.BENCH_CFG!) as WorkerConfig);
} else {
  await main();
}
