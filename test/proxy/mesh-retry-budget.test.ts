// A Mesh-configured retry budget end to end: caller a's config compiled from Mesh + VirtualService by the real compiler;
// in a 503 storm the upstream sees first tries plus at most the Mesh budget's retries, far fewer than the route asks for.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { compileForProxy } from '../../src/control/compile/index.js';
import { meshSettings } from '../../src/control/mesh.js';
import type { Resource } from '../../src/api/types.js';
import type { CompileInput, ServiceInfo, WorkloadInstance } from '../../src/control/model.js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../../src/xds/protos.js';
import { createTestCa, type TestCa } from './helpers/ca.js';
import { listen } from './helpers/mesh.js';
import * as x from './helpers/xds.js';

let ca: TestCa;
let a: Proxy;
let b: Proxy;
let app: http.Server;
let hits = 0;
let outPort: number;

const res = (apiVersion: string, kind: string, name: string, spec: unknown, namespace = 'default'): Resource => ({ apiVersion, kind, metadata: { name, namespace }, spec }) as Resource;

function service(name: string, targetPort: number): ServiceInfo {
  const fqdn = x.fqdn(name);
  return { name, namespace: 'default', fqdn, aliases: [name, `${name}.default`, `${name}.default.svc`, fqdn], ports: [{ name: 'http', port: 80, targetPort, protocol: 'HTTP' }], source: 'Service' };
}

function workload(name: string, appPort: number, inboundPort: number): WorkloadInstance {
  return {
    name,
    namespace: 'default',
    labels: { app: name },
    serviceAccount: name,
    identity: `spiffe://cluster.local/ns/default/sa/${name}`,
    services: [x.fqdn(name)],
    address: '127.0.0.1',
    ports: [{ name: 'http', port: appPort, protocol: 'HTTP' }],
    proxy: { id: `proxy-${name}`, inboundPort, outboundPort: 0 },
    health: 'HEALTHY',
    source: 'proxy',
  };
}

// The budget: no share of traffic, a floor of 1 retry per second over a 10 s window = 10 retries per window.
const RESOURCES = [
  res('trellis.dev/v1alpha1', 'Mesh', 'default', { defaults: { retryBudget: { retryRatio: 0, minRetriesPerSecond: 1, ttl: '10s' } } }, 'trellis-system'),
  res('networking.istio.io/v1', 'VirtualService', 'b', { hosts: ['b'], http: [{ route: [{ destination: { host: 'b' } }], retries: { attempts: 3, retryOn: '5xx' } }] }),
];

before(async () => {
  ca = await createTestCa();
  app = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits++;
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('storm');
    });
  });
  const appPort = await listen(app);
  const idB = await ca.issue('default', 'b');
  const idA = await ca.issue('default', 'a');
  b = await startProxy({
    workloads: [{ namespace: 'default', name: 'b' }],
    staticConfig: { listeners: [x.inboundListener('default/b', 0, [{ appPort }])], clusters: [x.inboundCluster('default/b', appPort)] },
    staticIdentity: idB,
    metricsPort: 0,
    adminPort: -1,
    drainTimeoutMs: 500,
    logLevel: 'error',
  });
  await b.ready;
  const inPort = b.listenerPort('inbound|default/b')!;
  // a's whole config as the control plane compiles it for this registry and these resources.
  const input: CompileInput = {
    resources: RESOURCES,
    registry: { services: [service('a', 1), service('b', appPort)], workloads: [workload('a', 1, 0), workload('b', appPort, inPort)] },
    mesh: meshSettings(RESOURCES),
    trustBundlePem: ca.bundlePem,
  };
  const snap = compileForProxy(input, { id: 'proxy-a', kind: 'trellis', workloads: [input.registry.workloads[0]] });
  const of = (type: string) => Object.values(snap[type]).map((r) => x.roundTrip(type, r as Record<string, unknown>));
  a = await startProxy({
    workloads: [{ namespace: 'default', name: 'a' }],
    staticConfig: { listeners: of(LISTENER_TYPE), routes: of(ROUTE_TYPE), clusters: of(CLUSTER_TYPE), endpoints: of(ENDPOINT_TYPE), secrets: of(SECRET_TYPE) },
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
  app?.closeAllConnections();
  app?.close();
  ca?.cleanup();
});

function get(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ port: outPort, host: '127.0.0.1', path, headers: { host: 'b' }, agent: false }, (r) => {
      r.resume();
      r.on('end', () => resolve(r.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

test('a 503 storm stays within the Mesh defaults.retryBudget (10 retries per 10 s window), not the 90 the route allows', async () => {
  const N = 30;
  const t0 = Date.now();
  for (let i = 0; i < N; i++) assert.equal(await get(`/storm/${i}`), 503);
  const elapsedMs = Date.now() - t0;
  const retries = hits - N;
  // The window slides in whole seconds: a slow run may span more than one window, each allowing 10 more.
  const bound = 10 * (1 + Math.ceil(elapsedMs / 10_000));
  assert.ok(retries >= 10, `the budget's floor allows 10 retries at once; upstream saw ${retries}`);
  assert.ok(retries <= bound, `upstream saw ${retries} retries for ${N} requests in ${elapsedMs} ms; the Mesh budget allows ${bound}`);
  // The default budget (20% + 10/s over 10 s = 106 here) would have let all 90 through: the compiled Mesh budget is what runs.
  const cluster = Object.entries(a.resilience()).find(([n]) => n.startsWith('outbound|80||b.'))?.[1];
  assert.ok(cluster, 'a has resilience state for cluster b');
  assert.equal(cluster.budget.limit, 10, 'limit = 0% x requests + 1/s x 10 s');
  assert.ok(cluster.budget.exhausted >= N - 4, `retries refused by the budget: ${cluster.budget.exhausted}`);
  const text = await (await fetch(`http://127.0.0.1:${a.metricsPort()}/metrics`)).text();
  assert.match(text, /trellis_retry_budget_exhausted_total\{[^}]*outbound\|80\|\|b\.default\.svc\.cluster\.local[^}]*\} [1-9]/);
});
