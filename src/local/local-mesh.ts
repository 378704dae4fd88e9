// `trellis up`: a control plane in this process, proxies and apps as supervised children, all on loopback.
import { dirname, resolve as resolvePath, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadFiles } from '../api/load.js';
import { analyzeResources } from '../api/analyze.js';
import { formatDiagnostic, type Diagnostic } from '../api/diagnostics.js';
import type { Resource, WorkloadSpec } from '../api/types.js';
import { startControlPlane, type ControlPlane } from '../control/control-plane.js';
import { MemoryStore } from '../store/memory-store.js';
import { StoreRejectedError } from '../store/store.js';
import { freePorts, isListening } from './ports.js';
import { Supervised, prefixLogger } from './supervisor.js';

export type MeshMode = 'node' | 'sidecar';

export interface LocalMeshOptions {
  files?: string[];
  /** Resources given directly (the demo), in addition to files. */
  resources?: Resource[];
  mode: MeshMode;
  stateDir: string;
  grpcPort?: number;
  httpPort?: number;
  /** Print prefixed child logs (default true). */
  showLogs?: boolean;
  readyTimeoutMs?: number;
  accessLog?: boolean;
  /** Called for every line a child prints (after the prefix logger, if any). */
  onLog?: (name: string, line: string) => void;
}

export interface LocalWorkload {
  namespace: string;
  name: string;
  identity: string;
  appPort?: number;
  outboundPort: number;
  inboundPort: number;
  adminPort: number;
  metricsPort: number;
  proxyName: string;
  app?: Supervised;
}

export interface LocalMesh {
  control: ControlPlane;
  workloads: LocalWorkload[];
  proxies: Supervised[];
  apps: Supervised[];
  stop(): Promise<void>;
}

export class LocalMeshError extends Error {}

const BIN = fileURLToPath(new URL('../../bin/trellis.js', import.meta.url));

/**
 * The proxies' node flags, as bin/trellis.js gives an installed `trellis proxy`: small-heap V8 defaults first in
 * NODE_OPTIONS (so the user's own NODE_OPTIONS still win), TRELLIS_PROXY_NODE_FLAGS replacing them (empty: none).
 */
export function proxyNodeEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const flags = env.TRELLIS_PROXY_NODE_FLAGS ?? '--max-semi-space-size=2';
  const options = [flags, env.NODE_OPTIONS ?? ''].filter((s) => s.trim() !== '').join(' ');
  return options ? { NODE_OPTIONS: options } : {};
}

/** Loads and checks config; any error stops `up` before anything starts. */
async function loadConfig(opts: LocalMeshOptions): Promise<Resource[]> {
  const resources: Resource[] = [...(opts.resources ?? [])];
  const diags: Diagnostic[] = [];
  if (opts.files && opts.files.length > 0) {
    const loaded = await loadFiles(opts.files);
    resources.push(...loaded.resources);
    diags.push(...loaded.diagnostics);
  }
  if (!diags.some((d) => d.severity === 'error')) diags.push(...analyzeResources(resources));
  for (const d of diags) (d.severity === 'error' ? console.error : console.warn)(formatDiagnostic(d));
  const errors = diags.filter((d) => d.severity === 'error').length;
  if (errors > 0) throw new LocalMeshError(`${errors} error(s) in the configuration; nothing was started`);
  return resources;
}

function workloadDir(r: Resource): string {
  const spec = r.spec as WorkloadSpec;
  const base = r.source?.file ? dirname(resolvePath(r.source.file)) : process.cwd();
  if (spec.cwd) return isAbsolute(spec.cwd) ? spec.cwd : resolvePath(base, spec.cwd);
  return base;
}

async function waitReady(port: number, timeoutMs: number, proxy: Supervised): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(1000) });
      await res.text();
      if (res.status === 200) return;
    } catch {
      /* not listening yet */
    }
    if (!proxy.state.running && proxy.state.lastExit) {
      /* it will be restarted by its supervisor; keep waiting */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new LocalMeshError(`proxy ${proxy.spec.name} was not ready within ${timeoutMs} ms (see its log lines above)`);
}

/** Waits until something accepts connections on the port; gives up quietly (the app's own log says why). */
async function waitListening(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await isListening(port)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

export async function startLocalMesh(opts: LocalMeshOptions): Promise<LocalMesh> {
  const resources = await loadConfig(opts);
  const workloadRes = resources.filter((r) => r.kind === 'Workload');

  // Fill in proxy ports the user left out, so that every listener is known before anything starts.
  const taken = new Set<number>();
  for (const r of workloadRes) {
    const s = r.spec as WorkloadSpec;
    for (const p of s.ports ?? []) taken.add(p.port);
    for (const v of Object.values(s.proxy ?? {})) if (typeof v === 'number') taken.add(v);
  }
  const sidecar = opts.mode === 'sidecar';
  const needed = workloadRes.length * 3 + (sidecar ? workloadRes.length : 1);
  const pool = await freePorts(needed, taken);
  const nodeMetricsPort = sidecar ? 0 : pool.pop()!;
  for (const r of workloadRes) {
    const s = r.spec as WorkloadSpec;
    const proxy = { ...(s.proxy ?? {}) };
    proxy.outboundPort ??= pool.pop()!;
    proxy.inboundPort ??= pool.pop()!;
    proxy.adminPort ??= pool.pop()!;
    // In node mode one proxy serves every workload's metrics, so the port is the proxy's, not the workload's.
    if (sidecar) proxy.metricsPort ??= pool.pop()!;
    s.proxy = proxy;
  }

  const log = opts.showLogs === false ? () => {} : prefixLogger(Math.max(8, ...workloadRes.map((r) => r.metadata.name.length + 6)));
  const onLine = (name: string, line: string) => {
    log(name, line);
    opts.onLog?.(name, line);
  };

  // Seed the store before the control plane starts so the CA is created for the Mesh's trust domain.
  const store = new MemoryStore();
  try {
    await store.apply(resources);
  } catch (err) {
    if (err instanceof StoreRejectedError) {
      for (const d of err.diagnostics) console.error(formatDiagnostic(d));
      throw new LocalMeshError(`the configuration was rejected: ${err.message}`);
    }
    throw err;
  }
  const control = await startControlPlane({
    stateDir: opts.stateDir,
    store,
    grpcListen: `127.0.0.1:${opts.grpcPort ?? 15010}`,
    httpListen: `127.0.0.1:${opts.httpPort ?? 15014}`,
    log: (line: string) => onLine('control', line),
  });
  const proxies: Supervised[] = [];
  const apps: Supervised[] = [];
  const stop = async () => {
    await Promise.all(apps.map((a) => a.stop()));
    await Promise.all(proxies.map((p) => p.stop()));
    await control.close();
  };

  try {
    const trustDomain = control.ca.trustDomain;
    const locals: LocalWorkload[] = [];
    const tokenArgs: string[][] = [];
    for (const r of workloadRes) {
      const s = r.spec as WorkloadSpec;
      const ns = r.metadata.namespace ?? 'default';
      const sa = s.serviceAccount ?? s.service ?? r.metadata.name;
      const token = await control.tokens.create({ namespace: ns, serviceAccount: sa });
      // Each workload carries its own join token: a node-mode proxy may host several service accounts.
      tokenArgs.push(['--workload', `${ns}/${r.metadata.name},token=${token}`]);
      locals.push({
        namespace: ns,
        name: r.metadata.name,
        identity: `spiffe://${trustDomain}/ns/${ns}/sa/${sa}`,
        appPort: s.ports?.[0]?.port,
        outboundPort: s.proxy!.outboundPort!,
        inboundPort: s.proxy!.inboundPort!,
        adminPort: s.proxy!.adminPort!,
        metricsPort: sidecar ? s.proxy!.metricsPort! : nodeMetricsPort,
        proxyName: sidecar ? `proxy/${r.metadata.name}` : 'proxy',
      });
    }

    const controlArgs = ['--control', `127.0.0.1:${control.grpcPort}`];
    // Access logs go to each proxy's stdout, which the supervisor prefixes with the proxy's name, unless the Mesh's
    // accessLog block says otherwise (a default, not a pin: --access-log would override the Mesh).
    const logArgs: string[] = opts.accessLog ? ['--access-log-default', '-'] : [];
    const proxyEnv = proxyNodeEnv(process.env);
    if (sidecar) {
      locals.forEach((w, i) => {
        proxies.push(
          new Supervised(
            {
              name: w.proxyName,
              command: process.execPath,
              args: [BIN, 'proxy', ...controlArgs, ...tokenArgs[i], '--mode', 'sidecar', '--metrics-port', String(w.metricsPort), '--admin-port', String(w.adminPort), ...logArgs],
              env: proxyEnv,
              restart: true,
            },
            onLine,
          ),
        );
      });
    } else if (locals.length > 0) {
      proxies.push(
        new Supervised(
          {
            name: 'proxy',
            command: process.execPath,
            args: [BIN, 'proxy', ...controlArgs, ...tokenArgs.flat(), '--mode', 'node', '--metrics-port', String(nodeMetricsPort), '--admin-port', String(locals[0].adminPort), ...logArgs],
            env: proxyEnv,
            restart: true,
          },
          onLine,
        ),
      );
    }
    for (const p of proxies) p.start();
    const readyTimeout = opts.readyTimeoutMs ?? 60_000;
    await Promise.all(
      proxies.map((p, i) => waitReady(sidecar ? locals[i].metricsPort : nodeMetricsPort, readyTimeout, p)),
    );

    // Apps start only once their proxy is ready: no app request fails because the proxy was still starting.
    workloadRes.forEach((r, i) => {
      const s = r.spec as WorkloadSpec;
      if (!s.command || s.command.length === 0) return;
      const w = locals[i];
      const outbound = `http://127.0.0.1:${w.outboundPort}`;
      const app = new Supervised(
        {
          name: w.name,
          command: s.command[0],
          args: s.command.slice(1),
          cwd: workloadDir(r),
          env: {
            ...(s.env ?? {}),
            ...(w.appPort !== undefined ? { PORT: String(w.appPort) } : {}),
            HTTP_PROXY: outbound,
            http_proxy: outbound,
            TRELLIS_OUTBOUND: outbound,
            TRELLIS_WORKLOAD: `${w.namespace}/${w.name}`,
          },
          restart: true,
          stopTimeoutMs: 5000,
        },
        onLine,
      );
      w.app = app;
      apps.push(app);
      app.start();
    });
    // Callers (and the demo's load generator) should not race an app that is still binding its port.
    await Promise.all(locals.filter((w) => w.app && w.appPort !== undefined).map((w) => waitListening(w.appPort!, 15_000)));
    return { control, workloads: locals, proxies, apps, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The table `trellis up` prints once everything is running. */
export function workloadTable(mesh: LocalMesh): { headers: string[]; rows: (string | number)[][] } {
  return {
    headers: ['WORKLOAD', 'IDENTITY', 'APP', 'OUTBOUND', 'INBOUND', 'ADMIN', 'METRICS', 'PROXY'],
    rows: mesh.workloads.map((w) => [
      `${w.namespace}/${w.name}`,
      w.identity,
      w.appPort ?? '-',
      w.outboundPort,
      w.inboundPort,
      w.adminPort,
      w.metricsPort,
      w.proxyName,
    ]),
  };
}
