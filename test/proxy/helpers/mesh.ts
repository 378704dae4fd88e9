// A two-proxy mesh on 127.0.0.1 for tests: apps (HTTP+WebSocket, gRPC, TCP echo) behind proxy B, a caller proxy A with static config.
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { WebSocketServer } from 'ws';
import { startProxy, type Proxy, type StaticConfig } from '../../../src/proxy/proxy.js';
import { createTestCa, type TestCa } from './ca.js';
import * as x from './xds.js';
import { packAny, FAULT_TYPE } from '../../../src/xds/protos.js';

export const echoService: grpc.ServiceDefinition = {
  Echo: {
    path: '/test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
};
export const EchoClient = grpc.makeGenericClientConstructor(echoService, 'Echo');

export function listen(server: net.Server): Promise<number> {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
}

export interface Mesh {
  ca: TestCa;
  a: Proxy;
  b: Proxy;
  outPort: number;
  tcpOutPort: number;
  inPort: number;
  httpApp: http.Server;
  ports: { http: number; grpc: number; tcp: number; dead: number };
  /** Requests the HTTP app saw (for checking what the proxy forwarded). */
  seen: http.IncomingHttpHeaders[];
  configA: StaticConfig;
  close(): Promise<void>;
}

export async function startMesh(opts: { mtls?: 'STRICT' | 'PERMISSIVE' | 'DISABLE'; drainTimeoutMs?: number; inboundL7?: 'auto' | 'always' } = {}): Promise<Mesh> {
  const ca = await createTestCa();
  const seen: http.IncomingHttpHeaders[] = [];
  const httpApp = http.createServer((req, res) => {
    seen.push(req.headers);
    if (req.url?.startsWith('/reset')) return void req.socket.destroy();
    const u = new URL(req.url ?? '/', 'http://x');
    const delay = Number(u.searchParams.get('delay') ?? 0);
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      setTimeout(() => {
        if (res.destroyed) return;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body, httpVersion: req.httpVersion }));
      }, delay);
    });
  });
  const wss = new WebSocketServer({ server: httpApp, path: '/ws' });
  wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo:${m}`)));
  const httpPort = await listen(httpApp);

  const grpcServer = new grpc.Server();
  grpcServer.addService(echoService, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const msg = call.request.toString();
      if (msg === 'fail') {
        const md = new grpc.Metadata();
        md.set('x-detail', 'not-here');
        return cb({ code: grpc.status.NOT_FOUND, details: 'no such thing', metadata: md });
      }
      const wait = msg.startsWith('slow') ? 1500 : 0;
      setTimeout(() => cb(null, Buffer.from(`echo:${msg}`)), wait);
    },
  });
  const grpcPort = await new Promise<number>((r, j) => grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? j(e) : r(p))));

  const tcpApp = net.createServer((s) => s.pipe(s));
  const tcpPort = await listen(tcpApp);
  const deadSrv = net.createServer();
  const deadPort = await listen(deadSrv);
  await new Promise<void>((r) => deadSrv.close(() => r()));

  const idB = await ca.issue('default', 'b');
  const idA = await ca.issue('default', 'a');
  const mtls = opts.mtls ?? 'STRICT';
  const b = await startProxy({
    workloads: [{ namespace: 'default', name: 'b' }],
    staticConfig: {
      listeners: [
        x.inboundListener('default/b', 0, [
          { appPort: httpPort, protocol: 'HTTP', mtls },
          { appPort: grpcPort, protocol: 'GRPC', mtls },
          { appPort: tcpPort, protocol: 'TCP', mtls },
          { appPort: deadPort, protocol: 'HTTP', mtls },
        ]),
      ],
      clusters: [x.inboundCluster('default/b', httpPort), x.inboundCluster('default/b', grpcPort), x.inboundCluster('default/b', tcpPort)],
    },
    staticIdentity: idB,
    inboundL7: opts.inboundL7,
    metricsPort: 0,
    adminPort: 0,
    drainTimeoutMs: opts.drainTimeoutMs ?? 2000,
    logLevel: (process.env.TRELLIS_TEST_LOG as 'debug') ?? 'error',
  });
  await b.ready;
  const inPort = b.listenerPort('inbound|default/b')!;

  const ep = (targetPort: number, extra: Partial<x.EndpointSpec> = {}): x.EndpointSpec => ({
    port: inPort,
    workload: 'default/b',
    identity: idB.spiffeId,
    targetPort,
    ...extra,
  });
  const cHttp = x.outboundCluster('b', 80);
  const cGrpc = x.outboundCluster('b-grpc', 9090, { protocol: 'GRPC' });
  const cTcp = x.outboundCluster('b-tcp', 7000, { protocol: 'TCP' });
  const cDead = x.outboundCluster('dead', 80, { connectTimeoutMs: 500 });
  const cEmpty = x.outboundCluster('empty', 80);
  const cImpostor = x.outboundCluster('impostor', 80);
  const cPlain = x.outboundCluster('plain', 80);
  const cDeadApp = x.outboundCluster('deadapp', 80);
  const configA: StaticConfig = {
    listeners: [x.outboundHttpListener('default/a', 0), x.outboundTcpListener('default/a', 0, cTcp.name)],
    clusters: [cHttp, cGrpc, cTcp, cDead, cEmpty, cImpostor, cPlain, cDeadApp],
    endpoints: [
      x.loadAssignment(cHttp.name, [ep(httpPort)]),
      x.loadAssignment(cGrpc.name, [ep(grpcPort)]),
      x.loadAssignment(cTcp.name, [ep(tcpPort)]),
      x.loadAssignment(cDead.name, [ep(httpPort, { port: deadPort })]),
      x.loadAssignment(cEmpty.name, []),
      // Right port, wrong expected identity: secure naming must refuse it.
      x.loadAssignment(cImpostor.name, [ep(httpPort, { identity: 'spiffe://cluster.local/ns/default/sa/someone-else' })]),
      // A workload without a proxy: plaintext straight to the app.
      x.loadAssignment(cPlain.name, [ep(httpPort, { port: httpPort, tls: 'none' })]),
      // The peer proxy is up but its app is not listening.
      x.loadAssignment(cDeadApp.name, [ep(deadPort)]),
    ],
    routes: [
      x.routeConfiguration('outbound|default/a', [
        {
          name: 'b.default.svc.cluster.local:80',
          domains: x.domainsFor('b', 80),
          routes: [
            { name: 'default/b-slow#0', prefix: '/slow', cluster: cHttp.name, timeoutMs: 300 },
            { name: 'default/b-rw#1', prefix: '/rewrite/', cluster: cHttp.name, prefixRewrite: '/rewritten/' },
            { name: 'default/b#2', prefix: '/', cluster: cHttp.name },
          ],
        },
        { name: 'b-grpc.default.svc.cluster.local:9090', domains: x.domainsFor('b-grpc', 9090), routes: [{ name: 'default/b-grpc#0', cluster: cGrpc.name }] },
        { name: 'dead.default.svc.cluster.local:80', domains: x.domainsFor('dead', 80), routes: [{ name: 'default/dead#0', cluster: cDead.name }] },
        { name: 'empty.default.svc.cluster.local:80', domains: x.domainsFor('empty', 80), routes: [{ name: 'default/empty#0', cluster: cEmpty.name }] },
        { name: 'impostor.default.svc.cluster.local:80', domains: x.domainsFor('impostor', 80), routes: [{ name: 'default/impostor#0', cluster: cImpostor.name }] },
        { name: 'plain.default.svc.cluster.local:80', domains: x.domainsFor('plain', 80), routes: [{ name: 'default/plain#0', cluster: cPlain.name }] },
        { name: 'deadapp.default.svc.cluster.local:80', domains: x.domainsFor('deadapp', 80), routes: [{ name: 'default/deadapp#0', cluster: cDeadApp.name }] },
        { name: 'ghost:80', domains: ['ghost'], routes: [{ name: 'default/ghost#0', cluster: 'outbound|80||ghost.default.svc.cluster.local' }] },
        {
          name: 'faulty:80',
          domains: ['faulty'],
          routes: [
            {
              name: 'default/faulty#0',
              cluster: cHttp.name,
              fault: { 'envoy.filters.http.fault': packAny(FAULT_TYPE, { abort: { http_status: 503, percentage: { numerator: 100, denominator: 'HUNDRED' } } }) },
            },
          ],
        },
        { name: 'static:80', domains: ['static'], routes: [{ name: 'default/static#0', direct: { status: 200, body: 'hello from the route' } }] },
      ]),
    ],
    secrets: [x.rootCaSecret(ca.bundlePem)],
  };
  const a = await startProxy({
    workloads: [{ namespace: 'default', name: 'a' }],
    staticConfig: configA,
    staticIdentity: idA,
    metricsPort: 0,
    adminPort: 0,
    drainTimeoutMs: opts.drainTimeoutMs ?? 2000,
    logLevel: (process.env.TRELLIS_TEST_LOG as 'debug') ?? 'error',
  });
  await a.ready;
  const outPort = a.listenerPort('outbound|default/a')!;
  const tcpOutPort = a.listenerPort(`outbound_tcp|0|default/a`)!;
  return {
    ca,
    a,
    b,
    outPort,
    tcpOutPort,
    inPort,
    httpApp,
    ports: { http: httpPort, grpc: grpcPort, tcp: tcpPort, dead: deadPort },
    seen,
    configA,
    async close() {
      await Promise.all([a.close(), b.close()]);
      for (const c of wss.clients) c.terminate();
      wss.close();
      httpApp.closeAllConnections();
      await new Promise<void>((r) => httpApp.close(() => r()));
      grpcServer.forceShutdown();
      await new Promise<void>((r) => tcpApp.close(() => r()));
      ca.cleanup();
    },
  };
}
