// The terminal HTTP handler: sends the request to the picked endpoint (HTTP/1.1 pooled, HTTP/2 multiplexed, or an Upgrade tunnel).
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { UpstreamPool } from '../upstream/pool.js';
import { openUpstream, type UpstreamError } from '../upstream/connect.js';
import { h1Request, type H1Exchange } from '../upstream/h1-client.js';
import { upstreamClient, type UpstreamClient } from '../upstream/client-choice.js';
import { applyHeaderOps } from '../policy-api.js';
import type { Exchange, Handler, Headers } from './exchange.js';
import { sanitizeResponseHeaders } from './headers.js';
import { reject } from './layers.js';

const { NGHTTP2_FLAG_END_STREAM } = http2.constants;

function upstreamFailure(ex: Exchange, err: UpstreamError): void {
  if (ex.res.writableEnded || ex.errorCode) return;
  const code = err.trellisCode ?? 'upstream_reset';
  const where = `route ${ex.routeName} cluster ${ex.cluster!.config.name}`;
  reject(ex, code, err.message.includes(ex.cluster!.config.name) ? `route ${ex.routeName}: ${err.message}` : `${where}: ${err.message}`);
}

function responseHeaders(ex: Exchange, src: Headers): Headers {
  const h = sanitizeResponseHeaders(src);
  const ops = ex.decision!.responseHeaders;
  if (ops) applyHeaderOps(h, ops);
  if (ex.requestId && h['x-request-id'] === undefined) h['x-request-id'] = ex.requestId;
  if (!ex.downstreamH2 && ex.closing()) h.connection = 'close';
  return h;
}

/** Whether the upstream speaks HTTP/2: gRPC and HTTP2 clusters (needed for trailers through an L4 inbound to the app). */
function wantsH2(ex: Exchange): boolean {
  const p = ex.upstreamProtocol ?? ex.cluster!.config.protocol;
  return p === 'GRPC' || p === 'HTTP2';
}

/** `client`: the HTTP/1.1 upstream client (TRELLIS_UPSTREAM_CLIENT, read when the handler is built). */
export function createForward(pool: UpstreamPool, client: UpstreamClient = upstreamClient()): Handler {
  const h1 = client === 'node' ? forwardNodeH1 : forwardH1;
  return (ex) => {
    if (ex.upgrade) return forwardUpgrade(ex);
    if (wantsH2(ex)) return forwardH2(ex, pool);
    h1(ex, pool);
  };
}

const REPLAYABLE = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A pooled keep-alive connection can die just as a request is written to it (the peer's idle timeout).
 * A bodiless idempotent request that failed on a reused connection before any response byte never
 * reached the app: send it once more on another connection instead of answering upstream_reset.
 */
function canReplay(ex: Exchange, upReq: http.ClientRequest, responded: boolean): boolean {
  if (responded || !upReq.reusedSocket || !REPLAYABLE.has(ex.method)) return false;
  const req = ex.req as http.IncomingMessage;
  return req.complete && !hasBody(req);
}

function hasBody(req: http.IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return (cl !== undefined && cl !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** An HTTP/1.1 request without content-length or transfer-encoding, or an HTTP/2 one whose headers ended the stream. */
function isBodiless(ex: Exchange): boolean {
  if (!ex.downstreamH2) return !hasBody(ex.req as http.IncomingMessage);
  const s = (ex.req as unknown as { stream?: { endAfterHeaders?: boolean } }).stream;
  return s?.endAfterHeaders === true;
}

/** HTTP/1.1 on the hand-written client (the default): pooled keep-alive connection, response streamed with backpressure. */
function forwardH1(ex: Exchange, pool: UpstreamPool, replay = false): void {
  const ep = ex.endpoint!;
  const cs = ex.cluster!;
  ex.headers.host = ex.authority;
  const req = ex.req as http.IncomingMessage;
  const res = ex.res as ServerResponse;
  const bodiless = replay || isBodiless(ex);
  let x: H1Exchange;
  const resume = () => x.resume();
  try {
    x = h1Request(
      pool.h1(cs.config, ep, ex.caller),
      { method: ex.method, path: ex.query ? `${ex.path}?${ex.query}` : ex.path, headers: ex.headers, body: bodiless ? undefined : req },
      {
        onResponse: (status, headers) => res.writeHead(status, responseHeaders(ex, headers as Headers)),
        onData: (c) => {
          if (!res.write(c)) {
            res.once('drain', resume);
            return false;
          }
        },
        onEnd: (t) => {
          if (t !== undefined) res.addTrailers(t as Record<string, string>);
          res.end();
        },
        onError: (e) => {
          // The keep-alive race (see canReplay); after the response head, reject() resets the downstream.
          if (!replay && e.retryable && bodiless && REPLAYABLE.has(ex.method) && !ex.errorCode && !res.writableEnded) return forwardH1(ex, pool, true);
          upstreamFailure(ex, e);
        },
      },
    );
  } catch (err) {
    // A head the client refuses to write: nothing was sent (bad_request).
    return upstreamFailure(ex, err as UpstreamError);
  }
  ex.abortUpstream = () => x.abort();
  if (replay) return;
  cs.balancer.onRequestStart(ep);
  res.once('close', () => {
    cs.balancer.onRequestEnd(ep);
    // The client went away mid-response: stop the upstream side too (a finished exchange keeps its pooled socket).
    if (!res.writableFinished) ex.abortUpstream?.();
  });
  if (bodiless) req.resume();
}

/** HTTP/1.1 on node's http client (TRELLIS_UPSTREAM_CLIENT=node). */
function forwardNodeH1(ex: Exchange, pool: UpstreamPool, replay = false): void {
  const ep = ex.endpoint!;
  const cs = ex.cluster!;
  ex.headers.host = ex.authority;
  const upReq = http.request({
    agent: pool.agent(cs.config, ep, ex.caller),
    host: ep.address,
    port: ep.port,
    method: ex.method,
    path: ex.query ? `${ex.path}?${ex.query}` : ex.path,
    headers: ex.headers as http.OutgoingHttpHeaders,
    setHost: false,
  });
  if (!replay) cs.balancer.onRequestStart(ep);
  let responded = false;
  ex.abortUpstream = () => upReq.destroy();
  upReq.on('error', (err: UpstreamError) => {
    if (!replay && !ex.errorCode && !ex.res.writableEnded && canReplay(ex, upReq, responded)) return forwardNodeH1(ex, pool, true);
    if (!err.trellisCode) err.trellisCode = 'upstream_reset';
    upstreamFailure(ex, err);
  });
  upReq.on('response', (upRes) => {
    responded = true;
    const res = ex.res as ServerResponse;
    res.writeHead(upRes.statusCode ?? 502, responseHeaders(ex, upRes.headers as Headers));
    upRes.on('end', () => {
      const t = upRes.trailers;
      for (const _ in t) {
        res.addTrailers(t as Record<string, string>);
        break;
      }
    });
    upRes.on('error', () => res.destroy());
    upRes.pipe(res);
  });
  if (!replay) {
    ex.res.once('close', () => {
      cs.balancer.onRequestEnd(ep);
      // The client went away mid-response: stop the upstream side too (a finished exchange keeps its pooled socket).
      if (!ex.res.writableFinished) ex.abortUpstream?.();
    });
  }
  const req = ex.req as http.IncomingMessage;
  if (replay || (req.complete && !hasBody(req))) {
    // Bodiless and fully parsed (most GETs): no stream plumbing needed.
    upReq.end();
    if (!replay) req.resume();
  } else req.pipe(upReq);
}

function forwardH2(ex: Exchange, pool: UpstreamPool): void {
  const ep = ex.endpoint!;
  const cs = ex.cluster!;
  let session: http2.ClientHttp2Session;
  try {
    session = pool.session(cs.config, ep, ex.caller);
  } catch (err) {
    return upstreamFailure(ex, err as UpstreamError);
  }
  const h = ex.headers as http2.OutgoingHttpHeaders;
  h[':method'] = ex.method;
  h[':path'] = ex.query ? `${ex.path}?${ex.query}` : ex.path;
  h[':authority'] = ex.authority;
  h[':scheme'] = 'http';
  let stream: http2.ClientHttp2Stream;
  try {
    stream = session.request(h);
  } catch (err) {
    return upstreamFailure(ex, err as UpstreamError);
  }
  cs.balancer.onRequestStart(ep);
  ex.abortUpstream = () => stream.close(http2.constants.NGHTTP2_CANCEL);
  const onSessionError = (err: UpstreamError) => upstreamFailure(ex, err);
  session.once('error', onSessionError);
  stream.on('error', (err: UpstreamError) => {
    if (!err.trellisCode) err.trellisCode = 'upstream_reset';
    upstreamFailure(ex, err);
  });
  stream.on('close', () => {
    session.off('error', onSessionError);
    // Reset by the peer before any response: report it (a normal end has already finished the response).
    if (!ex.res.headersSent && !ex.errorCode && !ex.res.writableEnded) {
      const e = new Error(`upstream stream closed (code ${stream.rstCode}) before a response`) as UpstreamError;
      e.trellisCode = 'upstream_reset';
      upstreamFailure(ex, e);
    } else if (!ex.res.writableEnded && stream.rstCode && stream.rstCode !== 0) {
      destroyDownstream(ex.res);
    }
  });
  stream.on('response', (headers, flags) => {
    const status = Number(headers[':status'] ?? 502);
    const out = responseHeaders(ex, headers as Headers);
    if (headers['grpc-status'] !== undefined) ex.grpcStatus = String(headers['grpc-status']);
    const res = ex.res;
    const h2res = (res as Http2ServerResponse).stream;
    if (flags & NGHTTP2_FLAG_END_STREAM && h2res && typeof h2res.respond === 'function') {
      // gRPC trailers-only: the headers frame itself must end the stream.
      if (!h2res.destroyed) h2res.respond({ ...out, ':status': status }, { endStream: true });
      return;
    }
    res.writeHead(status, out as http.OutgoingHttpHeaders);
    stream.pipe(res as NodeJS.WritableStream);
  });
  stream.on('trailers', (trailers) => {
    if (trailers['grpc-status'] !== undefined) ex.grpcStatus = String(trailers['grpc-status']);
    const t = sanitizeResponseHeaders(trailers as Headers);
    (ex.res as ServerResponse).addTrailers(t as Record<string, string>);
  });
  ex.res.once('close', () => {
    cs.balancer.onRequestEnd(ep);
    if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
  });
  (ex.req as NodeJS.ReadableStream).pipe(stream);
}

function destroyDownstream(res: ServerResponse | Http2ServerResponse): void {
  const s = (res as Http2ServerResponse).stream;
  if (s && typeof s.close === 'function') s.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  else (res as ServerResponse).destroy();
}

const MAX_HEAD = 64 * 1024;

/** WebSocket and other HTTP/1.1 upgrades: the tunnel is spliced only when the upstream answers 101. */
function forwardUpgrade(ex: Exchange): void {
  const { socket: client, head } = ex.upgrade!;
  const ep = ex.endpoint!;
  const cs = ex.cluster!;
  const up = openUpstream(cs.config, ep, ex.caller, ['http/1.1']);
  let spliced = false;
  ex.abortUpstream = () => up.destroy();
  up.on('error', (err: UpstreamError) => {
    if (!spliced && !ex.errorCode) upstreamFailure(ex, err);
    else client.destroy();
  });
  client.on('error', () => up.destroy());
  client.on('close', () => up.destroy());
  up.once('trellis:ready', () => {
    let reqHead = `${ex.method} ${ex.query ? `${ex.path}?${ex.query}` : ex.path} HTTP/1.1\r\nhost: ${ex.authority}\r\nconnection: upgrade\r\n`;
    for (const k in ex.headers) {
      const v = ex.headers[k];
      if (v === undefined || k === 'host') continue;
      if (Array.isArray(v)) for (const x of v) reqHead += `${k}: ${x}\r\n`;
      else reqHead += `${k}: ${v}\r\n`;
    }
    up.write(reqHead + '\r\n');
    if (head.length) up.write(head);
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > MAX_HEAD) {
          up.destroy();
          reject(ex, 'upstream_reset', `route ${ex.routeName} cluster ${cs.config.name}: upgrade response head too large`);
        }
        return;
      }
      up.off('data', onData);
      up.pause();
      const statusLine = buf.subarray(0, buf.indexOf('\r\n')).toString('latin1');
      const status = Number(statusLine.split(' ')[1]);
      if (ex.timer) clearTimeout(ex.timer);
      ex.timer = undefined;
      // Hand the raw bytes on: on 101 both directions become a byte pipe; otherwise the response passes through and the connection closes.
      const res = ex.res as ServerResponse;
      spliced = true;
      res.detachSocket(client);
      res.statusCode = status;
      // Detached, the response no longer sees the socket close: report the tunnel's end as the exchange's end.
      client.once('close', () => res.emit('close'));
      client.write(buf);
      if (status === 101) {
        up.pipe(client);
        client.pipe(up);
        up.resume();
      } else {
        up.pipe(client);
        up.resume();
        up.once('end', () => client.end());
      }
    };
    up.on('data', onData);
  });
  client.setNoDelay(true);
}
