// The outbound HTTP layers, each one concern; assembled into a stack by http/outbound.ts.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { sendError, type TrellisErrorCode } from '../errors.js';
import { applyHeaderOps, hashKey, normalizePath, rewritePath, selectRoute, type PickContext } from '../policy-api.js';
import type { Exchange, Handler, Layer } from './exchange.js';
import { parseGrpcTimeout } from './headers.js';

/** Answers with a proxy-generated error and records the code on the exchange. */
export function reject(ex: Exchange, code: TrellisErrorCode, message: string, status?: number): void {
  ex.errorCode = code;
  if (!ex.downstreamH2 && !ex.res.headersSent && ex.closing()) (ex.res as { setHeader(n: string, v: string): void }).setHeader('connection', 'close');
  sendError(ex.res, code, message, { grpc: ex.grpc, requestId: ex.requestId, status });
}

/** Adds x-request-id when absent (the sanitize step already removed hop-by-hop and mesh-internal headers). */
export const requestId: Layer = (next) => (ex) => {
  const id = ex.headers['x-request-id'];
  if (typeof id === 'string' && id.length > 0 && id.length <= 200) ex.requestId = id;
  else ex.headers['x-request-id'] = ex.requestId = randomUUID();
  next(ex);
};

/** Pure route decision from (request, snapshot); local answers (no_route, redirect, direct) end here. */
export const route: Layer = (next) => (ex) => {
  const l = ex.listener;
  const table = l.routeConfigName ? ex.state.routes.get(l.routeConfigName) : undefined;
  if (!table) return reject(ex, 'no_route', `listener ${l.name}: route configuration ${l.routeConfigName ?? '(none)'} not received`);
  // Normalized once: routing, authorization and the upstream all see the same path.
  const n = normalizePath(ex.path, l.normalize);
  if (!n.ok) return reject(ex, 'bad_request', `listener ${l.name}: request path refused: ${n.reason}`);
  ex.path = n.path;
  ex.query = n.query;
  const d = selectRoute(table, { authority: ex.authority, path: n.path, query: n.query, method: ex.method, headers: ex.headers });
  switch (d.kind) {
    case 'no_route':
      return reject(ex, 'no_route', `${d.reason} (route configuration ${table.name ?? l.routeConfigName})`);
    case 'redirect': {
      ex.routeName = d.routeName;
      const h: Record<string, string | string[] | number | undefined> = { location: d.location, 'content-length': 0 };
      applyHeaderOps(h, d.responseHeaders);
      ex.res.writeHead(d.status, h as never);
      ex.res.end();
      return;
    }
    case 'direct': {
      ex.routeName = d.routeName;
      const body = d.body ?? '';
      const h: Record<string, string | string[] | number | undefined> = { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) };
      applyHeaderOps(h, d.responseHeaders);
      ex.res.writeHead(d.status, h as never);
      ex.res.end(body);
      return;
    }
  }
  ex.decision = d;
  ex.routeName = d.routeName;
  next(ex);
};

/** Fault injection decided by the route: a delay and/or an abort, each with its probability. */
export const fault: Layer = (next) => {
  const abortOrNext = (ex: Exchange) => {
    const abort = ex.decision!.fault?.abort;
    if (abort && (abort.probability >= 1 || Math.random() < abort.probability)) {
      if (abort.grpcStatus !== undefined && ex.grpc) {
        ex.errorCode = 'fault_injected';
        return sendGrpcFault(ex, abort.grpcStatus);
      }
      const status = abort.httpStatus ?? 503;
      return reject(ex, 'fault_injected', `route ${ex.routeName} injected a fault (HTTP ${status})`, status);
    }
    next(ex);
  };
  const afterDelay = (ex: Exchange) => {
    if (ex.res.writableEnded || ex.res.destroyed) return;
    abortOrNext(ex);
  };
  return (ex) => {
    const f = ex.decision!.fault;
    if (!f) return next(ex);
    const delay = f.delay;
    if (delay && delay.ms > 0 && (delay.probability >= 1 || Math.random() < delay.probability)) setTimeout(afterDelay, delay.ms, ex);
    else abortOrNext(ex);
  };
};

function sendGrpcFault(ex: Exchange, grpcStatus: number): void {
  sendError(ex.res, 'fault_injected', `route ${ex.routeName} injected a fault (gRPC status ${grpcStatus})`, {
    grpc: true,
    grpcStatus,
    requestId: ex.requestId,
  });
}

/** Route header operations and path/host rewrite. */
export const rewrite: Layer = (next) => (ex) => {
  const d = ex.decision!;
  if (d.requestHeaders) applyHeaderOps(ex.headers, d.requestHeaders);
  if (d.rewrite) {
    ex.path = rewritePath(ex.path, d.rewrite);
    if (d.rewrite.host) ex.authority = d.rewrite.host;
  }
  next(ex);
};

/** The route timeout and a gRPC caller's grpc-timeout both bound the request; the smaller wins. */
export const deadline: Layer = (next) => (ex) => {
  const routeMs = ex.decision?.timeoutMs ?? 0;
  const grpcMs = ex.grpc ? parseGrpcTimeout(ex.headers['grpc-timeout']) : undefined;
  let ms = routeMs > 0 ? routeMs : 0;
  ex.deadlineSource = `route ${ex.routeName} timeout ${routeMs}ms`;
  if (grpcMs !== undefined && (ms === 0 || grpcMs < ms)) {
    ms = grpcMs;
    ex.deadlineSource = `grpc-timeout ${grpcMs}ms`;
  }
  if (ms > 0) {
    ex.deadline = performance.now() + ms;
    ex.timer = setTimeout(onDeadline, ms, ex);
  }
  next(ex);
};

function onDeadline(ex: Exchange): void {
  ex.timer = undefined;
  if (ex.res.writableEnded) return;
  ex.abortUpstream?.();
  const where = ex.cluster ? ` waiting for cluster ${ex.cluster.config.name}` : '';
  reject(ex, 'upstream_timeout', `${ex.deadlineSource} exceeded${where}`);
}

/**
 * Reserved slot for the policy layers later work adds (retry, circuit breaker, outlier detection,
 * rate limit, authz): each is a Layer placed here by http/outbound.ts.
 */
export const passthrough: Layer = (next) => next;

const NO_CONTEXT: PickContext = Object.freeze({});

/** Picks an endpoint of the decided cluster. */
export const balance: Layer = (next) => (ex) => {
  const name = ex.decision!.cluster;
  const cs = ex.state.clusters.get(name);
  if (!cs) return reject(ex, 'no_healthy_upstream', `route ${ex.routeName}: cluster ${name} is not known to this proxy`);
  ex.cluster = cs;
  const policies = ex.decision!.hashPolicies;
  let ctx: PickContext = NO_CONTEXT;
  if (policies.length > 0) {
    ctx = { hash: hashKey(policies, { headers: ex.headers, sourceIp: ex.req.socket?.remoteAddress ?? '', query: ex.query }) };
  }
  const ep = cs.balancer.pick(ctx);
  if (!ep) {
    const n = cs.endpoints.length;
    if (n === 0) return reject(ex, 'no_healthy_upstream', `route ${ex.routeName}: cluster ${name} has no endpoints`);
    return reject(
      ex,
      'no_healthy_upstream',
      `route ${ex.routeName}: cluster ${name} has no healthy endpoint (${n} endpoint${n === 1 ? '' : 's'} known)`,
    );
  }
  ex.endpoint = ep;
  next(ex);
};

export type { Handler };
