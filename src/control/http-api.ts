// HTTP/JSON API of the control plane: config read/write, registry, proxy sync status and config, tokens, health, metrics.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Resource } from '../api/types.js';
import { parseYamlDocuments } from '../api/load.js';
import { hasErrors, type Diagnostic } from '../api/diagnostics.js';
import { resourceKey } from '../api/names.js';
import { StoreRejectedError, type Store } from '../store/store.js';
import type { Registry } from './registry.js';
import type { AdsServer } from './ads-server.js';
import type { ControlMetrics } from './metrics.js';
import { resolveKind } from './kinds.js';
import type { TrackedCert } from './cert-tracker.js';
import { RotationBusyError, RotationRefusedError, type RotationReport } from './ca-rotation.js';

export interface HttpApiDeps {
  store: Store;
  registry: Registry;
  ads: AdsServer;
  metrics: ControlMetrics;
  /** Mints a join token; undefined disables POST /api/v1/tokens. */
  createToken?: (req: { namespace: string; serviceAccount: string; ttlSeconds?: number }) => Promise<string>;
  /** Extra facts for GET /api/v1/status (CA, store). */
  status: () => Record<string, unknown>;
  /** GET /api/v1/ca: roots and intermediates; undefined disables it. */
  caInfo?: () => Record<string, unknown>;
  /** Runs a root rotation (POST /api/v1/ca/rotate); throws RotationBusyError / RotationRefusedError. */
  rotateCa?: (opts: { timeoutMs?: number }, log: (line: string) => void) => Promise<RotationReport>;
  /** The workload certificates a proxy holds (as signed by this control plane), for status and check. */
  certificatesOf?: (proxyId: string) => TrackedCert[];
  /** Observability routes (stats, cost, describe, tap): answers and returns true when the path is one of them. */
  extra?: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;
  /** Called before /metrics renders (refreshes gauges such as certificate expiry). */
  beforeMetrics?: () => void;
  log?: (msg: string) => void;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const MAX_BODY = 10 * 1024 * 1024;

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, `request body larger than ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {};
  try {
    const v = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* fall through */
  }
  throw new HttpError(400, 'request body must be a JSON object such as {"yaml": "..."} or {"resources": [...]}');
}

/** Resources from `{yaml, file?}` or `{resources}`; YAML errors become a 400 with diagnostics. */
function resourcesOf(body: Record<string, unknown>): { resources: Resource[]; warnings: Diagnostic[] } {
  if (typeof body.yaml === 'string') {
    const file = typeof body.file === 'string' && body.file ? body.file : 'request';
    const { resources, diagnostics } = parseYamlDocuments(body.yaml, file);
    if (hasErrors(diagnostics)) {
      throw new HttpError(400, `${file}: config rejected, nothing applied`, { diagnostics });
    }
    return { resources, warnings: diagnostics };
  }
  if (Array.isArray(body.resources)) return { resources: body.resources as Resource[], warnings: [] };
  throw new HttpError(400, 'expected {"yaml": "..."} or {"resources": [...]}');
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? JSON.stringify(body, null, 2) + '\n' : String(body);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function isLoopback(addr: string | undefined): boolean {
  return !!addr && (addr.startsWith('127.') || addr === '::1' || addr === '::ffff:127.0.0.1');
}

type Handler = (req: IncomingMessage, params: string[], query: URLSearchParams) => Promise<unknown> | unknown;

export class HttpApi {
  private server: Server | undefined;
  private readonly routes: [string, RegExp, Handler][];

  constructor(private readonly deps: HttpApiDeps) {
    this.routes = [
      ['GET', /^\/healthz$/, () => ({ ok: true })],
      ['GET', /^\/api\/v1\/status$/, () => this.deps.status()],
      ['GET', /^\/api\/v1\/resources$/, (_r, _p, q) => this.list(q.get('kind'))],
      ['GET', /^\/api\/v1\/resources\/([^/]+)\/([^/]+)\/([^/]+)$/, (_r, p) => this.getOne(p[0], p[1], p[2])],
      ['POST', /^\/api\/v1\/apply$/, (r) => this.apply(r)],
      ['POST', /^\/api\/v1\/delete$/, (r) => this.delete(r)],
      ['GET', /^\/api\/v1\/registry$/, () => this.deps.registry.snapshot()],
      ['GET', /^\/api\/v1\/proxies$/, () => ({ proxies: this.deps.ads.proxies().map((p) => this.withCerts(p)) })],
      ['GET', /^\/api\/v1\/proxies\/([^/]+)$/, (_r, p) => this.withCerts(this.deps.ads.proxy(p[0]) ?? this.noProxy(p[0]))],
      ['GET', /^\/api\/v1\/proxies\/([^/]+)\/config$/, (_r, p, q) => this.config(p[0], q.get('type') ?? undefined)],
      ['POST', /^\/api\/v1\/tokens$/, (r) => this.token(r)],
      ['GET', /^\/api\/v1\/ca$/, () => (this.deps.caInfo ? this.deps.caInfo() : this.notHere('the CA'))],
    ];
  }

  async listen(host: string, port: number): Promise<number> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections?.();
    await new Promise<void>((r) => s.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    try {
      if (req.method === 'GET' && url.pathname === '/metrics') {
        this.deps.beforeMetrics?.();
        return send(res, 200, await this.deps.metrics.registry.metrics(), this.deps.metrics.registry.contentType);
      }
      if (url.pathname === '/api/v1/ca/rotate') {
        if (req.method !== 'POST') throw new HttpError(405, `${req.method} not allowed on ${url.pathname}`);
        return await this.rotate(req, res);
      }
      if (this.deps.extra && (await this.deps.extra(req, res, url))) return;
      for (const [method, re, h] of this.routes) {
        const m = re.exec(url.pathname);
        if (!m) continue;
        if (req.method !== method) throw new HttpError(405, `${req.method} not allowed on ${url.pathname}`);
        const params = m.slice(1).map((x) => decodeURIComponent(x));
        return send(res, 200, await h(req, params, url.searchParams));
      }
      throw new HttpError(404, `no such endpoint: ${url.pathname}`);
    } catch (err) {
      if (err instanceof HttpError) return send(res, err.status, { error: err.message, ...err.extra });
      if (err instanceof StoreRejectedError) return send(res, err.status, { error: err.message, diagnostics: err.diagnostics });
      this.deps.log?.(`http: ${req.method} ${url.pathname} failed: ${(err as Error).stack ?? err}`);
      return send(res, 500, { error: `internal error: ${(err as Error).message}` });
    }
  }

  private kindOf(input: string): string {
    const k = resolveKind(input);
    if (!k) throw new HttpError(400, `unknown kind "${input}"`);
    return k;
  }

  private async list(kind: string | null) {
    const k = kind ? this.kindOf(kind) : undefined;
    const all = await this.deps.store.list();
    return { revision: this.deps.store.snapshot().revision, resources: k ? all.filter((r) => r.kind === k) : all };
  }

  private async getOne(kind: string, ns: string, name: string) {
    const k = this.kindOf(kind);
    const r = await this.deps.store.get(resourceKey({ kind: k, metadata: { name, namespace: ns } }));
    if (!r) throw new HttpError(404, `${k} ${ns}/${name} not found`);
    return r;
  }

  private async apply(req: IncomingMessage) {
    const { resources, warnings } = resourcesOf(await readJson(req));
    if (!resources.length) throw new HttpError(400, 'no resources in the request');
    try {
      const result = await this.deps.store.apply(resources);
      return { ...result, warnings: [...warnings, ...result.warnings] };
    } catch (err) {
      if (err instanceof StoreRejectedError) this.deps.metrics.configRejected.inc();
      throw err;
    }
  }

  private async delete(req: IncomingMessage) {
    const body = await readJson(req);
    let keys: string[];
    if (Array.isArray(body.keys)) {
      keys = (body.keys as { kind?: string; namespace?: string; name?: string }[]).map((k) => {
        if (!k?.kind || !k.name) throw new HttpError(400, 'each key needs kind and name');
        return resourceKey({ kind: this.kindOf(k.kind), metadata: { name: k.name, namespace: k.namespace } });
      });
    } else {
      keys = resourcesOf(body).resources.map((r) => resourceKey(r));
    }
    if (!keys.length) throw new HttpError(400, 'nothing to delete');
    return this.deps.store.delete(keys);
  }

  private notHere(what: string): never {
    throw new HttpError(404, `${what} is not served by this control plane`);
  }

  /** A proxy's status with the certificates it holds and the earliest expiry (the CERT EXPIRY column). */
  private withCerts<T extends { id: string }>(p: T): T & { certExpiry?: string; certificates?: unknown[] } {
    const certs = this.deps.certificatesOf?.(p.id);
    if (!certs) return p;
    const now = Date.now();
    const min = certs.reduce<number | undefined>((m, c) => (m === undefined || c.notAfter.getTime() < m ? c.notAfter.getTime() : m), undefined);
    return {
      ...p,
      certExpiry: min === undefined ? undefined : new Date(min).toISOString(),
      certificates: certs.map((c) => ({
        spiffeId: c.spiffeId,
        serial: c.serial,
        issuedAt: new Date(c.issuedAt).toISOString(),
        notAfter: c.notAfter.toISOString(),
        expiresInSeconds: Math.round((c.notAfter.getTime() - now) / 1000),
        rootFingerprint: c.rootFingerprint,
      })),
    };
  }

  /**
   * Runs a root rotation. With `accept: application/x-ndjson` progress streams as {"progress": line} objects, one
   * per line, then {"report": ...}; otherwise the report alone (200 when done, 503 when it stopped part-way).
   */
  private async rotate(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.deps.rotateCa) this.notHere('root rotation');
    const body = await readJson(req);
    let timeoutMs: number | undefined;
    if (body.timeoutSeconds !== undefined) {
      if (typeof body.timeoutSeconds !== 'number' || !(body.timeoutSeconds > 0)) throw new HttpError(400, 'timeoutSeconds must be a positive number');
      timeoutMs = body.timeoutSeconds * 1000;
    }
    const stream = /application\/x-ndjson/.test(String(req.headers.accept ?? ''));
    const lines: string[] = [];
    const write = (o: unknown) => {
      if (!res.writableEnded) res.write(`${JSON.stringify(o)}\n`);
    };
    // Lines logged before the headers go out (the first comes synchronously) wait here.
    let headed = false;
    const onLine = (line: string) => {
      if (stream && headed) write({ progress: line });
      else lines.push(line);
    };
    let running: Promise<RotationReport>;
    try {
      running = this.deps.rotateCa!({ timeoutMs }, onLine);
    } catch (err) {
      if (err instanceof RotationBusyError) throw new HttpError(409, err.message);
      if (err instanceof RotationRefusedError) throw new HttpError(400, err.message);
      throw err;
    }
    if (stream) {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      headed = true;
      for (const l of lines.splice(0)) write({ progress: l });
      try {
        write({ report: await running });
      } catch (err) {
        write({ error: `rotation failed: ${(err as Error).message}` });
      }
      res.end();
      return;
    }
    const report = await running;
    send(res, report.ok ? 200 : 503, { ...report, progress: lines, ...(report.ok ? {} : { error: report.error }) });
  }

  private noProxy(id: string): never {
    throw new HttpError(404, `no connected proxy "${id}" (see GET /api/v1/proxies)`);
  }

  private config(id: string, type: string | undefined) {
    const allowed = ['listeners', 'routes', 'clusters', 'endpoints', 'secrets'];
    if (type && !allowed.includes(type)) throw new HttpError(400, `unknown type "${type}" (one of ${allowed.join(', ')})`);
    return this.deps.ads.proxyConfig(id, type) ?? this.noProxy(id);
  }

  private async token(req: IncomingMessage) {
    const local = isLoopback(req.socket.localAddress) && isLoopback(req.socket.remoteAddress);
    if (!this.deps.createToken || !local) {
      throw new HttpError(403, 'tokens are minted over the API only when it listens on loopback; use `trellis token create` on the control-plane host');
    }
    const body = await readJson(req);
    const { namespace, serviceAccount } = body as { namespace?: string; serviceAccount?: string };
    if (typeof namespace !== 'string' || !namespace || typeof serviceAccount !== 'string' || !serviceAccount) {
      throw new HttpError(400, 'expected {"namespace": "...", "serviceAccount": "...", "ttlSeconds"?: N}');
    }
    const ttl = typeof body.ttlSeconds === 'number' && body.ttlSeconds > 0 ? body.ttlSeconds : undefined;
    return { token: await this.deps.createToken({ namespace, serviceAccount, ttlSeconds: ttl }) };
  }
}
