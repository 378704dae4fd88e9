// The outbound HTTP listener: one port serving HTTP/1.1 (origin- and absolute-form, Upgrade) and h2c with prior knowledge.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { ListenerConfig } from '../config/types.js';
import { ERROR_STATUS, sendError, writeRawError } from '../errors.js';
import { createRequestEntry, splitWorkload, upgradeResponse, type HttpContext } from '../http/outbound.js';
import { MAX_REQUEST_HEADER_BYTES, MAX_REQUEST_HEADERS, refuseRequestHead } from '../http/headers.js';
import type { Handler } from '../http/exchange.js';
import { ConnectionSet, listenOn, peek, type ManagedListener } from './base.js';
import { trackConnections } from '../http/track-connections.js';
import { guardRapidReset } from '../http/rapid-reset.js';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export function createOutboundHttpListener(ctx: HttpContext, config: ListenerConfig, handler: Handler): ManagedListener {
  let draining = false;
  const entry = createRequestEntry(ctx, config.name, config, handler, () => draining);
  const [ns, wl] = splitWorkload(config.workload);
  /** Hostile or malformed heads never become exchanges; they are still counted as requests (reporter source). */
  const countRefused = (code: 'bad_request' | 'headers_too_large') =>
    ctx.metrics.refusedRequest(
      { reporter: 'source', source_workload: wl, source_namespace: ns, source_principal: ctx.identityFor(config.workload)?.spiffeId },
      code,
      ERROR_STATUS[code],
    );
  /** Connections whose request head was refused: the parser may still fail on the bytes after it, which needs no second answer. */
  const answered = new WeakSet<net.Socket>();
  // Hostile heads (smuggling, injection, oversized) are answered here and never reach the stack or an upstream.
  const onRequest: typeof entry = (req, res, upgrade) => {
    const bad = refuseRequestHead(req.rawHeaders, req.url ?? '/', req.httpVersionMajor === 2);
    if (!bad) return entry(req, res, upgrade);
    countRefused(bad.code);
    if (req.httpVersionMajor !== 2) {
      (res as http.ServerResponse).setHeader('connection', 'close');
      answered.add(req.socket);
    }
    sendError(res, bad.code, `listener ${config.name}: ${bad.message}`);
  };
  const h1 = trackConnections(
    http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 300_000, headersTimeout: 30_000, maxHeaderSize: MAX_REQUEST_HEADER_BYTES }, onRequest),
  );
  // One more than the limit so that an over-limit request is seen (node truncates the list silently) and refused.
  h1.maxHeadersCount = MAX_REQUEST_HEADERS + 1;
  h1.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    onRequest(req, upgradeResponse(req, socket), { socket, head });
  });
  h1.on('connect', (_req: http.IncomingMessage, socket: net.Socket) => {
    writeRawError(socket, 'bad_request', `listener ${config.name}: CONNECT tunnels are not supported; send plain HTTP requests`);
  });
  h1.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') return void socket.destroy();
    if (answered.has(socket)) return void socket.end();
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      countRefused('headers_too_large');
      writeRawError(socket, 'headers_too_large', `listener ${config.name}: request headers exceed ${MAX_REQUEST_HEADER_BYTES} bytes`);
    } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      writeRawError(socket, 'request_timeout', `listener ${config.name}: the request was not received in time`);
    } else {
      countRefused('bad_request');
      writeRawError(socket, 'bad_request', `listener ${config.name}: malformed HTTP request (${err.code ?? err.message})`);
    }
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  const h2 = http2.createServer(
    { maxSessionMemory: 64, maxHeaderListPairs: MAX_REQUEST_HEADERS + 8, settings: { maxHeaderListSize: MAX_REQUEST_HEADER_BYTES + 1024 } },
    onRequest,
  );
  h2.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
    guardRapidReset(s);
    if (ctx.draining || draining) s.close();
  });
  h2.on('sessionError', () => {});
  const conns = new ConnectionSet();
  const server = net.createServer((socket) => {
    conns.add(socket);
    socket.on('error', () => socket.destroy());
    peek(socket, 3, (first) => {
      // Both servers pick up the bytes already read (they check readableLength); resuming here would drop them.
      if (first.length >= 3 && first.subarray(0, 3).equals(H2_PREFACE.subarray(0, 3))) h2.emit('connection', socket);
      else {
        h1.emit('connection', socket);
        socket.resume();
      }
    });
  });
  server.on('error', () => {});
  return {
    name: config.name,
    config,
    server,
    port: () => (server.address() as net.AddressInfo | null)?.port ?? config.port,
    listen: () => listenOn(server, config.address, config.port, `listener ${config.name}`),
    stopAccepting: () => server.close(),
    async drain(timeoutMs) {
      draining = true;
      server.close();
      h1.closeIdleConnections();
      for (const s of sessions) s.close();
      const t = setInterval(() => h1.closeIdleConnections(), 50);
      await conns.wait(timeoutMs);
      clearInterval(t);
    },
    connections: () => conns.sockets.size,
  };
}
