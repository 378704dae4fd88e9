// Resilience end to end: caller proxy A -> mTLS -> proxy B -> apps on 127.0.0.1 that fail on command; clusters and route policies from the real compiler.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { outboundCluster } from '../../src/control/compile/clusters.js';
import { mirrorPolicy, retryPolicy } from '../../src/control/compile/route-parts.js';
import type { HTTPRetry, TrafficPolicy } from '../../src/control/compile/spec.js';
import { CLUSTER_TYPE, ROUTE_TYPE } from '../../src/xds/protos.js';
import { objectToStruct } from '../../src/proxy/config/struct.js';
import { createTestCa, type TestCa } from './helpers/ca.js';
import { echoService, EchoClient, listen } from './helpers/mesh.js';
import * as x from './helpers/xds.js';

interface App {
  name: string;
  port: number;
  hits: number;
  log: { method: string; url: string; bodyLen: number; host: string }[];
  /** Answer every request with this status (0 = per path). */
  status: number;
  delayMs: number;
  server: http.Server;
}

const failedOnce = new Set<string>();

async function app(name: string): Promise<App> {
  const a = { name, port: 0, hits: 0, log: [], status: 0, delayMs: 0 } as unknown as App;
  a.server = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => {
      a.hits++;
      const url = req.url ?? '/';
      a.log.push({ method: req.method ?? '', url, bodyLen: n, host: req.headers.host ?? '' });
      if (url.includes('/reset')) return void req.socket.destroy();
      let status = a.status || 200;
      const once = /\/fail-once\/([\w-]+)/.exec(url);
      if (once && !failedOnce.has(once[1])) {
        failedOnce.add(once[1]);
        status = 503;
      }
      const st = /\/status\/(\d{3})/.exec(url);
      if (st) status = Number(st[1]);
      const d = /\/delay\/(\d+)/.exec(url);
      const delay = d ? Number(d[1]) : a.delayMs;
      setTimeout(() => {
        if (res.destroyed) return;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ app: name, bodyLen: n }));
      }, delay);
    });
  });
  a.port = await listen(a.server);
  return a;
}

let ca: TestCa;
let a: Proxy;
let b: Proxy;
let outPort: number;
const apps: Record<string, App> = {};
let grpcServer: grpc.Server;
const grpcCalls = new Map<string, number>();
let deadPort: number;

const svc = (name: string, protocol = 'HTTP', port = 80) => ({
  svc: { name, namespace: 'default', fqdn: x.fqdn(name), aliases: [], ports: [], source: 'Service' as const },
  port: { port, targetPort: port, protocol: protocol as 'HTTP', name: protocol.toLowerCase() },
});

/** A cluster exactly as the control plane compiles it, decoded as the proxy receives it; `extraMeta` adds trellis metadata. */
function cluster(name: string, policy: TrafficPolicy = {}, protocol = 'HTTP', extraMeta?: Record<string, unknown>): Record<string, any> {
  const s = svc(name, protocol);
  const c = outboundCluster({ svc: s.svc, port: s.port, policy }) as Record<string, any>;
  c.connect_timeout = { seconds: 1 };
  if (extraMeta) {
    const md = { service: x.fqdn(name), port: 80, subset: '', protocol, ...extraMeta };
    c.metadata = { filter_metadata: { trellis: objectToStruct(md) } };
  }
  return x.roundTrip(CLUSTER_TYPE, c);
}

interface R {
  prefix?: string;
  cluster: string;
  timeoutMs?: number;
  retries?: HTTPRetry;
  mirror?: { cluster: string; percent: number };
}

function vhost(name: string, routes: R[], domains = x.domainsFor(name, 80)) {
  return {
    name: `${name}:80`,
    domains,
    routes: routes.map((r, i) => {
      const route: Record<string, unknown> = { cluster: r.cluster, timeout: r.timeoutMs ? { seconds: 0, nanos: r.timeoutMs * 1e6 } : { seconds: 0 } };
      const rp = retryPolicy(r.retries);
      if (rp) route.retry_policy = rp;
      if (r.mirror) route.request_mirror_policies = [mirrorPolicy(r.mirror.cluster, r.mirror.percent)];
      return { name: `default/${name}#${i}`, match: { prefix: r.prefix ?? '/' }, route };
    }),
  };
}

const cname = (n: string) => `outbound|80||${x.fqdn(n)}`;

before(async () => {
  ca = await createTestCa();
  for (const n of ['flaky', 'storm', 'm1', 'o1', 'o2', 'o3', 'slow', 'main', 'shadow', 'idle']) apps[n] = await app(n);
  grpcServer = new grpc.Server();
  grpcServer.addService(echoService, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const msg = call.request.toString();
      const n = (grpcCalls.get(msg) ?? 0) + 1;
      grpcCalls.set(msg, n);
      if (msg.startsWith('flaky') && n <= 2) return cb({ code: grpc.status.UNAVAILABLE, details: `try ${n} unavailable` });
      setTimeout(() => cb(null, Buffer.from(`echo:${msg}`)), msg.startsWith('slow') ? 1500 : 0);
    },
  });
  const grpcPort = await new Promise<number>((r, j) => grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? j(e) : r(p))));
  const dead = net.createServer();
  deadPort = await listen(dead);
  await new Promise<void>((r) => dead.close(() => r()));

  const idB = await ca.issue('default', 'b');
  const idA = await ca.issue('default', 'a');
  // B listens on every loopback address, so 127.0.0.x endpoints are distinct endpoints reaching the same proxy.
  const inbound = x.inboundListener('default/b', 0, [...Object.values(apps).map((p) => ({ appPort: p.port })), { appPort: grpcPort, protocol: 'GRPC' as const }]);
  inbound.address.socket_address.address = '0.0.0.0';
  b = await startProxy({
    workloads: [{ namespace: 'default', name: 'b' }],
    staticConfig: { listeners: [inbound], clusters: [...Object.values(apps).map((p) => x.inboundCluster('default/b', p.port)), x.inboundCluster('default/b', grpcPort)] },
    staticIdentity: idB,
    metricsPort: 0,
    adminPort: -1,
    drainTimeoutMs: 500,
    logLevel: 'error',
  });
  await b.ready;
  const inPort = b.listenerPort('inbound|default/b')!;
  const ep = (targetPort: number, address = '127.0.0.1', port = inPort): x.EndpointSpec => ({ address, port, workload: 'default/b', identity: idB.spiffeId, targetPort });

  const clusters = [
    cluster('flaky'),
    cluster('storm', {}, 'HTTP', { retryBudget: { retryRatio: 20, minRetriesPerSecond: 10, ttl: '1s' } }),
    cluster('multi'),
    cluster('outlier', { outlierDetection: { consecutive5xxErrors: 5, interval: '1s', baseEjectionTime: '0.3s', maxEjectionPercent: 50 } }),
    cluster('breaker', { connectionPool: { http: { http2MaxRequests: 3 } } }),
    cluster('main'),
    cluster('shadow'),
    cluster('grpc', {}, 'GRPC'),
    cluster('idle', { connectionPool: { http: { idleTimeout: '0.2s', maxRequestsPerConnection: 2 } } }),
    cluster('pool1', { connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } } }),
  ];
  const endpoints = [
    x.loadAssignment(cname('flaky'), [ep(apps.flaky.port)]),
    x.loadAssignment(cname('storm'), [ep(apps.storm.port)]),
    // A closed port first: round robin hands half the first tries to it.
    x.loadAssignment(cname('multi'), [ep(apps.m1.port, '127.0.0.1', deadPort), ep(apps.m1.port, '127.0.0.2')]),
    x.loadAssignment(cname('outlier'), [ep(apps.o1.port, '127.0.0.1'), ep(apps.o2.port, '127.0.0.2'), ep(apps.o3.port, '127.0.0.3')]),
    x.loadAssignment(cname('breaker'), [ep(apps.slow.port)]),
    x.loadAssignment(cname('main'), [ep(apps.main.port)]),
    x.loadAssignment(cname('shadow'), [ep(apps.shadow.port)]),
    x.loadAssignment(cname('grpc'), [ep(grpcPort)]),
    x.loadAssignment(cname('idle'), [ep(apps.idle.port)]),
    x.loadAssignment(cname('pool1'), [ep(apps.slow.port)]),
  ];
  const routes = x.roundTrip(ROUTE_TYPE, {
    name: 'outbound|default/a',
    virtual_hosts: [
      vhost('flaky', [
        { prefix: '/default-retry/', cluster: cname('flaky'), retries: { attempts: 2 } },
        { prefix: '/nonidem/', cluster: cname('flaky'), retries: { attempts: 2, retryOn: '5xx,non-idempotent' } },
        { prefix: '/pertry/', cluster: cname('flaky'), timeoutMs: 250, retries: { attempts: 5, perTryTimeout: '100ms', retryOn: '5xx' } },
        { prefix: '/timeout/', cluster: cname('flaky'), timeoutMs: 200 },
        { prefix: '/noretry/', cluster: cname('flaky') },
        { prefix: '/', cluster: cname('flaky'), retries: { attempts: 2, retryOn: '5xx' } },
      ]),
      vhost('storm', [{ cluster: cname('storm'), retries: { attempts: 3, retryOn: '5xx' } }]),
      vhost('multi', [{ cluster: cname('multi'), retries: { attempts: 2, retryOn: 'connect-failure' } }]),
      vhost('outlier', [{ cluster: cname('outlier') }]),
      vhost('breaker', [{ cluster: cname('breaker') }]),
      vhost('main', [{ cluster: cname('main'), mirror: { cluster: cname('shadow'), percent: 50 } }]),
      vhost('grpc', [{ cluster: cname('grpc'), retries: { attempts: 3, perTryTimeout: '150ms', retryOn: 'unavailable,reset' } }]),
      vhost('grpc-noretry', [{ cluster: cname('grpc') }], ['grpc-noretry']),
      vhost('idle', [{ cluster: cname('idle') }]),
      vhost('pool1', [{ cluster: cname('pool1') }]),
    ],
  });
  a = await startProxy({
    workloads: [{ namespace: 'default', name: 'a' }],
    staticConfig: { listeners: [x.outboundHttpListener('default/a', 0)], clusters, endpoints, routes: [routes], secrets: [x.rootCaSecret(ca.bundlePem)] },
    staticIdentity: idA,
    metricsPort: 0,
    adminPort: -1,
    drainTimeoutMs: 500,
    logLevel: 'error',
  });
  await a.ready;
  outPort = a.listenerPort('outbound|default/a')!;
});

after(async () => {
  await Promise.all([a?.close(), b?.close()]);
  for (const p of Object.values(apps)) {
    p.server.closeAllConnections();
    p.server.close();
  }
  grpcServer?.forceShutdown();
  ca?.cleanup();
});

const agent = new http.Agent({ keepAlive: false, maxSockets: 16 });
after(() => agent.destroy());

function request(host: string, path: string, opts: { method?: string; body?: Buffer | string } = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ port: outPort, host: '127.0.0.1', path, method: opts.method ?? 'GET', agent, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, ms: performance.now() - t0 }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const hitsOf = (p: App, re: RegExp) => p.log.filter((l) => re.test(l.url)).length;

async function metric(re: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${a.metricsPort()}/metrics`)).text();
  const m = re.exec(text);
  return m ? Number(m[1]) : NaN;
}

test('a GET failing once with 503 is retried and succeeds; without a retry policy the 503 passes through', async () => {
  const r = await request('flaky', '/x/fail-once/get1');
  assert.equal(r.status, 200, r.body);
  assert.equal(hitsOf(apps.flaky, /get1/), 2);
  const n = await request('flaky', '/noretry/fail-once/get2');
  assert.equal(n.status, 503);
  assert.equal(hitsOf(apps.flaky, /get2/), 1);
});

test('Istio default retryOn (503 among its retriable codes) retries a GET', async () => {
  const r = await request('flaky', '/default-retry/fail-once/dflt');
  assert.equal(r.status, 200);
  assert.equal(hitsOf(apps.flaky, /dflt/), 2);
});

test('a POST is not retried by default, and is with non-idempotent in retryOn', async () => {
  const p = await request('flaky', '/x/fail-once/post1', { method: 'POST', body: 'hello' });
  assert.equal(p.status, 503);
  assert.equal(hitsOf(apps.flaky, /post1/), 1);
  const q = await request('flaky', '/nonidem/fail-once/post2', { method: 'POST', body: 'hello' });
  assert.equal(q.status, 200, q.body);
  assert.equal(hitsOf(apps.flaky, /post2/), 2);
  // The retry carried the whole (buffered) body again.
  assert.deepEqual(apps.flaky.log.filter((l) => /post2/.test(l.url)).map((l) => l.bodyLen), [5, 5]);
});

test('a 100 KiB body is streamed and not retried; a small PUT body is replayed', async () => {
  const big = Buffer.alloc(100 * 1024, 'a');
  const r = await request('flaky', '/x/fail-once/big1', { method: 'PUT', body: big });
  assert.equal(r.status, 503);
  assert.equal(hitsOf(apps.flaky, /big1/), 1);
  assert.equal(apps.flaky.log.find((l) => /big1/.test(l.url))!.bodyLen, big.length);
  const s = await request('flaky', '/x/fail-once/small1', { method: 'PUT', body: Buffer.alloc(1000, 'b') });
  assert.equal(s.status, 200);
  assert.deepEqual(apps.flaky.log.filter((l) => /small1/.test(l.url)).map((l) => l.bodyLen), [1000, 1000]);
});

test('per-try 100 ms, 5 attempts, route timeout 250 ms: at most 3 tries, 504 at ~250 ms', async () => {
  const before = apps.flaky.hits;
  const r = await request('flaky', '/pertry/delay/2000');
  assert.equal(r.status, 504, r.body);
  assert.equal(r.headers['x-trellis-error'], 'upstream_timeout');
  // At least two whole 100 ms tries; at most ~250 ms (the upper bound leaves room for a loaded machine; five
  // 100 ms tries would need 500+). It may answer before 250 ms: when the back-off before the third try would
  // end past the deadline, no try is started and the answer comes at once.
  assert.ok(r.ms >= 200 && r.ms < 480, `answered after ${r.ms}ms`);
  // Tries that timed out reach the app only after their (destroyed) connection: count what arrived.
  const tries = apps.flaky.log.length - before;
  assert.ok(tries <= 3, `${tries} tries`);
});

test('a route timeout without retries answers 504 upstream_timeout on time', async () => {
  const r = await request('flaky', '/timeout/delay/2000');
  assert.equal(r.status, 504);
  assert.equal(r.headers['x-trellis-error'], 'upstream_timeout');
  assert.match(r.body, /route default\/flaky#3 timeout 200ms exceeded/);
  assert.ok(r.ms < 1000, `${r.ms}ms`);
});

test('connect failure on one endpoint is retried on another', async () => {
  const before = apps.m1.hits;
  const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => request('multi', `/cf/${i}`)));
  assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
  assert.equal(apps.m1.hits - before, 6);
});

test('retry storm: upstream attempts stay within the retry budget', async () => {
  apps.storm.status = 503;
  const t0 = performance.now();
  const N = 60;
  let next = 0;
  const statuses: number[] = [];
  await Promise.all(
    Array.from({ length: 6 }, async () => {
      while (next < N) {
        next++;
        statuses.push((await request('storm', `/s/${next}`)).status);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  assert.equal(statuses.length, N);
  assert.ok(statuses.every((s) => s === 503));
  // Budget (this cluster's metadata): 20% of requests + 10 per second, over a 1 s window. Seconds touched bound the floor.
  const bound = N * 1.2 + 10 * (Math.ceil(seconds) + 1);
  assert.ok(apps.storm.hits <= bound, `${apps.storm.hits} attempts for ${N} requests in ${seconds.toFixed(2)}s (bound ${bound})`);
  assert.ok(apps.storm.hits < N * 4, 'the budget refused some of the 3 retries each request wanted');
  assert.ok((await metric(/trellis_retry_budget_exhausted_total\{cluster="outbound\|80\|\|storm\.default\.svc\.cluster\.local"\} (\d+)/)) > 0);
});

test('circuit breaker: max_requests 3 lets exactly 3 of 5 concurrent slow requests through; 2 get a fast 503 overflow', async () => {
  apps.slow.delayMs = 400;
  const before = apps.slow.hits;
  const rs = await Promise.all(Array.from({ length: 5 }, (_, i) => request('breaker', `/b/${i}`)));
  const ok = rs.filter((r) => r.status === 200);
  const over = rs.filter((r) => r.status === 503);
  assert.equal(ok.length, 3);
  assert.equal(over.length, 2);
  for (const r of over) {
    assert.equal(r.headers['x-trellis-error'], 'overflow');
    assert.ok(r.ms < 200, `overflow after ${r.ms}ms`);
  }
  assert.equal(apps.slow.hits - before, 3);
  assert.equal(await metric(/trellis_circuit_breaker_overflow_total\{cluster="outbound\|80\|\|breaker\.default\.svc\.cluster\.local",kind="requests"\} (\d+)/), 2);
  assert.match(await (await fetch(`http://127.0.0.1:${a.metricsPort()}/metrics`)).text(), /trellis_requests_total\{[^}]*route="default\/breaker#0",response_code="503",grpc_status="",error_code="overflow"[^}]*\} 2/);
  // Slots come back: a later request passes.
  assert.equal((await request('breaker', '/b/after')).status, 200);
});

test('outlier detection: 5 consecutive 5xx eject an endpoint, it gets no traffic, and returns after base_ejection_time', async () => {
  apps.o1.status = 503;
  // Round robin over 3: every third request reaches o1; 15 requests give it 5 failures in a row.
  for (let i = 0; i < 15 && apps.o1.hits < 5; i++) await request('outlier', `/o/${i}`);
  assert.equal(apps.o1.hits, 5);
  apps.o1.status = 0;
  const o1Before = apps.o1.hits;
  for (let i = 0; i < 12; i++) assert.equal((await request('outlier', `/e/${i}`)).status, 200);
  assert.equal(apps.o1.hits, o1Before, 'an ejected endpoint receives no traffic');
  assert.equal(await metric(/trellis_outlier_ejected\{cluster="outbound\|80\|\|outlier\.default\.svc\.cluster\.local"\} (\d+)/), 1);
  assert.equal(a.resilience()[cname('outlier')].outlier!.currentlyEjected, 1);
  await new Promise((r) => setTimeout(r, 350));
  for (let i = 0; i < 6; i++) await request('outlier', `/back/${i}`);
  assert.ok(apps.o1.hits > o1Before, 'back in rotation after the ejection time');
  assert.equal(await metric(/trellis_outlier_ejections_total\{cluster="outbound\|80\|\|outlier\.default\.svc\.cluster\.local",reason="consecutive_5xx"\} (\d+)/), 1);
});

test('mirroring: about the percentage reaches the shadow with Host -shadow; the main response is unaffected', async () => {
  apps.shadow.delayMs = 1500;
  apps.shadow.status = 500;
  const N = 80;
  const rs: { status: number; ms: number; body: string }[] = [];
  for (let i = 0; i < N; i += 8) rs.push(...(await Promise.all(Array.from({ length: 8 }, (_, k) => request('main', `/m/${i + k}`, { method: 'POST', body: 'payload' })))));
  assert.ok(rs.every((r) => r.status === 200 && JSON.parse(r.body).app === 'main'));
  assert.ok(rs.every((r) => r.ms < 1000), 'a slow (1.5 s) failing shadow never delays the main request');
  await new Promise((r) => setTimeout(r, 100));
  const n = apps.shadow.log.length;
  assert.ok(n >= N * 0.25 && n <= N * 0.75, `${n} of ${N} mirrored at 50%`);
  assert.ok(apps.shadow.log.every((l) => l.host === 'main-shadow' && l.method === 'POST' && l.bodyLen === 7), JSON.stringify(apps.shadow.log[0]));
  assert.equal(apps.main.hits, N);
});

function grpcCall(authority: string, msg: string, deadlineMs: number): Promise<{ err: grpc.ServiceError | null; res?: Buffer; ms: number }> {
  const c = new EchoClient(`127.0.0.1:${outPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority });
  const t0 = performance.now();
  return new Promise((resolve) => {
    (c as unknown as { Echo: Function }).Echo(Buffer.from(msg), new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res?: Buffer) => {
      c.close();
      resolve({ err, res, ms: performance.now() - t0 });
    });
  });
}

test('gRPC: UNAVAILABLE is retried when unavailable is in retryOn, passed through when not', async () => {
  const r = await grpcCall('grpc', 'flaky-1', 3000);
  assert.equal(r.err, null, r.err?.details);
  assert.equal(r.res!.toString(), 'echo:flaky-1');
  assert.equal(grpcCalls.get('flaky-1'), 3);
  const n = await grpcCall('grpc-noretry', 'flaky-2', 3000);
  assert.equal(n.err?.code, grpc.status.UNAVAILABLE);
  assert.equal(grpcCalls.get('flaky-2'), 1);
});

test('gRPC: per-try timeout retries within the caller grpc-timeout, never past it', async () => {
  const r = await grpcCall('grpc', 'slow-1', 400);
  assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED);
  assert.ok(r.ms < 600, `${r.ms}ms`);
  await new Promise((res) => setTimeout(res, 100));
  const calls = grpcCalls.get('slow-1') ?? 0;
  // 150 ms tries in a 400 ms deadline: 3 at most (the third cut by the deadline).
  assert.ok(calls >= 2 && calls <= 3, `${calls} calls`);
});

test('max_requests_per_connection retires a connection after 2 requests; idle_timeout closes an idle one', async () => {
  const conns = () => a.resilience()[cname('idle')].breaker.active.connections;
  const idleAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = (p: string) =>
    new Promise<number>((resolve, reject) => {
      http.get({ port: outPort, host: '127.0.0.1', path: p, agent: idleAgent, headers: { host: 'idle' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      }).on('error', reject);
    });
  try {
    assert.equal(await get('/1'), 200);
    assert.equal(conns(), 1);
    assert.equal(await get('/2'), 200);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(conns(), 0, 'retired after its second request');
    assert.equal(await get('/3'), 200);
    assert.equal(conns(), 1);
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(conns(), 0, 'closed after 200 ms idle');
  } finally {
    idleAgent.destroy();
  }
});

test('max_connections 1 + max_pending 1: one request runs, one waits for the connection, one gets a fast overflow', async () => {
  apps.slow.delayMs = 300;
  const rs = await Promise.all(Array.from({ length: 3 }, (_, i) => request('pool1', `/p/${i}`)));
  const ok = rs.filter((r) => r.status === 200);
  const over = rs.filter((r) => r.headers['x-trellis-error'] === 'overflow');
  assert.equal(ok.length, 2, JSON.stringify(rs.map((r) => [r.status, r.body])));
  assert.equal(over.length, 1);
  assert.ok(over[0].ms < 200, `${over[0].ms}ms`);
  assert.match(over[0].body, /max_pending_requests \(1\)/);
  // The waiting one ran after the first on the same connection.
  assert.ok(Math.max(...ok.map((r) => r.ms)) >= 550);
});

test('the deadline passing while the body is still arriving answers 504 request_timeout', async () => {
  const r = await new Promise<{ status: number; code: string; body: string }>((resolve, reject) => {
    const req = http.request({ port: outPort, host: '127.0.0.1', path: '/pertry/slow-body', method: 'PUT', agent, headers: { host: 'flaky', 'content-length': 10 } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: String(res.headers['x-trellis-error']), body }));
    });
    req.on('error', reject);
    req.write('12345');
  });
  assert.equal(r.status, 504);
  assert.equal(r.code, 'request_timeout');
  assert.match(r.body, /route default\/flaky#2 timeout 250ms passed before the request body was received/);
});
