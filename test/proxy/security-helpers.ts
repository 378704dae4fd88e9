// Test helpers for inbound L7 security: push compiler-built http_filters into proxy B's inbound listener; a third caller proxy; keep-alive requests.
import * as http from 'node:http';
import { packAny, unpackAny, HCM_TYPE, LISTENER_TYPE, ROUTER_TYPE, type AnyMessage } from '../../src/xds/protos.js';
import { emptyRaw } from '../../src/proxy/state.js';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import type { MeshSettings, WorkloadInstance } from '../../src/control/model.js';
import type { Resource } from '../../src/api/types.js';
import type { Mesh } from './helpers/mesh.js';
import * as x from './helpers/xds.js';

export const MESH_SETTINGS: MeshSettings = { trustDomain: 'cluster.local', rootNamespaces: ['trellis-system', 'istio-system'], certificateTtlSeconds: 86400 };

/** Workload b as the control plane's registry would describe it (the compilers select policies against it). */
export function workloadB(appPort: number): WorkloadInstance {
  return {
    name: 'b',
    namespace: 'default',
    labels: { app: 'b' },
    serviceAccount: 'b',
    identity: 'spiffe://cluster.local/ns/default/sa/b',
    services: ['b.default.svc.cluster.local'],
    address: '127.0.0.1',
    ports: [{ port: appPort, protocol: 'HTTP' }],
    health: 'HEALTHY',
    source: 'Workload',
  };
}

export function resource<S>(kind: string, name: string, spec: S, apiVersion = 'security.istio.io/v1'): Resource<S> {
  return { apiVersion, kind, metadata: { name, namespace: 'default' }, spec } as Resource<S>;
}

export interface FilterEntry {
  name: string;
  typed_config: AnyMessage;
  is_optional?: boolean;
}

/**
 * Replaces the http_filters of every HTTP chain of B's inbound listener with `filters` + router, as a new xDS push
 * would (fresh objects, packed and unpacked). Returns the store's error, if it refused the update.
 */
export function pushInboundFilters(mesh: Mesh, filters: FilterEntry[]): string | undefined {
  const cur = mesh.b.store.current.raw;
  const name = 'inbound|default/b';
  const listener = structuredClone(cur.listeners.get(name)!) as Record<string, any>;
  for (const fc of listener.filter_chains) {
    for (const f of fc.filters) {
      if (f.typed_config.type_url !== HCM_TYPE) continue;
      const hcm = unpackAny<Record<string, any>>(f.typed_config);
      hcm.http_filters = [...filters, { name: 'envoy.filters.http.router', typed_config: packAny(ROUTER_TYPE, {}) }];
      f.typed_config = packAny(HCM_TYPE, hcm);
    }
  }
  const raw = emptyRaw();
  for (const k of Object.keys(raw) as (keyof typeof raw)[]) raw[k] = new Map(cur[k]);
  raw.listeners.set(name, unpackAny(packAny(LISTENER_TYPE, listener)));
  return mesh.b.store.update(raw, 'listeners');
}

/** Another caller proxy with A's config but its own identity (default/<sa>). */
export async function startCaller(mesh: Mesh, sa: string): Promise<{ proxy: Proxy; port: number }> {
  const id = await mesh.ca.issue('default', sa);
  const proxy = await startProxy({
    workloads: [{ namespace: 'default', name: sa }],
    staticConfig: {
      ...mesh.configA,
      listeners: [x.outboundHttpListener(`default/${sa}`, 0)],
      routes: mesh.configA.routes!.map((r) => ({ ...r, name: `outbound|default/${sa}` })),
    },
    staticIdentity: id,
    metricsPort: 0,
    adminPort: 0,
    drainTimeoutMs: 500,
    logLevel: 'error',
  });
  await proxy.ready;
  return { proxy, port: proxy.listenerPort(`outbound|default/${sa}`)! };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

/** One request over a keep-alive agent (so pooled connections are exercised), bounded in time. */
export function request(port: number, host: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers: { host, ...headers }, agent, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`request ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export function closeAgent(): void {
  agent.destroy();
}

/** The app echo's parsed JSON (url and headers it received). */
export function echoed(r: Reply): { url: string; headers: Record<string, string> } {
  return JSON.parse(r.body);
}

export async function metricsText(p: Proxy): Promise<string> {
  return (await fetch(`http://127.0.0.1:${p.metricsPort()}/metrics`)).text();
}
