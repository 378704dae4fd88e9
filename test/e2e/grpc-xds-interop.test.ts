// An unmodified @grpc/grpc-js-xds client follows compiled xDS: reaches the servers, honours 80/20 splits
// (HTTPRoute and VirtualService + DestinationRule), and picks up config changes without restarting.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Resource } from '../../src/api/types.js';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.js';

const require = createRequire(import.meta.url);
const PROTO = fileURLToPath(new URL('../fixtures/echo.proto', import.meta.url));
const echoPkg = (grpc.loadPackageDefinition(protoLoader.loadSync(PROTO)) as any).trellis.test;

const SERVICE_PORT = 50051;
const servers: grpc.Server[] = [];
const serverPorts: Record<string, number> = {};
let cp: ControlPlane;
let stateDir: string;
let client: any;

function r(apiVersion: string, kind: string, name: string, spec: unknown, labels?: Record<string, string>): Resource {
  return { apiVersion, kind, metadata: { name, namespace: 'default', ...(labels ? { labels } : {}) }, spec } as Resource;
}

/** Services echo (all versions), echo-v1 and echo-v2, and one WorkloadEntry per running server. */
function baseResources(): Resource[] {
  const port = (selector: Record<string, string>) => ({ selector, ports: [{ name: 'grpc', port: SERVICE_PORT, protocol: 'TCP' }] });
  return [
    r('v1', 'Service', 'echo', port({ app: 'echo' })),
    r('v1', 'Service', 'echo-v1', port({ app: 'echo', version: 'v1' })),
    r('v1', 'Service', 'echo-v2', port({ app: 'echo', version: 'v2' })),
    ...['v1', 'v2'].map((v) =>
      r('networking.istio.io/v1', 'WorkloadEntry', `echo-${v}`, { address: '127.0.0.1', labels: { app: 'echo', version: v }, ports: { grpc: serverPorts[v] } }, { app: 'echo', version: v }),
    ),
  ];
}

function vsSplit(w1: number, w2: number): Resource[] {
  return [
    r('networking.istio.io/v1', 'DestinationRule', 'echo', {
      host: 'echo',
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    }),
    r('networking.istio.io/v1', 'VirtualService', 'echo', {
      hosts: ['echo'],
      http: [
        {
          route: [
            { destination: { host: 'echo', subset: 'v1' }, weight: w1 },
            { destination: { host: 'echo', subset: 'v2' }, weight: w2 },
          ],
        },
      ],
    }),
  ];
}

function httpRouteSplit(w1: number, w2: number): Resource[] {
  return [
    r('gateway.networking.k8s.io/v1', 'HTTPRoute', 'echo-split', {
      parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: SERVICE_PORT }],
      rules: [
        {
          backendRefs: [
            { name: 'echo-v1', port: SERVICE_PORT, weight: w1 },
            { name: 'echo-v2', port: SERVICE_PORT, weight: w2 },
          ],
        },
      ],
    }),
  ];
}

async function apply(policy: Resource[], remove: string[] = []): Promise<void> {
  if (remove.length > 0) await cp.store.delete(remove);
  await cp.store.apply(policy);
}

/** NACKs reported by the control plane for any proxy (a healthy run has none). */
function nacks(): string[] {
  return cp.ads
    .proxies()
    .flatMap((p) => Object.entries(p.types).filter(([, t]) => t.state === 'NACKED').map(([k, t]) => `${p.id} ${k}: ${t.nackReason}`));
}

function call(): Promise<string> {
  return new Promise((resolve, reject) => {
    client.Hello({ name: 'x' }, { deadline: Date.now() + 2000 }, (err: Error | null, reply: { server: string }) =>
      err ? reject(err) : resolve(reply.server),
    );
  });
}

/** Runs `n` calls with bounded concurrency and counts which server answered. */
async function tally(n: number, concurrency = 64): Promise<Record<string, number>> {
  const counts: Record<string, number> = { v1: 0, v2: 0 };
  let started = 0;
  const worker = async () => {
    while (started < n) {
      started++;
      counts[await call()]++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return counts;
}

/** Polls small batches until `ok` holds for one (config pushes are asynchronous). */
async function until(ok: (c: Record<string, number>) => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 8000;
  let last: Record<string, number> = {};
  while (Date.now() < deadline) {
    last = await tally(100, 20);
    if (ok(last)) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.fail(`${what} did not take effect; last batch ${JSON.stringify(last)}`);
}

function assertShare(c: Record<string, number>, v1Pct: number): void {
  const total = c.v1 + c.v2;
  const share = (100 * c.v1) / total;
  assert.ok(Math.abs(share - v1Pct) <= 3, `v1 share ${share.toFixed(2)}% of ${total} calls, want ${v1Pct}% ±3`);
}

before(async () => {
  for (const v of ['v1', 'v2']) {
    const s = new grpc.Server();
    s.addService(echoPkg.Echo.service, { Hello: (_c: unknown, cb: grpc.sendUnaryData<{ server: string }>) => cb(null, { server: v }) });
    serverPorts[v] = await new Promise<number>((res, rej) =>
      s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
    );
    servers.push(s);
  }
  stateDir = mkdtempSync(join(tmpdir(), 'trellis-interop-'));
  cp = await startControlPlane({ stateDir, store: 'memory', grpcListen: '127.0.0.1:0', httpListen: '127.0.0.1:0', debounceMs: 10, maxDelayMs: 100 });
  await cp.store.apply(baseResources());
  // The bootstrap must be in place before the xds resolver registers.
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${cp.grpcPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: 'proxyless-test', locality: {} },
  });
  require('@grpc/grpc-js-xds').register();
  client = new echoPkg.Echo('xds:///echo', grpc.credentials.createInsecure());
});

after(async () => {
  client?.close();
  for (const s of servers) s.forceShutdown();
  await cp?.close();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

test('calls through xds:/// reach both servers with no routing config', { timeout: 30_000 }, async () => {
  // The first call waits for the whole LDS -> RDS -> CDS -> EDS chain; allow for a busy machine.
  await new Promise<void>((resolve, reject) =>
    client.Hello({ name: 'warm-up' }, { deadline: Date.now() + 15_000, waitForReady: true }, (err: Error | null) => (err ? reject(err) : resolve())),
  );
  await until((c) => c.v1 > 0 && c.v2 > 0, 'default route');
  assert.deepEqual(nacks(), []);
});

test('VirtualService + DestinationRule subsets split 80/20', { timeout: 30_000 }, async () => {
  await apply(vsSplit(100, 0));
  await until((c) => c.v2 === 0, 'VirtualService 100/0');
  await apply(vsSplit(80, 20));
  await until((c) => c.v2 > 0, 'VirtualService 80/20');
  assertShare(await tally(5000), 80);
  assert.deepEqual(nacks(), []);
});

test('HTTPRoute backendRefs split 80/20, then a change to 0/100 applies live', { timeout: 30_000 }, async () => {
  // Make before break: the HTTPRoute takes over from the VirtualService first, then the subsets can go.
  await apply(httpRouteSplit(0, 100));
  await until((c) => c.v1 === 0, 'HTTPRoute 0/100 over the VirtualService');
  await cp.store.delete(['VirtualService/default/echo', 'DestinationRule/default/echo']);
  await apply(httpRouteSplit(80, 20));
  await until((c) => c.v1 > 0, 'HTTPRoute 80/20');
  assertShare(await tally(5000), 80);
  await apply(httpRouteSplit(0, 100));
  await until((c) => c.v1 === 0, 'HTTPRoute back to 0/100');
  assert.deepEqual(nacks(), []);
});
