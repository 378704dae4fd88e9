// The outbound terminal handler: sends a request in one or more tries (retry policy, per-try timeout, budget, breaker, outlier results).
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { UpstreamPool } from '../upstream/pool.js';
import type { UpstreamError } from '../upstream/connect.js';
import { h1Request, type H1Error, type H1Exchange } from '../upstream/h1-client.js';
import { upstreamClient, type UpstreamClient } from '../upstream/client-choice.js';
import { applyHeaderOps, hashKey, type EndpointInfo, type PickContext } from '../policy-api.js';
import type { ResilienceRegistry } from '../resilience/index.js';
import { backoffMs, MAX_RETRY_BODY_BYTES, retryFitsDeadline, shouldRetry, tryTimeoutMs, type AttemptOutcome } from '../resilience/index.js';
import type { Exchange, Handler, Headers } from './exchange.js';
import { sanitizeResponseHeaders } from './headers.js';
import { reject } from './layers.js';
import { createForward } from './forward.js';
import { fireMirrors, pickMirrors, type PickedMirror } from './outbound-mirror.js';
import { responseCut } from './rapid-reset.js';

const { NGHTTP2_FLAG_END_STREAM, NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = http2.constants;

/** Per-request try state; one small object per forwarded request. */
export class Flight {
  /** Tries started (1 = the first). */
  attempt = 0;
  /** The current try on node's http client (TRELLIS_UPSTREAM_CLIENT=node). */
  upReq: http.ClientRequest | undefined = undefined;
  /** The current try on the hand-written HTTP/1.1 client (the default). */
  h1x: H1Exchange | undefined = undefined;
  /** The current try holds a breaker 'pending' slot (waiting for a pooled connection). */
  holdsPending = false;
  stream: http2.ClientHttp2Stream | undefined = undefined;
  /** The balancer counted a start on ex.endpoint that has not ended yet. */
  tryOpen = false;
  /** A try's response head went downstream: no more retries. */
  committed = false;
  perTryTimer: NodeJS.Timeout | undefined = undefined;
  backoffTimer: NodeJS.Timeout | undefined = undefined;
  /** Holds a breaker 'retries' slot (from the retry decision until that retry's outcome). */
  holdsRetry = false;
  /** The whole request body, when buffered (replayable). */
  body: Buffer | undefined = undefined;
  bodyBytes = 0;
  bodyBuffered = true;
  /** The first try pipes the request (body not buffered); `prefix` holds chunks read before deciding so. */
  streamBody = false;
  prefix: Buffer[] | undefined = undefined;
  tried: Set<string> | undefined = undefined;
  replayed = false;
  /** A gRPC response head held back until its first message or trailers show whether to retry. */
  heldHead: (http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader) | undefined = undefined;
  constructor(
    readonly pool: UpstreamPool,
    readonly reg: ResilienceRegistry | undefined,
    readonly h2: boolean,
    readonly client: UpstreamClient = 'h1',
  ) {}
}

const NO_CONTEXT: PickContext = Object.freeze({});

/** The consistent-hash key of the request (undefined without hash policies). */
export function requestHash(ex: Exchange): number | undefined {
  const policies = ex.decision!.hashPolicies;
  if (policies.length === 0) return undefined;
  return hashKey(policies, { headers: ex.headers, sourceIp: ex.req.socket?.remoteAddress ?? '', query: ex.query });
}

/**
 * Picks an endpoint, never one outlier detection ejected nor (on a retry) one in `tried` while another
 * is left; falls back to ignoring `tried`, then ejections (better an ejected host than none, as Envoy's panic mode).
 */
export function pickEndpoint(ex: Exchange, hash: number | undefined, tried: ReadonlySet<string> | undefined): EndpointInfo | undefined {
  const b = ex.cluster!.balancer;
  const ejected = ex.resilience?.outlier?.ejectedSet(performance.now());
  const anyEjected = ejected !== undefined && ejected.size > 0;
  if (!anyEjected && tried === undefined) return b.pick(hash === undefined ? NO_CONTEXT : { hash });
  let excluded: ReadonlySet<string> | undefined = anyEjected ? ejected : undefined;
  if (tried !== undefined) {
    const both = new Set(tried);
    if (anyEjected) for (const id of ejected) both.add(id);
    excluded = both;
  }
  return b.pick({ hash, excluded }) ?? (tried !== undefined && anyEjected ? b.pick({ hash, excluded: ejected }) : undefined) ?? b.pick({ hash });
}

/** Whether the upstream speaks HTTP/2: gRPC and HTTP2 clusters. */
function wantsH2(ex: Exchange): boolean {
  const p = ex.upstreamProtocol ?? ex.cluster!.config.protocol;
  return p === 'GRPC' || p === 'HTTP2';
}

function hasBody(req: http.IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return (cl !== undefined && cl !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** The terminal handler of the outbound stack; Upgrade requests take the plain tunnel path of http/forward.ts. */
export function createOutboundForward(pool: UpstreamPool, reg?: ResilienceRegistry, client: UpstreamClient = upstreamClient()): Handler {
  const legacy = createForward(pool, client);
  return (ex) => {
    if (ex.upgrade) return legacy(ex);
    const f = new Flight(pool, reg, wantsH2(ex), client);
    ex.flight = f;
    const d = ex.decision!;
    const mirrors = d.mirrors.length > 0 ? pickMirrors(ex) : undefined;
    const req = ex.req as http.IncomingMessage;
    if (!ex.downstreamH2 && req.complete && !hasBody(req)) return begin(ex, f, mirrors);
    if (d.retry === undefined && mirrors === undefined) {
      // Nothing will replay the body: stream it (bodiless HTTP/2 requests end at once).
      f.streamBody = true;
      f.bodyBuffered = false;
      f.bodyBytes = 1;
      return startTry(ex, f);
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_RETRY_BODY_BYTES) {
      f.streamBody = true;
      f.bodyBuffered = false;
      f.bodyBytes = declared;
      return startTry(ex, f);
    }
    bufferBody(ex, f, mirrors);
  };
}

/** Reads the body into memory up to MAX_RETRY_BODY_BYTES; past that the first try streams it (and is never retried). */
function bufferBody(ex: Exchange, f: Flight, mirrors: PickedMirror[] | undefined): void {
  const req = ex.req as http.IncomingMessage;
  const chunks: Buffer[] = [];
  let n = 0;
  const onData = (c: Buffer) => {
    n += c.length;
    chunks.push(c);
    if (n <= MAX_RETRY_BODY_BYTES) return;
    req.off('data', onData);
    req.off('end', onEnd);
    req.pause();
    f.prefix = chunks;
    f.streamBody = true;
    f.bodyBuffered = false;
    f.bodyBytes = n;
    if (!ex.res.writableEnded) startTry(ex, f);
  };
  const onEnd = () => {
    req.off('data', onData);
    f.body = chunks.length === 0 ? undefined : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, n);
    f.bodyBytes = n;
    begin(ex, f, mirrors);
  };
  req.on('data', onData);
  req.once('end', onEnd);
}

function begin(ex: Exchange, f: Flight, mirrors: PickedMirror[] | undefined): void {
  if (ex.res.writableEnded || ex.res.destroyed) return;
  startTry(ex, f);
  if (mirrors !== undefined) fireMirrors(ex, f.pool, f.reg, mirrors, f.body, f.client);
}

function startTry(ex: Exchange, f: Flight): void {
  f.attempt++;
  if (f.h2) tryH2(ex, f);
  else if (f.client === 'node') tryNodeH1(ex, f);
  else tryH1(ex, f);
}

function armPerTry(ex: Exchange, f: Flight): void {
  const p = ex.decision!.retry;
  if (p === undefined || !(p.perTryTimeoutMs > 0)) return;
  const now = performance.now();
  // When the overall deadline comes first, its own timer answers.
  if (ex.deadline !== 0 && ex.deadline - now <= p.perTryTimeoutMs) return;
  f.perTryTimer = setTimeout(onPerTryTimeout, tryTimeoutMs(now, p.perTryTimeoutMs, ex.deadline), ex, f, f.attempt);
}

function sendBody(ex: Exchange, f: Flight, sink: NodeJS.WritableStream): void {
  if (f.streamBody) {
    f.streamBody = false;
    if (f.prefix !== undefined) {
      for (const c of f.prefix) sink.write(c);
      f.prefix = undefined;
    }
    (ex.req as NodeJS.ReadableStream).pipe(sink);
    return;
  }
  if (f.body !== undefined) sink.end(f.body);
  else {
    sink.end();
    if (f.attempt === 1 && !f.replayed) (ex.req as http.IncomingMessage).resume();
  }
}

// ---------------------------------------------------------------- try bookkeeping

/** The current try is over (failed, timed out or its response discarded): balancer, timers, retry slot. */
function endTry(ex: Exchange, f: Flight): void {
  if (f.perTryTimer !== undefined) {
    clearTimeout(f.perTryTimer);
    f.perTryTimer = undefined;
  }
  if (f.tryOpen) {
    f.tryOpen = false;
    ex.cluster!.balancer.onRequestEnd(ex.endpoint!);
  }
  releaseRetry(ex, f);
  releasePending(ex, f);
  f.upReq = undefined;
  f.h1x = undefined;
  f.stream = undefined;
}

function releasePending(ex: Exchange, f: Flight): void {
  if (f.holdsPending) {
    f.holdsPending = false;
    ex.resilience?.breaker.release('pending');
  }
}

function releaseRetry(ex: Exchange, f: Flight): void {
  if (f.holdsRetry) {
    f.holdsRetry = false;
    ex.resilience?.breaker.release('retries');
  }
}

/**
 * Stops everything in flight for this request (overall deadline, or the client went away). A try
 * waiting on the upstream counts as a timeout for outlier detection when `timedOut`.
 */
export function abortFlight(ex: Exchange, f: Flight, timedOut: boolean): void {
  if (f.backoffTimer !== undefined) {
    clearTimeout(f.backoffTimer);
    f.backoffTimer = undefined;
  }
  const up = f.upReq;
  const x = f.h1x;
  const st = f.stream;
  if (timedOut && !f.committed && (up !== undefined || x !== undefined || st !== undefined)) ex.resilience?.outlier?.onResult(ex.endpoint!.id, 'timeout');
  endTry(ex, f);
  up?.destroy();
  x?.abort();
  if (st !== undefined && !st.closed) st.close(NGHTTP2_CANCEL);
}

/** The exchange ended (response closed): release what the flight holds; cut the upstream if the response did not finish. */
export function closeFlight(ex: Exchange, f: Flight): void {
  if (f.backoffTimer !== undefined) {
    clearTimeout(f.backoffTimer);
    f.backoffTimer = undefined;
  }
  const up = f.upReq;
  const x = f.h1x;
  const st = f.stream;
  endTry(ex, f);
  if (responseCut(ex.res)) {
    up?.destroy();
    x?.abort();
  }
  if (st !== undefined && !st.closed) st.close(NGHTTP2_CANCEL);
}

const CONNECT_FAILURE: AttemptOutcome = Object.freeze({ kind: 'connect_failure' });
const RESET: AttemptOutcome = Object.freeze({ kind: 'reset' });
const PER_TRY_TIMEOUT: AttemptOutcome = Object.freeze({ kind: 'per_try_timeout' });

/**
 * After a try's outcome: the back-off to wait before the next try, or -1 for no retry. A retry needs the
 * policy's verdict, time left before the overall deadline, a breaker 'retries' slot and the retry budget.
 */
function retryGate(ex: Exchange, f: Flight, outcome: AttemptOutcome): number {
  releaseRetry(ex, f);
  const p = ex.decision!.retry;
  if (p === undefined) return -1;
  // Every gRPC call is a POST: its method says nothing about idempotency, the route's gRPC retryOn is the contract (as Envoy).
  const v = shouldRetry(p, f.attempt, outcome, { method: ex.method, bodyBytes: f.bodyBytes, bodyBuffered: f.bodyBuffered, retryNonIdempotent: ex.grpc });
  if (!v.retry) return -1;
  const now = performance.now();
  const wait = backoffMs(f.attempt, p.backoffBaseMs, p.backoffMaxMs);
  if (!retryFitsDeadline(now, wait, ex.deadline)) return -1;
  const r = ex.resilience;
  if (r !== undefined) {
    if (!r.breaker.tryAcquire('retries')) return -1;
    if (!r.budget.tryRetry(now)) {
      r.breaker.release('retries');
      return -1;
    }
    f.holdsRetry = true;
  }
  return wait;
}

function scheduleRetry(ex: Exchange, f: Flight, wait: number): void {
  f.backoffTimer = setTimeout(runRetry, wait, ex, f);
}

function runRetry(ex: Exchange, f: Flight): void {
  f.backoffTimer = undefined;
  if (ex.res.writableEnded || ex.res.destroyed) return releaseRetry(ex, f);
  const tried = (f.tried ??= new Set());
  tried.add(ex.endpoint!.id);
  const ep = pickEndpoint(ex, requestHash(ex), tried);
  if (ep === undefined) {
    releaseRetry(ex, f);
    return reject(ex, 'no_healthy_upstream', `route ${ex.routeName}: cluster ${ex.cluster!.config.name} has no endpoint left for retry ${f.attempt}`);
  }
  ex.endpoint = ep;
  startTry(ex, f);
}

function onPerTryTimeout(ex: Exchange, f: Flight, attempt: number): void {
  f.perTryTimer = undefined;
  if (f.attempt !== attempt || f.committed || ex.res.writableEnded || f.backoffTimer !== undefined) return;
  const up = f.upReq;
  const x = f.h1x;
  const st = f.stream;
  if (up === undefined && x === undefined && st === undefined) return;
  ex.resilience?.outlier?.onResult(ex.endpoint!.id, 'timeout');
  const wait = retryGate(ex, f, PER_TRY_TIMEOUT);
  endTry(ex, f);
  up?.destroy();
  x?.abort();
  if (st !== undefined && !st.closed) st.close(NGHTTP2_CANCEL);
  if (wait >= 0) return scheduleRetry(ex, f, wait);
  reject(ex, 'upstream_timeout', `route ${ex.routeName}: per-try timeout ${ex.decision!.retry!.perTryTimeoutMs}ms exceeded waiting for cluster ${ex.cluster!.config.name} (try ${attempt})`);
}

/** A try failed before any response: outlier result, then retry or answer with the failure. */
function onTryFailure(ex: Exchange, f: Flight, err: UpstreamError): void {
  const code = err.trellisCode ?? 'upstream_reset';
  if (code === 'overflow') {
    // The pool refused a connection (cluster max_connections): not the endpoint's fault, not retried.
    endTry(ex, f);
    return reject(ex, 'overflow', `route ${ex.routeName}: ${err.message}`);
  }
  const connect = code === 'upstream_connect_failure';
  ex.resilience?.outlier?.onResult(ex.endpoint!.id, connect ? 'connect_failure' : 'reset');
  const wait = ex.decision!.retry === undefined ? -1 : retryGate(ex, f, connect ? CONNECT_FAILURE : RESET);
  endTry(ex, f);
  if (wait >= 0) return scheduleRetry(ex, f, wait);
  upstreamFailure(ex, err, code);
}

function upstreamFailure(ex: Exchange, err: UpstreamError, code: NonNullable<UpstreamError['trellisCode']>): void {
  if (ex.res.writableEnded || ex.errorCode) return;
  const name = ex.cluster!.config.name;
  const retried = ex.flight !== undefined && (ex.flight as Flight).attempt > 1 ? ` (try ${(ex.flight as Flight).attempt})` : '';
  reject(ex, code, err.message.includes(name) ? `route ${ex.routeName}: ${err.message}${retried}` : `route ${ex.routeName} cluster ${name}: ${err.message}${retried}`);
}

/** gRPC status as the HTTP status outlier detection counts (Envoy maps them the same way). */
function grpcAsHttp(g: number): number {
  switch (g) {
    case 14:
      return 503;
    case 4:
      return 504;
    case 2:
    case 13:
    case 15:
      return 500;
    default:
      return 200;
  }
}

function responseHeaders(ex: Exchange, src: Headers): Headers {
  const h = sanitizeResponseHeaders(src);
  const ops = ex.decision!.responseHeaders;
  if (ops) applyHeaderOps(h, ops);
  if (ex.requestId && h['x-request-id'] === undefined) h['x-request-id'] = ex.requestId;
  if (!ex.downstreamH2 && ex.closing()) h.connection = 'close';
  return h;
}

// ---------------------------------------------------------------- HTTP/1.1 upstream

const REPLAYABLE = new Set(['GET', 'HEAD', 'OPTIONS']);

/** One try on the hand-written client: pooled keep-alive connection, response streamed with backpressure. */
function tryH1(ex: Exchange, f: Flight): void {
  const ep = ex.endpoint!;
  const cs = ex.cluster!;
  ex.headers.host = ex.authority;
  const p = f.pool.h1(cs.config, ep, ex.caller);
  const r = ex.resilience;
  if (r !== undefined && f.pool.wouldQueueH1(p, r.breaker.limits.connections)) {
    // Waiting for a connection: a pending request, refused fast past max_pending_requests.
    if (!r.breaker.tryAcquire('pending')) {
      if (f.attempt > 1) releaseRetry(ex, f);
      return reject(ex, 'overflow', `route ${ex.routeName}: cluster ${cs.config.name} circuit breaker max_pending_requests (${r.breaker.limits.pending}) reached`);
    }
    f.holdsPending = true;
  }
  const req = ex.req as http.IncomingMessage;
  let body: Buffer | Readable | undefined = f.body;
  let bodyPrefix: Buffer[] | undefined;
  let drainReq = false;
  if (f.streamBody) {
    f.streamBody = false;
    if (f.prefix === undefined && isBodiless(ex)) drainReq = true;
    else {
      body = req;
      bodyPrefix = f.prefix;
      f.prefix = undefined;
    }
  } else if (body === undefined && f.attempt === 1 && !f.replayed) drainReq = true;
  let x: H1Exchange | undefined;
  const res = ex.res as ServerResponse;
  const resume = () => x?.resume();
  try {
    x = h1Request(
      p,
      { method: ex.method, path: ex.query ? `${ex.path}?${ex.query}` : ex.path, headers: ex.headers, body, bodyPrefix },
      {
        // Called once the try has its connection: it no longer waits, so it is no longer pending.
        onSocket: () => releasePending(ex, f),
        onResponse: (status, headers) => onH1xResponse(ex, f, x!, status, headers as Headers),
        onData: (c) => {
          if (f.h1x !== x) return;
          if (!res.write(c)) {
            res.once('drain', resume);
            return false;
          }
        },
        onEnd: (t) => {
          if (f.h1x !== x) return;
          if (t !== undefined) res.addTrailers(t as Record<string, string>);
          res.end();
        },
        onError: (e) => onH1xError(ex, f, x!, e),
      },
    );
  } catch (err) {
    // A head the client refuses to write (bad_request): nothing was sent, not the endpoint's fault.
    releasePending(ex, f);
    if (f.attempt > 1) releaseRetry(ex, f);
    const e = err as UpstreamError;
    return upstreamFailure(ex, e, e.trellisCode ?? 'bad_request');
  }
  f.h1x = x;
  f.tryOpen = true;
  cs.balancer.onRequestStart(ep);
  armPerTry(ex, f);
  if (drainReq) req.resume();
}

/** An HTTP/1.1 request without content-length or transfer-encoding, or an HTTP/2 one whose headers ended the stream. */
function isBodiless(ex: Exchange): boolean {
  if (!ex.downstreamH2) return !hasBody(ex.req as http.IncomingMessage);
  const s = (ex.req as unknown as { stream?: { endAfterHeaders?: boolean } }).stream;
  return s?.endAfterHeaders === true;
}

function onH1xError(ex: Exchange, f: Flight, x: H1Exchange, err: H1Error): void {
  if (f.h1x !== x) return;
  releasePending(ex, f);
  if (f.committed) return upstreamFailure(ex, err, err.trellisCode);
  if (err.kind === 'request_body' || err.kind === 'invalid_request') {
    // The request side broke (client body ended early, framing): not the endpoint's fault, not retried.
    endTry(ex, f);
    return upstreamFailure(ex, err, err.trellisCode);
  }
  // The keep-alive race: see onH1Error.
  if (!f.replayed && err.retryable && f.bodyBytes === 0 && REPLAYABLE.has(ex.method) && !ex.res.writableEnded) {
    f.replayed = true;
    if (f.perTryTimer !== undefined) clearTimeout(f.perTryTimer);
    f.perTryTimer = undefined;
    f.tryOpen = false;
    f.h1x = undefined;
    ex.cluster!.balancer.onRequestEnd(ex.endpoint!);
    return tryH1(ex, f);
  }
  onTryFailure(ex, f, err);
}

function onH1xResponse(ex: Exchange, f: Flight, x: H1Exchange, status: number, headers: Headers): void {
  if (f.h1x !== x || ex.res.writableEnded) return x.discard();
  const o = ex.resilience?.outlier;
  if (o !== undefined) o.onResult(ex.endpoint!.id, status);
  if (ex.decision!.retry !== undefined) {
    const wait = retryGate(ex, f, { kind: 'response', status });
    if (wait >= 0) {
      // Drained, not destroyed: the connection goes back to the pool.
      x.discard();
      endTry(ex, f);
      return scheduleRetry(ex, f, wait);
    }
  }
  if (f.perTryTimer !== undefined) {
    clearTimeout(f.perTryTimer);
    f.perTryTimer = undefined;
  }
  f.committed = true;
  (ex.res as ServerResponse).writeHead(status, responseHeaders(ex, headers));
}

/** One try on node's http client (TRELLIS_UPSTREAM_CLIENT=node). */
function tryNodeH1(ex: Exchange, f: Flight): void {
  const ep = ex.endpoint!;
  const cs = ex.cluster!;
  ex.headers.host = ex.authority;
  const agent = f.pool.agent(cs.config, ep, ex.caller);
  const r = ex.resilience;
  let pending = false;
  if (r !== undefined && f.pool.wouldQueue(agent, r.breaker.limits.connections)) {
    // Waiting for a connection: a pending request, refused fast past max_pending_requests.
    if (!r.breaker.tryAcquire('pending')) {
      if (f.attempt > 1) releaseRetry(ex, f);
      return reject(ex, 'overflow', `route ${ex.routeName}: cluster ${cs.config.name} circuit breaker max_pending_requests (${r.breaker.limits.pending}) reached`);
    }
    pending = true;
  }
  const upReq = http.request({
    agent,
    host: ep.address,
    port: ep.port,
    method: ex.method,
    path: ex.query ? `${ex.path}?${ex.query}` : ex.path,
    headers: ex.headers as http.OutgoingHttpHeaders,
    setHost: false,
  });
  f.upReq = upReq;
  f.tryOpen = true;
  cs.balancer.onRequestStart(ep);
  armPerTry(ex, f);
  upReq.on('error', (err: UpstreamError) => onH1Error(ex, f, upReq, err));
  upReq.on('response', (upRes) => onH1Response(ex, f, upReq, upRes));
  if (pending) {
    upReq.once('socket', () => r!.breaker.release('pending'));
    upReq.once('close', () => {
      if (!upReq.socket) r!.breaker.release('pending');
    });
  }
  sendBody(ex, f, upReq);
}

function onH1Error(ex: Exchange, f: Flight, upReq: http.ClientRequest, err: UpstreamError): void {
  if (f.upReq !== upReq) return;
  if (!err.trellisCode) err.trellisCode = 'upstream_reset';
  if (f.committed) return upstreamFailure(ex, err, err.trellisCode);
  // A pooled keep-alive connection died as the request was written (the peer's idle timeout): a bodiless
  // idempotent request never reached the app, so it goes once more on another connection, not counted as a retry.
  if (!f.replayed && upReq.reusedSocket && f.bodyBytes === 0 && REPLAYABLE.has(ex.method) && !ex.res.writableEnded) {
    f.replayed = true;
    if (f.perTryTimer !== undefined) clearTimeout(f.perTryTimer);
    f.perTryTimer = undefined;
    f.tryOpen = false;
    ex.cluster!.balancer.onRequestEnd(ex.endpoint!);
    return tryNodeH1(ex, f);
  }
  onTryFailure(ex, f, err);
}

function onH1Response(ex: Exchange, f: Flight, upReq: http.ClientRequest, upRes: http.IncomingMessage): void {
  if (f.upReq !== upReq || ex.res.writableEnded) return void upRes.resume();
  const status = upRes.statusCode ?? 502;
  const o = ex.resilience?.outlier;
  if (o !== undefined) o.onResult(ex.endpoint!.id, status);
  if (ex.decision!.retry !== undefined) {
    const wait = retryGate(ex, f, { kind: 'response', status });
    if (wait >= 0) {
      // Drained, not destroyed: the connection goes back to the pool.
      upRes.resume();
      endTry(ex, f);
      return scheduleRetry(ex, f, wait);
    }
  }
  if (f.perTryTimer !== undefined) {
    clearTimeout(f.perTryTimer);
    f.perTryTimer = undefined;
  }
  f.committed = true;
  const res = ex.res as ServerResponse;
  res.writeHead(status, responseHeaders(ex, upRes.headers as Headers));
  upRes.on('end', () => {
    const t = upRes.trailers;
    for (const _ in t) {
      res.addTrailers(t as Record<string, string>);
      break;
    }
  });
  upRes.on('error', () => res.destroy());
  upRes.pipe(res);
}

// ---------------------------------------------------------------- HTTP/2 upstream (gRPC, HTTP2 clusters)

function tryH2(ex: Exchange, f: Flight): void {
  const ep = ex.endpoint!;
  const cs = ex.cluster!;
  let session: http2.ClientHttp2Session;
  let stream: http2.ClientHttp2Stream;
  const h = ex.headers as http2.OutgoingHttpHeaders;
  h[':method'] = ex.method;
  h[':path'] = ex.query ? `${ex.path}?${ex.query}` : ex.path;
  h[':authority'] = ex.authority;
  h[':scheme'] = 'http';
  try {
    session = f.pool.session(cs.config, ep, ex.caller);
    stream = session.request(h);
  } catch (err) {
    return onTryFailure(ex, f, err as UpstreamError);
  }
  f.stream = stream;
  f.tryOpen = true;
  cs.balancer.onRequestStart(ep);
  armPerTry(ex, f);
  const onSessionError = (err: UpstreamError) => {
    if (f.stream !== stream) return;
    if (f.committed) return upstreamFailure(ex, err, err.trellisCode ?? 'upstream_reset');
    onTryFailure(ex, f, err);
  };
  session.once('error', onSessionError);
  stream.on('error', (err: UpstreamError) => {
    if (!err.trellisCode) err.trellisCode = 'upstream_reset';
    onSessionError(err);
  });
  stream.on('close', () => {
    session.off('error', onSessionError);
    if (f.stream !== stream) return;
    if (!f.committed) {
      // Reset by the peer before any response.
      const e = new Error(`upstream stream closed (code ${stream.rstCode}) before a response`) as UpstreamError;
      e.trellisCode = 'upstream_reset';
      return onSessionError(e);
    }
    if (!ex.res.writableEnded && stream.rstCode) destroyDownstream(ex.res);
  });
  stream.on('response', (headers, flags) => onH2Response(ex, f, stream, headers, flags));
  stream.on('trailers', (trailers) => {
    if (f.stream !== stream) return;
    const held = f.heldHead;
    if (held !== undefined && !f.committed) {
      // Headers + trailers and no message: decide as for a trailers-only answer.
      f.heldHead = undefined;
      const g = trailers['grpc-status'];
      decideH2(ex, f, stream, held, 200, g === undefined ? undefined : Number(g), 0);
      if (f.stream !== stream) return;
    }
    if (trailers['grpc-status'] !== undefined) ex.grpcStatus = String(trailers['grpc-status']);
    (ex.res as ServerResponse).addTrailers(sanitizeResponseHeaders(trailers as Headers) as Record<string, string>);
  });
  sendBody(ex, f, stream);
}

type H2Head = http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader;

function onH2Response(ex: Exchange, f: Flight, stream: http2.ClientHttp2Stream, headers: H2Head, flags: number): void {
  if (f.stream !== stream || ex.res.writableEnded) return;
  const status = Number(headers[':status'] ?? 502);
  const gs = headers['grpc-status'];
  if (gs === undefined && ex.grpc && status === 200 && ex.decision!.retry !== undefined && !(flags & NGHTTP2_FLAG_END_STREAM)) {
    // Most gRPC servers send an error as headers + trailers, not trailers-only: hold the head until the
    // first message (commit) or the trailers (their grpc-status may call for a retry).
    f.heldHead = headers;
    stream.once('data', (chunk: Buffer) => {
      if (f.stream !== stream || f.committed || ex.res.writableEnded) return;
      f.heldHead = undefined;
      commitH2(ex, f, stream, headers, status, 0, chunk);
    });
    return;
  }
  decideH2(ex, f, stream, headers, status, gs === undefined ? undefined : Number(gs), flags);
}

/** Outlier result and retry decision for a try's response (head, or held head plus trailers); commits it when not retried. */
function decideH2(ex: Exchange, f: Flight, stream: http2.ClientHttp2Stream, headers: H2Head, status: number, grpcStatus: number | undefined, flags: number): void {
  const o = ex.resilience?.outlier;
  if (o !== undefined) o.onResult(ex.endpoint!.id, grpcStatus !== undefined && grpcStatus !== 0 && status < 300 ? grpcAsHttp(grpcStatus) : status);
  if (ex.decision!.retry !== undefined) {
    const wait = retryGate(ex, f, { kind: 'response', status, grpcStatus });
    if (wait >= 0) {
      endTry(ex, f);
      if (!stream.closed) stream.close(NGHTTP2_CANCEL);
      return scheduleRetry(ex, f, wait);
    }
  }
  commitH2(ex, f, stream, headers, status, flags, undefined);
}

function commitH2(ex: Exchange, f: Flight, stream: http2.ClientHttp2Stream, headers: H2Head, status: number, flags: number, first: Buffer | undefined): void {
  if (f.perTryTimer !== undefined) {
    clearTimeout(f.perTryTimer);
    f.perTryTimer = undefined;
  }
  f.committed = true;
  const out = responseHeaders(ex, headers as Headers);
  const gs = headers['grpc-status'];
  if (gs !== undefined) ex.grpcStatus = String(gs);
  const res = ex.res;
  const h2res = (res as Http2ServerResponse).stream;
  if (flags & NGHTTP2_FLAG_END_STREAM && h2res && typeof h2res.respond === 'function') {
    // gRPC trailers-only: the headers frame itself must end the stream.
    if (!h2res.destroyed) h2res.respond({ ...out, ':status': status }, { endStream: true });
    return;
  }
  res.writeHead(status, out as http.OutgoingHttpHeaders);
  if (first !== undefined) (res as ServerResponse).write(first);
  stream.pipe(res as NodeJS.WritableStream);
}

function destroyDownstream(res: ServerResponse | Http2ServerResponse): void {
  const s = (res as Http2ServerResponse).stream;
  if (s && typeof s.close === 'function') s.close(NGHTTP2_INTERNAL_ERROR);
  else (res as ServerResponse).destroy();
}
