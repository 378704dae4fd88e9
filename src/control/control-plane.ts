// Wires the control plane: store -> registry -> compiler -> ADS, the CA service on the same gRPC server, and the HTTP API.
import * as grpc from '@grpc/grpc-js';
import { mkdirSync } from 'node:fs';
import type { Resource } from '../api/types.js';
import { loadFiles } from '../api/load.js';
import { hasErrors } from '../api/diagnostics.js';
import { trustDomainOf } from '../api/names.js';
import { CertificateAuthority } from '../identity/ca.js';
import { TokenIssuer } from '../identity/token.js';
import { addCertificateService } from '../identity/ca-service.js';
import { compileForProxy } from './compile/index.js';
import { cachingVerifier } from './token-cache.js';
import type { Store } from '../store/store.js';
import { MemoryStore } from '../store/memory-store.js';
import { FileStore } from '../store/file-store.js';
import { Registry } from './registry.js';
import { AdsServer } from './ads-server.js';
import { HttpApi } from './http-api.js';
import { createControlMetrics, type ControlMetrics } from './metrics.js';
import { meshSettings } from './mesh.js';
import type { CompileInput } from './model.js';
import { CertTracker } from './cert-tracker.js';
import { RootRotator } from './ca-rotation.js';
import { StatsCollector, targetsOf } from './stats.js';
import { observabilityHandler } from './stats-api.js';

export interface ControlPlaneOptions {
  stateDir: string;
  /** 'memory' (changed through the API), a file store on a directory or file, or any Store. */
  store: 'memory' | { file: string } | Store;
  /** Files loaded into a memory store at start. */
  configPaths?: string[];
  grpcListen?: string; // host:port, default 127.0.0.1:15010
  httpListen?: string; // host:port, default 127.0.0.1:15014
  debounceMs?: number;
  maxDelayMs?: number;
  disconnectGraceMs?: number;
  log?: (msg: string) => void;
  /** An operator-provided CA (a root, or an intermediate with its chain up to the root) instead of the built-in one. */
  caCertFile?: string;
  caKeyFile?: string;
  /** The compiler; defaults to compileForProxy (benchmarks and tests substitute their own). */
  compile?: typeof compileForProxy;
}

export interface ControlPlane {
  grpcPort: number;
  httpPort: number;
  grpcAddress: string;
  httpAddress: string;
  store: Store;
  registry: Registry;
  ads: AdsServer;
  ca: CertificateAuthority;
  tokens: TokenIssuer;
  metrics: ControlMetrics;
  /** Which proxy holds which workload certificate (status, check, rotation). */
  certs: CertTracker;
  /** Zero-downtime root rotation, one at a time (POST /api/v1/ca/rotate). */
  rotator: RootRotator;
  close(): Promise<void>;
}

function splitHostPort(v: string, defPort: number): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(v.includes(':') && !v.startsWith('[') && v.split(':').length > 2 ? `[${v}]` : v);
  const host = m?.[1] || '127.0.0.1';
  const port = m?.[2] !== undefined ? Number(m[2]) : defPort;
  return { host, port };
}

async function makeStore(opts: ControlPlaneOptions, log: (m: string) => void): Promise<Store> {
  if (typeof opts.store === 'object' && 'file' in opts.store) return new FileStore(opts.store.file, { log });
  if (typeof opts.store === 'object') return opts.store;
  const mem = new MemoryStore();
  if (opts.configPaths?.length) {
    const { resources, diagnostics } = await loadFiles(opts.configPaths);
    if (hasErrors(diagnostics)) {
      mem.recordError(`config in ${opts.configPaths.join(', ')} rejected; starting with no config`, diagnostics);
      log(`config in ${opts.configPaths.join(', ')} rejected; starting with no config`);
    } else {
      try {
        await mem.apply(resources);
      } catch (err) {
        const diags = (err as { diagnostics?: [] }).diagnostics ?? [];
        mem.recordError(`config rejected: ${(err as Error).message}; starting with no config`, diags);
        log(`config in ${opts.configPaths.join(', ')} rejected: ${(err as Error).message}`);
      }
    }
  }
  return mem;
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = opts.log ?? (() => undefined);
  mkdirSync(opts.stateDir, { recursive: true });
  const metrics = createControlMetrics();
  const store = await makeStore(opts, log);
  await store.start();

  const ca = await CertificateAuthority.loadOrCreate({
    stateDir: opts.stateDir,
    trustDomain: trustDomainOf(store.snapshot().resources),
    caCertFile: opts.caCertFile,
    caKeyFile: opts.caKeyFile,
  });
  const tokens = await TokenIssuer.loadOrCreate(opts.stateDir);
  const registry = new Registry({ stateDir: opts.stateDir, graceMs: opts.disconnectGraceMs });

  const compile = opts.compile ?? compileForProxy;
  let resources: readonly Resource[] = [];
  let input: CompileInput | undefined;
  const ads = new AdsServer({
    // One CompileInput per push, so the compiler can memoize shared parts by identity. A stream that opens
    // between pushes compiles against the current input (its own workloads come in its descriptor); the
    // push that its registration triggers brings everyone, itself included, up to date.
    snapshotFor: (proxy, subs) => {
      input ??= {
        resources: resources as Resource[],
        registry: registry.snapshot(),
        mesh: meshSettings(resources),
        trustBundlePem: ca.trustBundlePem(),
      };
      return compile(input, proxy, subs);
    },
    registry,
    verifyToken: cachingVerifier((t) => tokens.verify(t)),
    debounceMs: opts.debounceMs,
    maxDelayMs: opts.maxDelayMs,
    metrics,
    log,
    beforePush: () => {
      input = undefined;
    },
  });
  const invalidate = () => ads.trigger();
  registry.onChange(invalidate);
  ca.on('changed', invalidate);
  const unwatch = store.watch((snap) => {
    resources = snap.resources;
    const td = trustDomainOf(resources);
    if (td !== ca.trustDomain) log(`Mesh trust domain "${td}" differs from the CA's "${ca.trustDomain}"; restart the control plane with a fresh state dir to change it`);
    registry.setResources(resources); // fires invalidate
  });

  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  ads.addTo(server);
  const certs = new CertTracker({ isConnected: (id) => ads.proxy(id) !== undefined });
  const rotator = new RootRotator({ ca, tracker: certs, ads, log: (l) => log(`ca rotate: ${l}`) });
  addCertificateService(server, {
    ca,
    tokens,
    // The Mesh's certificateTTL caps every certificate, read per request so a changed Mesh applies to the next renewal.
    maxTtlSeconds: () => meshSettings(resources).certificateTtlSeconds,
    onSigned: (id, info) => {
      metrics.csrsSigned.inc();
      certs.record(id, info);
    },
    onRefused: () => metrics.csrsRefused.inc(),
  });
  const g = splitHostPort(opts.grpcListen ?? '127.0.0.1:15010', 15010);
  let grpcPort: number;
  try {
    grpcPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${g.host.includes(':') ? `[${g.host}]` : g.host}:${g.port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
  } catch (err) {
    unwatch();
    await store.close();
    throw new Error(`cannot listen for xDS on ${g.host}:${g.port}: ${(err as Error).message}`);
  }

  const refreshCertGauges = () => {
    const now = Date.now();
    const roots = ca.roots();
    if (roots.length) metrics.certificateExpiry.set({ kind: 'root' }, Math.min(...roots.map((r) => r.notAfter.getTime() - now)) / 1000);
    const ints = ca.intermediates();
    if (ints.length) metrics.certificateExpiry.set({ kind: 'intermediate' }, Math.min(...ints.map((r) => r.notAfter.getTime() - now)) / 1000);
  };
  // Live golden signals and cost: scrapes connected proxies on demand (stat, top, edges, cost, describe, tap).
  const proxyTargets = () => targetsOf(ads.proxies());
  const stats = new StatsCollector({ targets: proxyTargets });
  const extra = observabilityHandler({ stats, targets: proxyTargets, resources: () => resources, registry: () => registry.snapshot(), mesh: () => meshSettings(resources) });
  const h = splitHostPort(opts.httpListen ?? '127.0.0.1:15014', 15014);
  const http = new HttpApi({
    store,
    registry,
    ads,
    metrics,
    createToken: (r) => tokens.create(r),
    beforeMetrics: refreshCertGauges,
    extra,
    certificatesOf: (id) => certs.forProxy(id),
    rotateCa: (o, l) => rotator.rotate(o, l),
    caInfo: () => {
      const now = Date.now();
      const left = (d: Date) => Math.round((d.getTime() - now) / 1000);
      return {
        trustDomain: ca.trustDomain,
        operatorProvided: ca.operatorProvided,
        rotating: rotator.busy,
        roots: ca.roots().map((r) => ({ fingerprint: r.fingerprint, signing: r.signing, notBefore: r.notBefore.toISOString(), notAfter: r.notAfter.toISOString(), expiresInSeconds: left(r.notAfter) })),
        intermediates: ca.intermediates().map((r) => ({ fingerprint: r.fingerprint, notAfter: r.notAfter.toISOString(), expiresInSeconds: left(r.notAfter) })),
      };
    },
    log,
    status: () => ({
      store: { kind: store.kind, revision: store.snapshot().revision, resources: store.snapshot().resources.length, lastError: store.lastError() },
      ca: {
        trustDomain: ca.trustDomain,
        roots: ca.roots().map((r) => ({ fingerprint: r.fingerprint, notAfter: r.notAfter.toISOString(), signing: r.signing })),
        intermediates: ca.intermediates().map((r) => ({ fingerprint: r.fingerprint, notAfter: r.notAfter.toISOString() })),
      },
      proxies: ads.connectionCount,
      grpcPort,
    }),
  });
  let httpPort: number;
  try {
    httpPort = await http.listen(h.host, h.port);
  } catch (err) {
    server.forceShutdown();
    unwatch();
    await store.close();
    throw new Error(`cannot listen for the HTTP API on ${h.host}:${h.port}: ${(err as Error).message}`);
  }

  let closed: Promise<void> | undefined;
  return {
    grpcPort,
    httpPort,
    grpcAddress: `${g.host}:${grpcPort}`,
    httpAddress: `${h.host}:${httpPort}`,
    store,
    registry,
    ads,
    ca,
    tokens,
    metrics,
    certs,
    rotator,
    close() {
      closed ??= (async () => {
        unwatch();
        stats.close();
        ads.close();
        registry.close();
        await http.close();
        await new Promise<void>((r) => {
          const t = setTimeout(() => {
            server.forceShutdown();
            r();
          }, 1000);
          server.tryShutdown(() => {
            clearTimeout(t);
            r();
          });
        });
        await store.close();
      })();
      return closed;
    },
  };
}
