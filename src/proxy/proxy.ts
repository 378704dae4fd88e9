// startProxy: wires state store, xDS client (or static config), identities, listeners, admin and readiness into one proxy.
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import * as net from 'node:net';
import type * as http from 'node:http';
import { StateStore, emptyRaw, type RawResources } from './state.js';
import { XdsClient } from './xds-client.js';
import { UpstreamPool } from './upstream/pool.js';
import { ListenerManager } from './listeners/manager.js';
import { createOutboundHttpListener } from './listeners/outbound-http.js';
import { createOutboundTcpListener } from './listeners/outbound-tcp.js';
import { createInboundListener } from './listeners/inbound.js';
import { outboundStack, type HttpContext } from './http/outbound.js';
import { StaticCertificateSource, WorkloadTls, type CertificateSource, type StaticIdentity } from './tls/identity.js';
import { createAdminServer, createReadinessServer, listenHttp, type AdminSource } from './admin.js';
import { ProxyMetrics } from '../telemetry/proxy-metrics.js';
import type { ListenerConfig } from './config/types.js';
import { peekTokenClaims } from '../identity/token.js';
import { CertificateManager } from '../identity/cert-manager.js';
import { ResilienceRegistry } from './resilience/index.js';
import { registerResilienceMetrics } from './http/outbound-metrics.js';
import { startAccessLog, type AccessLog } from '../telemetry/access-log.js';
import { accessLogFromListeners, effectiveAccessLog } from './config/access-log.js';
import { tapHandler } from '../telemetry/tap.js';
import { Tracer } from '../telemetry/tracing.js';
import { tracingFromListeners } from '../telemetry/tracing-config.js';
import { HCM_TYPE, unpackAny } from '../xds/protos.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error'];

export interface ProxyWorkload {
  namespace: string;
  name: string;
  /** This workload's own join token (node mode hosting several service accounts); default: the proxy's --token. */
  token?: string;
  labels?: Record<string, string>;
  service?: string;
  serviceAccount?: string;
  ports?: { name?: string; port: number; protocol?: string }[];
  address?: string;
  inboundPort?: number;
  outboundPort?: number;
  adminPort?: number;
  locality?: { region?: string; zone?: string; subZone?: string };
}

/** Decoded xDS resources (as `unpackAny` returns them) to run without a control plane. */
export interface StaticConfig {
  listeners?: Record<string, any>[];
  routes?: Record<string, any>[];
  clusters?: Record<string, any>[];
  endpoints?: Record<string, any>[];
  secrets?: Record<string, any>[];
}

export interface ProxyOptions {
  controlAddress?: string;
  token?: string;
  workloads: ProxyWorkload[];
  mode?: 'sidecar' | 'node';
  /** Readiness and metrics port (default 15020; 0 picks a free port). */
  metricsPort?: number;
  /** Admin port on 127.0.0.1 (default 15000; 0 picks a free port; -1 disables). */
  adminPort?: number;
  drainTimeoutMs?: number;
  trustDomain?: string;
  logLevel?: LogLevel;
  log?: (level: LogLevel, msg: string) => void;
  staticConfig?: StaticConfig;
  /** One identity for every workload, or one per "ns/name". */
  staticIdentity?: StaticIdentity | Record<string, StaticIdentity>;
  /** Certificate sources per "ns/name" (tests, or an embedding that manages certificates itself). */
  certificateSources?: Record<string, CertificateSource>;
  /** Inbound HTTP handling: 'auto' parses HTTP only when a chain's filters need it (else a TLS-terminating pipe); 'always' parses every HTTP chain (caller identity to the app, destination metrics). */
  inboundL7?: 'auto' | 'always';
  /** xDS reconnect backoff (ms). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  version?: string;
  /**
   * Access log: a file to append lines to, or "-" for stdout. Wins over the Mesh's accessLog (whose format it still
   * follows; JSON otherwise). Unset: the Mesh's accessLog decides.
   */
  accessLog?: string;
  /** Access log target used only while the Mesh has no accessLog block (`trellis up` turns logging on this way). */
  accessLogDefault?: string;
}

export interface Proxy {
  readonly id: string;
  readonly ready: Promise<void>;
  isReady(): boolean;
  readiness(): { ready: boolean; reason: string };
  /** Stops accepting, asks connections to close, waits for in-flight requests up to the drain timeout. */
  drain(): Promise<void>;
  /** Immediate shutdown. */
  close(): Promise<void>;
  readonly store: StateStore;
  readonly metrics: ProxyMetrics;
  readonly xds?: XdsClient;
  listenerPort(name: string): number | undefined;
  metricsPort(): number;
  adminPort(): number | undefined;
  identity(workload: string): WorkloadTls | undefined;
  /** Per-cluster circuit breaker, outlier detection and retry budget state (for describe / admin). */
  resilience(): ReturnType<ResilienceRegistry['snapshot']>;
}

function isIdentity(x: unknown): x is StaticIdentity {
  return !!x && typeof x === 'object' && 'keyPem' in x;
}

function rawFromStatic(sc: StaticConfig): RawResources {
  const raw = emptyRaw();
  for (const l of sc.listeners ?? []) raw.listeners.set(l.name, l);
  for (const r of sc.routes ?? []) raw.routes.set(r.name, r);
  for (const c of sc.clusters ?? []) raw.clusters.set(c.name, c);
  for (const e of sc.endpoints ?? []) raw.endpoints.set(e.cluster_name, e);
  for (const s of sc.secrets ?? []) raw.secrets.set(s.name, s);
  return raw;
}

export async function startProxy(opts: ProxyOptions): Promise<Proxy> {
  if (!opts.workloads?.length) throw new Error('a proxy needs at least one workload (--workload NS/NAME)');
  const mode = opts.mode ?? (opts.workloads.length > 1 ? 'node' : 'sidecar');
  if (mode === 'sidecar' && opts.workloads.length > 1) throw new Error('sidecar mode hosts exactly one workload; use --mode node for several');
  // A join token names the service account and trust domain the CA will sign for.
  const claims = opts.token ? peekTokenClaims(opts.token) : {};
  const trustDomain = opts.trustDomain ?? claims.trustDomain ?? 'cluster.local';
  let level = LEVELS.indexOf(opts.logLevel ?? 'info');
  const sink = opts.log ?? ((l: LogLevel, m: string) => process.stderr.write(`${new Date().toISOString()} ${l} ${m}\n`));
  const log = (l: LogLevel, m: string) => {
    if (LEVELS.indexOf(l) >= level) sink(l, m);
  };
  const id = `node~${opts.workloads[0].address ?? '127.0.0.1'}~trellis-proxy-${process.pid}-${Math.random().toString(36).slice(2, 8)}.${hostname()}`;
  const metrics = new ProxyMetrics();
  metrics.setInfo({ mode, version: opts.version ?? '0.0.0' });
  const store = new StateStore();
  // The pool reads idle_timeout / max_requests_per_connection and the breaker of a cluster when it makes its pool.
  const pool = new UpstreamPool({ clusterRaw: (n) => store.current.raw.clusters.get(n), breaker: (n) => resilience.get(n)?.breaker });

  // Identities: one per service account (several workloads may share one).
  const identities = new Map<string, WorkloadTls>();
  const byWorkload = new Map<string, WorkloadTls>();
  const certStarts: Promise<void>[] = [];
  for (const w of opts.workloads) {
    const key = `${w.namespace}/${w.name}`;
    const wClaims = w.token ? peekTokenClaims(w.token) : claims;
    const sa = w.serviceAccount ?? (wClaims.namespace === w.namespace ? wClaims.serviceAccount : undefined) ?? w.service ?? w.name;
    const spiffeId = `spiffe://${trustDomain}/ns/${w.namespace}/sa/${sa}`;
    let t = identities.get(spiffeId);
    if (!t) {
      let source = opts.certificateSources?.[key];
      if (!source && opts.staticIdentity) {
        const si = isIdentity(opts.staticIdentity) ? opts.staticIdentity : opts.staticIdentity[key];
        if (si) source = new StaticCertificateSource(si);
      }
      if (!source) {
        const token = w.token ?? opts.token;
        if (!token) throw new Error(`workload ${key}: no certificate source (need --token to request one from the CA)`);
        source = createCertificateManager(opts.controlAddress ?? '127.0.0.1:15010', token, spiffeId, certStarts, log, id);
      }
      t = new WorkloadTls(spiffeId, trustDomain, source);
      t.on('error', (err: Error) => log('error', `certificate for ${spiffeId}: ${err.message}`));
      t.on('reissue', () => log('info', `certificate for ${spiffeId} is not from the CA's current signing root (root rotation): asking for a new one`));
      // New certificate or bundle: new upstream connections use it, pooled ones made with the old one retire.
      t.on('updated', () => pool.prune(() => true));
      identities.set(spiffeId, t);
    }
    byWorkload.set(key, t);
  }
  const identityFor = (w: string) => byWorkload.get(w) ?? (byWorkload.size === 1 && !w ? [...byWorkload.values()][0] : undefined);

  // Breakers, outlier detectors and retry budgets live per cluster across config swaps.
  const resilience = new ResilienceRegistry({
    now: () => performance.now(),
    onEject: (c, ep, reason, ms) => log('warn', `outlier detection: cluster ${c} endpoint ${ep} ejected for ${ms}ms (${reason})`),
    onUneject: (c, ep) => log('info', `outlier detection: cluster ${c} endpoint ${ep} back in rotation`),
    onWarning: (m) => log('warn', m),
  });
  const resilienceTick = setInterval(() => resilience.tick(), 1000);
  resilienceTick.unref();
  registerResilienceMetrics(metrics, resilience);
  const httpCtx: HttpContext = { store, pool, metrics, identityFor, draining: false, inflight: 0, resilience };
  const handler = outboundStack(pool, resilience);
  const l4Ctx = { store, metrics, identityFor, log, http: httpCtx, l7: opts.inboundL7 ?? 'auto' } as const;
  const factory = (cfg: ListenerConfig) =>
    cfg.kind === 'inbound'
      ? createInboundListener(l4Ctx, cfg)
      : cfg.kind === 'tcp'
        ? createOutboundTcpListener(l4Ctx, cfg)
        : createOutboundHttpListener(httpCtx, cfg, handler);
  const drainTimeoutMs = opts.drainTimeoutMs ?? 10_000;
  const listeners = new ListenerManager(factory, drainTimeoutMs, log);

  // Tracing settings arrive in listeners (HCM tracing, set from the Mesh); off until a listener carries them.
  const tracer = new Tracer({ owner: metrics, workloads: [...byWorkload.keys()], log: (l, m) => log(l, m) });

  let reconciling: Promise<void> = Promise.resolve();
  let retryTimer: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;
  let firstReconcileDone = false;
  // The access log follows the Mesh's accessLog (carried in listeners) unless --access-log pins it; replaced on change.
  let accessLog: AccessLog | undefined;
  let accessLogClosing: Promise<void> = Promise.resolve();
  let accessLogProblems = '';
  const configureAccessLog = () => {
    const problems: string[] = [];
    const mesh = opts.staticConfig || store.received.listeners ? accessLogFromListeners(store.current.raw.listeners.values(), (a) => unpackAny(a as never), HCM_TYPE, problems) : { kind: 'unset' as const };
    if (problems.join('\n') !== accessLogProblems) for (const p of problems) log('warn', p);
    accessLogProblems = problems.join('\n');
    const want = effectiveAccessLog(mesh, opts.accessLog, opts.accessLogDefault);
    if (accessLog && want && accessLog.target === want.target && accessLog.format === want.format) return;
    if (!accessLog && !want) return;
    if (accessLog) {
      const old = accessLog;
      accessLogClosing = accessLogClosing.then(() => old.close());
      log('info', `access log to ${old.target === '-' ? 'stdout' : old.target} stopped`);
    }
    accessLog = want ? startAccessLog(metrics, want.target, want.format) : undefined;
    if (want) log('info', `access log (${want.format}) to ${want.target === '-' ? 'stdout' : want.target}`);
  };
  const onChange = () => {
    const st = store.current;
    resilience.sync(st);
    tracer.configure(tracingFromListeners(st.raw.listeners.values(), (a) => unpackAny(a as never), HCM_TYPE));
    if (!closing) configureAccessLog();
    for (const t of identities.values()) t.setTrustBundle(st.trustBundlePem);
    reconciling = reconciling.then(() => listeners.reconcile(store.current)).then(() => {
      firstReconcileDone = true;
      checkReady();
      // A port still taken (e.g. by a previous proxy finishing its drain): try again shortly.
      if (listeners.errors.size && !closing && !retryTimer) {
        retryTimer = setTimeout(() => {
          retryTimer = undefined;
          if (!closing) onChange();
        }, 1000);
        retryTimer.unref();
      }
    });
    pool.prune((ep, c) => {
      const cs = st.clusters.get(c.name);
      return !!cs && cs.endpoints.some((e) => e.address === ep.address && e.port === ep.port);
    });
  };
  store.on('change', onChange);

  let xds: XdsClient | undefined;
  metrics.certExpiry.collect = () => {
    let min = Infinity;
    for (const t of identities.values()) min = Math.min(min, (t.notAfter().getTime() - Date.now()) / 1000);
    if (min !== Infinity) metrics.certExpiry.set('kind="workload"', Math.round(min));
  };

  const readiness = (): { ready: boolean; reason: string } => {
    for (const t of identities.values()) {
      if (!t.hasCertificate()) return { ready: false, reason: `workload certificate for ${t.spiffeId} not issued yet` };
    }
    if (!store.received.clusters || !store.received.listeners) return { ready: false, reason: 'waiting for the first clusters and listeners from the control plane' };
    if (store.current.missing.length) return { ready: false, reason: `waiting for ${store.current.missing.slice(0, 3).join(', ')}` };
    if (!firstReconcileDone) return { ready: false, reason: 'binding listeners' };
    if (listeners.errors.size) return { ready: false, reason: [...listeners.errors.values()][0] };
    return { ready: true, reason: '' };
  };
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  let isReady = false;
  const checkReady = () => {
    if (!isReady && readiness().ready) {
      isReady = true;
      resolveReady();
    }
  };

  const adminSource: AdminSource = {
    configDump: () => ({
      id,
      mode,
      version: store.current.version,
      missing: store.current.missing,
      xds: xds?.statusJson(),
      listenerErrors: Object.fromEntries(listeners.errors),
      boundPorts: Object.fromEntries([...listeners.active].map(([n, l]) => [n, l.port()])),
      listeners: [...store.current.raw.listeners.values()],
      routes: [...store.current.raw.routes.values()],
      clusters: [...store.current.raw.clusters.values()],
      endpoints: [...store.current.raw.endpoints.values()],
      secrets: [...store.current.raw.secrets.values()],
    }),
    certificates: () =>
      [...byWorkload].map(([w, t]) => ({
        workload: w,
        spiffeId: t.spiffeId,
        notAfter: t.notAfter().toISOString(),
        expiresInSeconds: Math.round((t.notAfter().getTime() - Date.now()) / 1000),
      })),
    logLevel: () => LEVELS[level],
    setLogLevel: (l) => {
      const i = LEVELS.indexOf(l as LogLevel);
      if (i < 0) return `unknown log level "${l}" (one of ${LEVELS.join(', ')})`;
      level = i;
      return undefined;
    },
    readiness,
    metrics: () => metrics.render(),
    resilience: () => resilience.snapshot(),
    tap: tapHandler(metrics),
  };
  // The flag (or the launcher's default) logs from the start; the Mesh's setting takes over once listeners arrive.
  configureAccessLog();
  const readinessServer = createReadinessServer(adminSource);
  const metricsPort = await listenHttp(readinessServer, opts.metricsPort ?? 15020, '0.0.0.0', 'readiness/metrics');
  let adminServer: http.Server | undefined;
  let adminPort: number | undefined;
  if ((opts.adminPort ?? 15000) >= 0) {
    adminServer = createAdminServer(adminSource);
    try {
      adminPort = await listenHttp(adminServer, opts.adminPort ?? 15000, '127.0.0.1', 'admin');
    } catch (err) {
      readinessServer.close();
      throw err;
    }
  }

  // The servers listen first: the node metadata tells the control plane where to scrape this proxy.
  try {
    if (opts.staticConfig) {
      const err = store.update(rawFromStatic(opts.staticConfig));
      if (err) throw new Error(`static config: ${err}`);
      store.received.listeners = store.received.clusters = true;
    } else {
      const token = opts.token ?? opts.workloads.find((w) => w.token)?.token;
      if (!token) throw new Error('a token is needed to reach the control plane (--token)');
      xds = new XdsClient({
        address: opts.controlAddress ?? '127.0.0.1:15010',
        token,
        extraTokens: opts.workloads.flatMap((w) => (w.token ? [w.token] : [])),
        node: { id, metadata: nodeMetadata(await withPorts(opts, mode), mode, { metricsPort, ...(adminPort !== undefined ? { adminPort } : {}) }) },
        store,
        log,
        backoffBaseMs: opts.backoffBaseMs,
        backoffMaxMs: opts.backoffMaxMs,
      });
      xds.on('connected', () => metrics.xdsConnected.set('', 1));
      xds.on('disconnected', () => metrics.xdsConnected.set('', 0));
    }
  } catch (err) {
    readinessServer.close();
    adminServer?.close();
    throw err;
  }

  for (const t of identities.values()) t.on('updated', () => checkReady());
  if (opts.staticConfig) onChange();
  xds?.start();
  Promise.all(certStarts).then(
    () => {
      for (const t of identities.values()) if (!t.hasCertificate()) t.refresh();
      checkReady();
    },
    (err: Error) => log('error', `certificate: ${err.message}`),
  );

  const shutdown = (timeoutMs: number) => {
    if (!closing) {
      closing = (async () => {
        httpCtx.draining = true;
        isReady = false;
        clearInterval(resilienceTick);
        xds?.close();
        // Idle pooled upstream connections close now: in node mode they are this process's own inbound
        // connections, which the drain below would otherwise wait out.
        pool.prune(() => false);
        await reconciling.catch(() => {});
        await listeners.drainAll(timeoutMs);
        pool.close();
        readinessServer.close();
        readinessServer.closeAllConnections();
        adminServer?.close();
        adminServer?.closeAllConnections();
        for (const t of identities.values()) (t.source as { stop?: () => void }).stop?.();
        const last = accessLog;
        accessLog = undefined;
        await accessLogClosing;
        await last?.close();
        await tracer.close();
      })();
    }
    return closing;
  };

  return {
    id,
    ready,
    isReady: () => isReady,
    readiness,
    drain: () => shutdown(drainTimeoutMs),
    close: () => shutdown(0),
    store,
    metrics,
    xds,
    listenerPort: (n) => listeners.portOf(n),
    metricsPort: () => metricsPort,
    adminPort: () => adminPort,
    identity: (w) => byWorkload.get(w),
    resilience: () => resilience.snapshot(),
  };
}

/**
 * Registration needs each workload's listener ports. A sidecar defaults to the well-known 15006/15001;
 * in node mode workloads cannot share them, so unset ones get free ports picked here.
 */
async function withPorts(opts: ProxyOptions, mode: string): Promise<ProxyOptions> {
  if (mode !== 'node') return opts;
  const workloads: ProxyWorkload[] = [];
  for (const w of opts.workloads) {
    workloads.push({ ...w, inboundPort: w.inboundPort ?? (await freePort()), outboundPort: w.outboundPort ?? (await freePort()) });
  }
  return { ...opts, workloads };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** The workload's service account as the proxy knows it: the flag, else the grant of the token it joins with. */
function serviceAccountHint(w: ProxyWorkload, opts: ProxyOptions): string | undefined {
  if (w.serviceAccount) return w.serviceAccount;
  const token = w.token ?? opts.token;
  if (!token) return undefined;
  const claims = peekTokenClaims(token);
  return claims.namespace === w.namespace ? claims.serviceAccount : undefined;
}

function nodeMetadata(opts: ProxyOptions, mode: string, telemetry: { metricsPort: number; adminPort?: number }): Record<string, unknown> {
  return {
    TRELLIS_PROXY: '1',
    PROXY_KIND: mode,
    VERSION: opts.version ?? '0.0.0',
    WORKLOADS: opts.workloads.map((w) => ({
      name: w.name,
      namespace: w.namespace,
      labels: w.labels ?? {},
      // Only what the proxy knows (flag or join token); the control plane fills the rest from the Workload resource.
      ...(serviceAccountHint(w, opts) ? { serviceAccount: serviceAccountHint(w, opts) } : {}),
      service: w.service ?? w.name,
      ports: (w.ports ?? []).map((p) => ({ name: p.name ?? `p${p.port}`, port: p.port, protocol: p.protocol ?? 'HTTP' })),
      address: w.address ?? '127.0.0.1',
      inboundPort: w.inboundPort ?? 15006,
      outboundPort: w.outboundPort ?? 15001,
      ...(w.adminPort !== undefined ? { adminPort: w.adminPort } : {}),
      ...(w.locality ? { locality: w.locality } : {}),
      telemetry,
    })),
  };
}

/** One CertificateManager per identity: the key is made here, the CA signs what the token allows. */
function createCertificateManager(
  caAddress: string,
  token: string,
  spiffeId: string,
  starts: Promise<void>[],
  log: (l: LogLevel, m: string) => void,
  proxyId: string,
): CertificateSource {
  const cm = new CertificateManager({ caAddress, token, spiffeId, proxyId });
  cm.on('renewFailed', (e: { error?: Error; retryInMs?: number }) =>
    log('warn', `certificate for ${spiffeId}: ${e.error?.message ?? 'request failed'}; retrying in ${Math.round((e.retryInMs ?? 0) / 1000)}s`),
  );
  starts.push(cm.start().then(() => log('info', `certificate issued for ${spiffeId}`)));
  return cm as unknown as CertificateSource;
}
