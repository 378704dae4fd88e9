// The outbound HTTP stack (assembled here, in one place) and the request entry that builds an Exchange.
import * as http from 'node:http';
import type * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { ListenerConfig } from '../config/types.js';
import type { StateStore } from '../state.js';
import type { UpstreamPool } from '../upstream/pool.js';
import type { WorkloadTls } from '../tls/identity.js';
import type { ProxyMetrics } from '../../telemetry/proxy-metrics.js';
import { timeDispatch } from '../../telemetry/request-events.js';
import { sendError } from '../errors.js';
import { isMutual, meshMeta } from '../policy-api.js';
import { stack, type Exchange, type Handler } from './exchange.js';
import { sanitizeRequestHeaders } from './headers.js';
import { fault, requestId, rewrite, route } from './layers.js';
import type { ResilienceRegistry } from '../resilience/index.js';
import { admit, outboundBalance, outboundDeadline } from './outbound-resilience.js';
import { closeFlight, createOutboundForward, type Flight } from './outbound-forward.js';

export interface HttpContext {
  store: StateStore;
  pool: UpstreamPool;
  metrics: ProxyMetrics;
  identityFor(workload: string): WorkloadTls | undefined;
  /** Set when the proxy drains: responses carry Connection: close. */
  draining: boolean;
  inflight: number;
  /** Per-cluster circuit breakers, outlier detectors and retry budgets (absent: none enforced). */
  resilience?: ResilienceRegistry;
}

/**
 * outbound: hygiene -> id -> route -> fault -> rewrite -> deadline -> admit (retry budget, breaker) ->
 * balance (skips ejected endpoints) -> forward (tries: retries, per-try timeout, outlier results; mirrors).
 */
export function outboundStack(pool: UpstreamPool, reg?: ResilienceRegistry): Handler {
  return stack([requestId, route, fault, rewrite, outboundDeadline, admit(reg), outboundBalance], timeDispatch(createOutboundForward(pool, reg)));
}

function splitTarget(url: string, hostHeader: string | undefined): { authority: string; path: string } | undefined {
  if (url.charCodeAt(0) === 47 /* / */) return { authority: hostHeader ?? '', path: url };
  // absolute-form (HTTP_PROXY style): http://authority/path
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)([^#]*)/i.exec(url);
  if (!m) return undefined;
  let path = m[2] || '/';
  if (path.charCodeAt(0) !== 47) path = '/' + path;
  return { authority: m[1].replace(/^[^@]*@/, ''), path };
}

/** Builds the per-listener request entry for HTTP/1.1 and h2c requests. */
export function createRequestEntry(ctx: HttpContext, listenerName: string, fallback: ListenerConfig, handler: Handler, listenerDraining: () => boolean = () => false) {
  const closing = () => ctx.draining || listenerDraining();
  return function onRequest(req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse, upgrade?: Exchange['upgrade']): void {
    const state = ctx.store.current;
    const listener = state.listeners.get(listenerName) ?? fallback;
    const h2 = req.httpVersionMajor === 2;
    const rawHeaders = req.headers as Record<string, string | string[] | undefined>;
    const hostHeader = (h2 ? (rawHeaders[':authority'] as string | undefined) : undefined) ?? (rawHeaders.host as string | undefined);
    const grpc = typeof rawHeaders['content-type'] === 'string' && rawHeaders['content-type'].startsWith('application/grpc');
    const ex: Exchange = {
      req,
      res,
      upgrade,
      listener,
      state,
      caller: ctx.identityFor(listener.workload),
      method: req.method ?? 'GET',
      authority: '',
      path: '/',
      query: '',
      headers: sanitizeRequestHeaders(rawHeaders, upgrade !== undefined),
      grpc,
      downstreamH2: h2,
      closing,
      requestId: '',
      startMs: performance.now(),
      deadline: 0,
      deadlineSource: '',
      routeName: '',
      errorCode: '',
      grpcStatus: '',
      resilience: undefined,
      holdsRequestSlot: false,
      flight: undefined,
    };
    ctx.inflight++;
    res.once('close', () => finish(ctx, ex));
    // Draining (the proxy, or this listener after a config change): finish this request, then close the connection.
    if (!h2 && closing()) (res as http.ServerResponse).setHeader('connection', 'close');
    const t = splitTarget(req.url ?? '/', hostHeader);
    if (!t || !t.authority) {
      ex.errorCode = 'bad_request';
      sendError(res, 'bad_request', t ? 'request has no Host header or :authority' : `cannot parse request target "${req.url}"`, { grpc });
      return;
    }
    ex.authority = t.authority;
    ex.path = t.path;
    handler(ex);
  };
}

function finish(ctx: HttpContext, ex: Exchange): void {
  ctx.inflight--;
  if (ex.timer) clearTimeout(ex.timer);
  if (ex.flight !== undefined) closeFlight(ex, ex.flight as Flight);
  if (ex.holdsRequestSlot) ex.resilience!.breaker.release('requests');
  const m = ctx.metrics;
  const [ns, name] = splitWorkload(ex.listener.workload);
  const ep = ex.endpoint;
  const em = ep ? meshMeta(ep) : undefined;
  const [dns, dname] = splitWorkload(em?.workload ?? '');
  let grpcStatus = ex.grpcStatus;
  if (!grpcStatus && ex.grpc) {
    const g = (ex.res as http.ServerResponse).getHeader?.('grpc-status');
    if (g !== undefined) grpcStatus = String(g);
  }
  const key = m.requestKey({
    reporter: 'source',
    source_workload: name,
    source_namespace: ns,
    source_principal: ex.caller?.spiffeId ?? 'unknown',
    destination_workload: dname || 'unknown',
    destination_namespace: dns || 'unknown',
    destination_service: ex.cluster?.config.service ?? 'unknown',
    destination_principal: em?.identity ?? 'unknown',
    route: ex.routeName || 'unknown',
    response_code: String(ex.res.headersSent || ex.res.writableEnded ? ex.res.statusCode : 0),
    grpc_status: grpcStatus,
    error_code: ex.errorCode,
    connection_security_policy: ep && isMutual(ep) ? 'mutual_tls' : 'none',
  });
  m.observeRequest(key, (performance.now() - ex.startMs) / 1000, declaredLength(ex.req.headers['content-length']), declaredLength(ex.res.getHeader('content-length')));
  m.finished('outbound', ex);
}

/** Body size from Content-Length (streamed bodies without it count as 0: cheap, and exact for most traffic). */
export function declaredLength(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : 0;
  return Number.isFinite(n) && n > 0 ? n : 0;
}

export function splitWorkload(w: string): [string, string] {
  const i = w.indexOf('/');
  return i < 0 ? ['', w] : [w.slice(0, i), w.slice(i + 1)];
}

/** An Upgrade request gets a ServerResponse bound to its socket so errors answer like any other request. */
export function upgradeResponse(req: http.IncomingMessage, socket: Socket): http.ServerResponse {
  const res = new http.ServerResponse(req);
  res.assignSocket(socket);
  res.shouldKeepAlive = false;
  // A locally generated answer ends the connection (nothing else will).
  res.once('finish', () => socket.end());
  return res;
}
