// The inbound HTTP stack (L7 mode): after mTLS, requests are parsed, checked by the chain's security policy
// (JWT, authorization, rate limit), given the caller's identity (x-forwarded-client-cert) and forwarded to the app.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { InboundChain, ListenerConfig } from '../config/types.js';
import type { ClusterState, StateStore } from '../state.js';
import type { UpstreamPool } from '../upstream/pool.js';
import type { ProxyMetrics } from '../../telemetry/proxy-metrics.js';
import { timeDispatch } from '../../telemetry/request-events.js';
import type { WorkloadTls } from '../tls/identity.js';
import { ERROR_STATUS, writeRawError } from '../errors.js';
import { reject } from './layers.js';
import { authzFiltersOf } from '../authz/index.js';
import { EMPTY_HEADER_OPS } from '../route/headers.js';
import { createBalancer, type EndpointInfo, type ForwardDecision } from '../policy-api.js';
import { stack, type Exchange, type Handler, type Layer } from './exchange.js';
import { MAX_REQUEST_HEADER_BYTES, MAX_REQUEST_HEADERS, refuseRequestHead, sanitizeRequestHeaders } from './headers.js';
import { guardRapidReset, responseCut } from './rapid-reset.js';
import { trackConnections } from './track-connections.js';
import { createForward } from './forward.js';
import { declaredLength, splitWorkload, upgradeResponse } from './outbound.js';
import { inboundPolicyLayers, type InboundExchange, type InboundPolicyDeps, type LogFn } from './inbound-policy.js';
import type { InboundPolicies, InboundPolicy } from '../inbound-policy/policy.js';
import { clientIp } from '../inbound-policy/request.js';

/** What the listener learned about a connection before handing it to the HTTP server. */
export interface InboundConnInfo {
  listenerName: string;
  /** The chain chosen at accept time; each request re-resolves it against the newest config. */
  chain: InboundChain;
  /** Verified SPIFFE ID of the caller; undefined for plaintext (PERMISSIVE). */
  peer?: string;
}

const INFO = Symbol('trellis.inbound');

export function tagConnection(socket: Socket, info: InboundConnInfo): void {
  (socket as Socket & { [INFO]?: InboundConnInfo })[INFO] = info;
}

function connInfo(req: http.IncomingMessage | http2.Http2ServerRequest): InboundConnInfo | undefined {
  const s = (req as http2.Http2ServerRequest).stream?.session?.socket ?? req.socket;
  return (s as unknown as { [INFO]?: InboundConnInfo })?.[INFO];
}

export interface InboundHttpContext {
  store: StateStore;
  pool: UpstreamPool;
  metrics: ProxyMetrics;
  identityFor(workload: string): WorkloadTls | undefined;
  draining: boolean;
  inflight: number;
}

/** The verified caller, as Envoy's x-forwarded-client-cert (client-supplied values were stripped before). */
const callerIdentity: Layer = (next) => (ex) => {
  const peer = (ex as InboundExchange).peer;
  if (peer) ex.headers['x-forwarded-client-cert'] = `By=${(ex as InboundExchange).local};URI=${peer}`;
  next(ex);
};

/** inbound: normalize -> JWT -> authz -> rate limit -> caller identity -> forward to the app. */
export function inboundStack(pool: UpstreamPool, deps: InboundPolicyDeps): Handler {
  return stack([...inboundPolicyLayers(deps), callerIdentity], timeDispatch(createForward(pool)));
}

/**
 * The chain a request on an already open connection answers to under the newest config: the same chain
 * object, or the one that replaced it for the same port and transport. Undefined when the config no longer
 * takes such connections (a port removed, or plaintext no longer accepted).
 */
export function currentChain(listener: ListenerConfig, accepted: InboundChain, tlsConn: boolean): InboundChain | undefined {
  const chains = listener.chains;
  if (chains.includes(accepted)) return accepted;
  for (const c of chains) {
    if (c.destinationPort !== accepted.destinationPort) continue;
    if (tlsConn ? c.transport !== 'raw_buffer' : c.transport !== 'tls') return c;
  }
  return undefined;
}

const decisions = new Map<string, ForwardDecision>();
function decisionFor(cluster: string): ForwardDecision {
  let d = decisions.get(cluster);
  if (!d) {
    d = Object.freeze({
      kind: 'forward',
      routeName: cluster,
      virtualHost: 'inbound',
      cluster,
      timeoutMs: 0,
      requestHeaders: EMPTY_HEADER_OPS,
      responseHeaders: EMPTY_HEADER_OPS,
      mirrors: [],
      hashPolicies: [],
      filterConfig: {},
    }) as ForwardDecision;
    if (decisions.size < 10_000) decisions.set(cluster, d);
  }
  return d;
}

/** The app's cluster from CDS, or one made from the contract's name `inbound|<appPort>|ns/name` before CDS arrives. */
const fallbackClusters = new Map<string, ClusterState>();
function appCluster(store: StateStore, chain: InboundChain): ClusterState | undefined {
  const cs = store.current.clusters.get(chain.cluster);
  if (cs && cs.endpoints.length) return cs;
  let f = fallbackClusters.get(chain.cluster);
  if (f) return f;
  const m = /^inbound\|(\d+)\|/.exec(chain.cluster);
  if (!m) return undefined;
  const endpoints: EndpointInfo[] = [{ id: `127.0.0.1:${m[1]}`, address: '127.0.0.1', port: Number(m[1]), weight: 1, healthy: true, locality: {}, metadata: {} }];
  f = {
    config: { name: chain.cluster, type: 'STATIC', edsServiceName: chain.cluster, connectTimeoutMs: 5000, lbPolicy: 'ROUND_ROBIN', localityAware: false, protocol: chain.protocol },
    endpoints,
    balancer: createBalancer({ policy: 'ROUND_ROBIN', endpoints }),
    hasEndpoints: true,
  };
  fallbackClusters.set(chain.cluster, f);
  return f;
}

/** HTTP/1.1 and HTTP/2 servers (not listening) that the inbound listener hands decrypted connections to. */
export function createInboundHttpServers(ctx: InboundHttpContext, fallback: ListenerConfig, policies: InboundPolicies, log: LogFn) {
  const handler = inboundStack(ctx.pool, { metrics: ctx.metrics, log });
  /** Connections whose request head was refused: the parser may still fail on the bytes after it, which needs no second answer. */
  const answered = new WeakSet<Socket>();
  const onRequest = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse, upgrade?: Exchange['upgrade']): void => {
    const info = connInfo(req);
    const state = ctx.store.current;
    const listener = (info && state.listeners.get(info.listenerName)) ?? fallback;
    const h2 = req.httpVersionMajor === 2;
    const rawHeaders = req.headers as Record<string, string | string[] | undefined>;
    const grpc = typeof rawHeaders['content-type'] === 'string' && rawHeaders['content-type'].startsWith('application/grpc');
    const local = ctx.identityFor(listener.workload);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const chain = info && currentChain(listener, info.chain, info.peer !== undefined);
    const ex: InboundExchange = {
      req,
      res,
      upgrade,
      listener,
      state,
      caller: undefined,
      method: req.method ?? 'GET',
      authority: ((h2 ? rawHeaders[':authority'] : undefined) ?? rawHeaders.host ?? '') as string,
      path: q < 0 ? url : url.slice(0, q),
      query: q < 0 ? '' : url.slice(q + 1),
      headers: sanitizeRequestHeaders(rawHeaders, upgrade !== undefined),
      grpc,
      downstreamH2: h2,
      closing: () => ctx.draining,
      requestId: typeof rawHeaders['x-request-id'] === 'string' ? rawHeaders['x-request-id'] : '',
      startMs: performance.now(),
      deadline: 0,
      deadlineSource: '',
      routeName: info?.chain.cluster ?? '',
      errorCode: '',
      grpcStatus: '',
      peer: info?.peer,
      local: local?.spiffeId ?? '',
      chain: chain ?? info?.chain ?? NO_CHAIN,
      policy: NO_POLICY,
      sourceIp: clientIp(req.socket?.remoteAddress ?? (req as http2.Http2ServerRequest).stream?.session?.socket?.remoteAddress),
      policyHost: '',
    };
    ctx.inflight++;
    res.once('close', () => finishInbound(ctx, ex));
    // Hostile heads (smuggling, injection, oversized) are answered here, before policy, and never reach the app.
    const bad = refuseRequestHead(req.rawHeaders, url, h2);
    if (bad) {
      if (!h2) {
        (res as http.ServerResponse).setHeader('connection', 'close');
        answered.add(req.socket);
      }
      return reject(ex, bad.code, `inbound listener ${listener.name}: ${bad.message}`);
    }
    if (!info) return reject(ex, 'bad_request', `listener ${listener.name}: connection without inbound context`);
    if (!chain) {
      if (!info.peer && listener.chains.some((c) => c.transport === 'tls' && c.destinationPort === info.chain.destinationPort)) {
        return reject(ex, 'mtls_required', `listener ${listener.name} now requires mutual TLS for port ${info.chain.destinationPort ?? '*'}`);
      }
      return reject(ex, 'no_route', `listener ${listener.name} no longer serves port ${info.chain.destinationPort ?? '*'} on this connection's transport`);
    }
    ex.routeName = chain.cluster;
    try {
      ex.policy = policies.forChain(chain);
    } catch (err) {
      // Policy that cannot be built must not open the door.
      log('error', `listener ${listener.name}: inbound policy for ${chain.cluster} could not be built: ${(err as Error).message}`);
      ex.policy = DENY_POLICY;
    }
    const cs = appCluster(ctx.store, chain);
    const ep = cs?.balancer.pick({});
    if (!cs || !ep) return reject(ex, 'no_healthy_upstream', `listener ${listener.name}: no app address for ${chain.cluster}`);
    ex.decision = decisionFor(chain.cluster);
    ex.cluster = cs;
    ex.endpoint = ep;
    ex.upstreamProtocol = chain.protocol;
    handler(ex);
  };
  const h1 = trackConnections(
    http.createServer({ keepAliveTimeout: 65_000, headersTimeout: 30_000, requestTimeout: 300_000, maxHeaderSize: MAX_REQUEST_HEADER_BYTES }, onRequest),
  );
  // One more than the limit so that an over-limit request is seen (node truncates the list silently) and refused.
  h1.maxHeadersCount = MAX_REQUEST_HEADERS + 1;
  h1.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => onRequest(req, upgradeResponse(req, socket), { socket, head }));
  h1.on('connect', (_req: http.IncomingMessage, socket: Socket) => {
    countRefused(socket, 'bad_request');
    writeRawError(socket, 'bad_request', `inbound listener ${fallback.name}: CONNECT tunnels are not supported`);
  });
  h1.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') return void socket.destroy();
    if (answered.has(socket)) return void socket.end();
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      countRefused(socket, 'headers_too_large');
      writeRawError(socket, 'headers_too_large', `inbound listener ${fallback.name}: request headers exceed ${MAX_REQUEST_HEADER_BYTES} bytes`);
    } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      writeRawError(socket, 'request_timeout', `inbound listener ${fallback.name}: the request was not received in time`);
    } else {
      countRefused(socket, 'bad_request');
      writeRawError(socket, 'bad_request', `inbound listener ${fallback.name}: malformed HTTP request (${err.code ?? err.message})`);
    }
  });
  /** A head the parser refused never becomes an exchange; it is still counted as a request (reporter destination). */
  const countRefused = (socket: Socket, code: 'bad_request' | 'headers_too_large') => {
    const peer = (socket as Socket & { [INFO]?: InboundConnInfo })[INFO]?.peer;
    refusedAtDestination(ctx.metrics, peer, fallback.workload, ctx.identityFor(fallback.workload)?.spiffeId, code, ERROR_STATUS[code]);
  };
  const sessions = new Set<http2.ServerHttp2Session>();
  const h2 = http2.createServer(
    { maxSessionMemory: 64, maxHeaderListPairs: MAX_REQUEST_HEADERS + 8, settings: { maxHeaderListSize: MAX_REQUEST_HEADER_BYTES + 1024 } },
    onRequest,
  );
  h2.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
    guardRapidReset(s, () => log('info', `inbound listener ${fallback.name}: closed an HTTP/2 connection from ${s.socket?.remoteAddress ?? '?'}: too many streams reset before an answer (rapid reset)`));
  });
  h2.on('sessionError', () => {});
  return {
    h1,
    h2,
    drain(): void {
      h1.closeIdleConnections();
      for (const s of sessions) s.close();
    },
  };
}

const NO_CHAIN: InboundChain = Object.freeze({ transport: 'any', mtls: 'STRICT', decidedBy: 'default', protocol: 'HTTP', cluster: '', alpn: [], httpFilters: [] }) as InboundChain;
const NO_POLICY: InboundPolicy = Object.freeze({ security: authzFiltersOf([]), stripHeaders: [], escapedSlashes: 'reject', problems: [], keys: [] }) as InboundPolicy;
const DENY_POLICY: InboundPolicy = Object.freeze({ ...NO_POLICY, denyAll: 'inbound policy could not be built' }) as InboundPolicy;

function finishInbound(ctx: InboundHttpContext, ex: InboundExchange): void {
  ctx.inflight--;
  // A reset HTTP/2 stream cancels the request it started at the app (the forwarder alone misses resets on h2).
  if (responseCut(ex.res)) ex.abortUpstream?.();
  const [dns, dname] = splitWorkload(ex.listener.workload);
  const [sns, sname] = ex.peer ? spiffeParts(ex.peer) : ['unknown', 'unknown'];
  let grpcStatus = ex.grpcStatus;
  if (!grpcStatus && ex.grpc) {
    const g = (ex.res as http.ServerResponse).getHeader?.('grpc-status');
    if (g !== undefined) grpcStatus = String(g);
  }
  const m = ctx.metrics;
  const key = m.requestKey({
    reporter: 'destination',
    source_workload: sname,
    source_namespace: sns,
    source_principal: ex.peer ?? 'unknown',
    destination_workload: dname,
    destination_namespace: dns,
    destination_service: 'unknown',
    destination_principal: ex.local || 'unknown',
    route: ex.routeName || 'unknown',
    response_code: String(ex.res.headersSent || ex.res.writableEnded ? ex.res.statusCode : 0),
    grpc_status: grpcStatus,
    error_code: ex.errorCode,
    connection_security_policy: ex.peer ? 'mutual_tls' : 'none',
  });
  m.observeRequest(key, (performance.now() - ex.startMs) / 1000, declaredLength(ex.req.headers['content-length']), declaredLength(ex.res.getHeader('content-length')));
  m.finished('inbound', ex);
}

/** Counts a request the inbound answered itself before it became an exchange (reporter destination). */
export function refusedAtDestination(metrics: ProxyMetrics, peer: string | undefined, workload: string, local: string | undefined, code: string, status: number): void {
  const [sns, sname] = peer ? spiffeParts(peer) : ['unknown', 'unknown'];
  const [dns, dname] = splitWorkload(workload);
  metrics.refusedRequest(
    {
      reporter: 'destination',
      source_workload: sname,
      source_namespace: sns,
      source_principal: peer,
      destination_workload: dname,
      destination_namespace: dns,
      destination_principal: local,
      connection_security_policy: peer ? 'mutual_tls' : 'none',
    },
    code,
    status,
  );
}

/** spiffe://td/ns/NS/sa/SA -> [NS, SA] (the service account stands in for the workload name at the destination). */
export function spiffeParts(id: string): [string, string] {
  const m = /\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id);
  return m ? [m[1], m[2]] : ['unknown', 'unknown'];
}
