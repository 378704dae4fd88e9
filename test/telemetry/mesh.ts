// Test mesh in one process: control plane, one sidecar proxy per service, and apps that call the next service,
// forwarding trace headers (as the docs ask apps to).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Resource } from '../../src/api/types.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.js';
import { startProxy, type Proxy, type ProxyOptions } from '../../src/proxy/proxy.js';
import { freePorts } from '../../src/local/ports.js';

export const TRACE_HEADERS = ['traceparent', 'tracestate', 'x-request-id', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'b3'];

export interface TestService {
  name: string;
  /** Service this app calls (through its proxy) before answering. */
  next?: string;
  /** Status the app answers when it has no `next` (default 200; paths under /fail get 500). */
  status?: number;
  /** Milliseconds the app waits before answering (for timeouts). */
  delayMs?: number;
}

export interface TestMesh {
  cp: ControlPlane;
  control: string;
  proxies: Map<string, Proxy>;
  outbound(name: string): number;
  close(): Promise<void>;
}

export function workloadResource(name: string, appPort: number, inboundPort: number, outboundPort: number): Resource {
  return {
    apiVersion: 'trellis.dev/v1alpha1',
    kind: 'Workload',
    metadata: { name, namespace: 'default', labels: { app: name } },
    spec: { service: name, ports: [{ name: 'http', port: appPort, protocol: 'HTTP' }], proxy: { inboundPort, outboundPort } },
  } as Resource;
}

function app(svc: TestService, outbound: () => number): http.Server {
  return http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (!svc.next) {
        const answer = () => {
          if (res.destroyed) return;
          res.writeHead(req.url?.startsWith('/fail') ? 500 : (svc.status ?? 200), { 'content-type': 'application/json' });
          res.end(JSON.stringify({ name: svc.name, path: req.url }));
        };
        if (svc.delayMs) setTimeout(answer, svc.delayMs);
        else answer();
        return;
      }
      const headers: Record<string, string> = { host: svc.next };
      for (const h of TRACE_HEADERS) if (typeof req.headers[h] === 'string') headers[h] = req.headers[h] as string;
      const up = http.get({ host: '127.0.0.1', port: outbound(), path: req.url, headers, agent: false }, (upRes) => {
        let body = '';
        upRes.on('data', (c) => (body += c));
        upRes.on('end', () => {
          res.writeHead(upRes.statusCode ?? 502, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ name: svc.name, next: body }));
        });
      });
      up.on('error', (err) => {
        res.writeHead(599);
        res.end(err.message);
      });
    });
  });
}

export async function startTestMesh(
  services: TestService[],
  extra: Resource[] = [],
  proxyOpts: Partial<ProxyOptions> | ((service: string) => Partial<ProxyOptions>) = {},
): Promise<TestMesh> {
  const stateDir = mkdtempSync(join(tmpdir(), 'trellis-obs-'));
  const servers: http.Server[] = [];
  const ports = new Map<string, { app: number; inbound: number; outbound: number }>();
  for (const s of services) {
    const srv = app(s, () => ports.get(s.name)!.outbound);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    servers.push(srv);
    ports.set(s.name, { app: (srv.address() as AddressInfo).port, inbound: 0, outbound: 0 });
  }
  const taken = new Set([...ports.values()].map((p) => p.app));
  const free = await freePorts(services.length * 2 + 2, taken);
  for (const s of services) {
    const p = ports.get(s.name)!;
    p.inbound = free.pop()!;
    p.outbound = free.pop()!;
  }
  const [grpcPort, httpPort] = free;
  const store = new MemoryStore();
  await store.apply([...services.map((s) => workloadResource(s.name, ports.get(s.name)!.app, ports.get(s.name)!.inbound, ports.get(s.name)!.outbound)), ...extra]);
  const cp = await startControlPlane({ stateDir, store, grpcListen: `127.0.0.1:${grpcPort}`, httpListen: `127.0.0.1:${httpPort}`, debounceMs: 20 });
  const proxies = new Map<string, Proxy>();
  try {
    for (const s of services) {
      const p = ports.get(s.name)!;
      proxies.set(
        s.name,
        await startProxy({
          controlAddress: cp.grpcAddress,
          token: await cp.tokens.create({ namespace: 'default', serviceAccount: s.name }),
          workloads: [{ namespace: 'default', name: s.name, service: s.name, serviceAccount: s.name, ports: [{ name: 'http', port: p.app, protocol: 'HTTP' }], inboundPort: p.inbound, outboundPort: p.outbound }],
          metricsPort: 0,
          adminPort: 0,
          inboundL7: 'always',
          logLevel: 'error',
          ...(typeof proxyOpts === 'function' ? proxyOpts(s.name) : proxyOpts),
        }),
      );
    }
    await Promise.race([
      Promise.all([...proxies.values()].map((p) => p.ready)),
      new Promise((_, j) => setTimeout(() => j(new Error(`proxies not ready: ${[...proxies.values()].map((p) => p.readiness().reason).join('; ')}`)), 15_000)),
    ]);
  } catch (err) {
    await Promise.all([...proxies.values()].map((p) => p.close()));
    await cp.close();
    for (const s of servers) s.close();
    throw err;
  }
  return {
    cp,
    control: `127.0.0.1:${cp.httpPort}`,
    proxies,
    outbound: (name) => ports.get(name)!.outbound,
    async close() {
      await Promise.all([...proxies.values()].map((p) => p.close()));
      await cp.close();
      for (const s of servers) s.closeAllConnections();
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** GET through a proxy's outbound listener with Host set to the service. */
export function call(port: number, host: string, path = '/', headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host, ...headers }, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

/** Runs the CLI from source (no build needed); resolves with exit code and output. */
export function cli(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts the CLI and hands back the child (for streaming verbs such as tap). */
export function cliStream(args: string[]) {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}
