// HTTP/1.1 upstream client on pooled keep-alive sockets: one write for the head, hand-parsed response, typed errors.
import type { Readable } from 'node:stream';
import { buildRequestHead, HeadError, type OutHeaders, type RequestHead } from './h1-head.js';
import { ResponseError, ResponseParser, type ResponseEvents, type ResponseHeaders } from './h1-parser.js';
import type { ConnUser, H1Conn, H1Pool, Waiter } from './h1-pool.js';

export type { OutHeaders, ResponseHeaders };

/**
 * connect: no connection (refused, TLS or SPIFFE check failed, breaker overflow); reset: the connection
 * failed or closed mid-exchange; protocol: the upstream broke HTTP/1.1; timeout: no response head in time;
 * invalid_request: the client refused to write the request; request_body: the body source failed or
 * did not match its content-length.
 */
export type H1ErrorKind = 'connect' | 'reset' | 'protocol' | 'timeout' | 'invalid_request' | 'request_body';

/** The x-trellis-error code each kind maps to (errors.ts); a connector's own code (overflow) wins for 'connect'. */
export type H1TrellisCode = 'upstream_connect_failure' | 'upstream_reset' | 'upstream_timeout' | 'overflow' | 'bad_request';

const CODE: Record<H1ErrorKind, H1TrellisCode> = {
  connect: 'upstream_connect_failure',
  reset: 'upstream_reset',
  protocol: 'upstream_reset',
  timeout: 'upstream_timeout',
  invalid_request: 'bad_request',
  request_body: 'bad_request',
};

export class H1Error extends Error {
  readonly trellisCode: H1TrellisCode;
  constructor(
    readonly kind: H1ErrorKind,
    message: string,
    /** The request went out on a connection that had served an earlier one. */
    readonly reusedSocket = false,
    /** Some response byte (even of an interim response) had arrived. */
    readonly responseStarted = false,
    code?: H1TrellisCode,
  ) {
    super(message);
    this.trellisCode = code ?? CODE[kind];
  }

  /**
   * The keep-alive race (as Node's agent reports with reusedSocket): a reused connection failed before
   * any response byte, so the upstream most likely never processed the request. The caller still decides
   * from method and body whether to send it again.
   */
  get retryable(): boolean {
    return this.kind === 'reset' && this.reusedSocket && !this.responseStarted;
  }
}

export interface H1Request {
  method: string;
  /** Request target (path and query). */
  path: string;
  /** Must include host. Hop-by-hop fields are dropped; content-length / transfer-encoding are recomputed. */
  headers: OutHeaders;
  /** No body, a whole body, or a stream (IncomingMessage, Http2ServerRequest): content-length if the headers give it, else chunked. */
  body?: Buffer | Readable;
  /** Chunks already read from the body stream, sent before it. */
  bodyPrefix?: readonly Buffer[];
  /** Ask the upstream to close after this exchange. */
  close?: boolean;
  /** No response head within this many ms (from the request's start, including the wait for a connection) -> timeout. */
  headTimeoutMs?: number;
}

export interface H1Handler {
  /** The request got its connection (reused: an idle keep-alive one) and is being written; for breaker 'pending' accounting. */
  onSocket?(reused: boolean): void;
  /** Interim responses (100 Continue, 103 Early Hints) are skipped unless this is set. */
  onInterim?(status: number, headers: ResponseHeaders): void;
  /** The final response head; headers are end-to-end only (hop-by-hop and Connection-named fields removed). */
  onResponse(status: number, headers: ResponseHeaders, reason: string): void;
  /** A body slice (not copied). Return false to stop reading until resume(). */
  onData(chunk: Buffer): boolean | void;
  /** The response ended cleanly; trailers of a chunked response if it had any. */
  onEnd(trailers: ResponseHeaders | undefined): void;
  /** Exactly one of onEnd / onError, unless abort() came first (then neither). */
  onError(err: H1Error): void;
}

/** Large bodies go in their own write; below this they share the head's write. */
const COALESCE_MAX = 16 * 1024;
const CRLF = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';

/** One request/response on a pooled connection. */
export class H1Exchange implements ConnUser, Waiter, ResponseEvents {
  private conn: H1Conn | undefined;
  private parser: ResponseParser | undefined;
  private finished = false;
  private bodyDone: boolean;
  private bodySent = 0;
  private source: Readable | undefined;
  private sourcePaused = false;
  private paused = false;
  private discarding = false;
  private timer: NodeJS.Timeout | undefined;
  private completed = false;
  private trailers: ResponseHeaders | undefined;
  /** The request went out on a connection that served an earlier request. */
  reusedSocket = false;
  /** The final response head arrived. */
  responded = false;

  constructor(
    private readonly pool: H1Pool,
    private readonly req: H1Request,
    private readonly rh: RequestHead,
    private readonly h: H1Handler,
  ) {
    this.bodyDone = rh.framing === 'none' || (rh.framing === 'length' && rh.length === 0 && req.body === undefined);
  }

  /** Stops the exchange: the connection is destroyed (never reused) and no handler is called any more. */
  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.cleanup();
    this.pool.cancel(this);
    const c = this.conn;
    this.conn = undefined;
    if (c !== undefined) this.pool.destroy(c);
  }

  /** Stops reading the response (backpressure); resume() continues. */
  pause(): void {
    if (this.paused || this.finished) return;
    this.paused = true;
    this.conn?.socket.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.finished) this.conn?.socket.resume();
  }

  /** Reads and drops the rest of the body, keeping the connection for reuse (a response not sent on, e.g. retried). */
  discard(): void {
    this.discarding = true;
    this.resume();
  }

  // ------------------------------------------------------------------ Waiter

  onConn(c: H1Conn): void {
    if (this.finished) return this.pool.release(c);
    this.conn = c;
    this.reusedSocket = c.reused;
    c.user = this;
    if (this.h.onSocket !== undefined) {
      this.h.onSocket(this.reusedSocket);
      if (this.finished) return;
    }
    const parser = (this.parser = new ResponseParser(this));
    parser.reset(this.req.method.toUpperCase());
    this.writeHead();
  }

  onConnectError(err: Error): void {
    if (this.finished) return;
    const code = (err as { trellisCode?: string }).trellisCode;
    this.fail(new H1Error('connect', err.message, false, false, code === 'overflow' ? 'overflow' : 'upstream_connect_failure'));
  }

  // ------------------------------------------------------------------ request side

  private writeHead(): void {
    const socket = this.conn!.socket;
    const { body, bodyPrefix } = this.req;
    const head = this.rh.head;
    if (Buffer.isBuffer(body) && body.length > 0 && body.length <= COALESCE_MAX) {
      const hl = head.length;
      const out = Buffer.allocUnsafe(hl + body.length);
      out.write(head, 0, 'latin1');
      body.copy(out, hl);
      this.bodySent = body.length;
      this.bodyDone = true;
      socket.write(out);
      return;
    }
    if (body === undefined || Buffer.isBuffer(body)) {
      socket.write(head, 'latin1');
      if (body !== undefined && body.length > 0) socket.write(body);
      this.bodySent = body?.length ?? 0;
      this.bodyDone = true;
      return;
    }
    socket.cork();
    socket.write(head, 'latin1');
    if (bodyPrefix !== undefined) for (const c of bodyPrefix) if (!this.writeBody(c)) return void socket.uncork();
    socket.uncork();
    this.source = body;
    body.on('data', this.onSourceData);
    body.once('end', this.onSourceEnd);
    body.once('error', this.onSourceError);
    body.once('close', this.onSourceClose);
    if (socket.writableNeedDrain) this.pauseSource();
    // A source paused by its owner (e.g. after reading a prefix) does not flow again on a 'data' listener alone.
    else body.resume();
    // A source already ended (fully read before) emits nothing more: end now.
    if ((body as Readable & { readableEnded?: boolean }).readableEnded) this.onSourceEnd();
  }

  /** Frames and writes one body chunk; false when the exchange failed. */
  private writeBody(chunk: Buffer): boolean {
    const n = chunk.length;
    if (n === 0) return true; // a zero-size chunk would end a chunked body early
    const socket = this.conn!.socket;
    if (this.rh.framing === 'chunked') {
      socket.cork();
      socket.write(n.toString(16) + CRLF, 'latin1');
      socket.write(chunk);
      socket.write(CRLF, 'latin1');
      socket.uncork();
    } else {
      if (this.bodySent + n > this.rh.length) {
        this.fail(new H1Error('request_body', `request body longer than its content-length ${this.rh.length}`, this.reusedSocket, this.parser?.started));
        return false;
      }
      socket.write(chunk);
    }
    this.bodySent += n;
    return true;
  }

  private readonly onSourceData = (chunk: Buffer | string): void => {
    if (this.finished || this.conn === undefined) return;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (!this.writeBody(buf)) return;
    if (this.conn.socket.writableNeedDrain) this.pauseSource();
  };

  private readonly onSourceEnd = (): void => {
    if (this.finished || this.bodyDone || this.conn === undefined) return;
    if (this.rh.framing === 'chunked') this.conn.socket.write(LAST_CHUNK, 'latin1');
    else if (this.bodySent !== this.rh.length) {
      return this.fail(new H1Error('request_body', `request body ended after ${this.bodySent} of ${this.rh.length} bytes (content-length)`, this.reusedSocket, this.parser?.started));
    }
    this.bodyDone = true;
    this.detachSource();
  };

  private readonly onSourceError = (err: Error): void => {
    if (this.finished || this.bodyDone) return;
    this.fail(new H1Error('request_body', `request body failed: ${err.message}`, this.reusedSocket, this.parser?.started));
  };

  private readonly onSourceClose = (): void => {
    // Closed without 'end' (client went away mid-body): the upstream must not see a truncated request as whole.
    if (this.finished || this.bodyDone) return;
    queueMicrotask(() => {
      if (!this.finished && !this.bodyDone) this.fail(new H1Error('request_body', 'request body closed before its end', this.reusedSocket, this.parser?.started));
    });
  };

  private pauseSource(): void {
    if (this.source === undefined || this.sourcePaused) return;
    this.sourcePaused = true;
    this.source.pause();
  }

  private detachSource(): void {
    const s = this.source;
    if (s === undefined) return;
    this.source = undefined;
    s.off('data', this.onSourceData);
    s.off('end', this.onSourceEnd);
    s.off('error', this.onSourceError);
    s.off('close', this.onSourceClose);
    if (this.sourcePaused) {
      this.sourcePaused = false;
      s.resume();
    }
  }

  onConnDrain(): void {
    if (this.sourcePaused && this.source !== undefined) {
      this.sourcePaused = false;
      this.source.resume();
    }
  }

  // ------------------------------------------------------------------ response side

  onConnData(chunk: Buffer): void {
    if (this.finished) return;
    let used: number;
    try {
      used = this.parser!.execute(chunk);
    } catch (err) {
      if (!(err instanceof ResponseError)) throw err;
      return this.fail(new H1Error('protocol', `bad response: ${err.message}`, this.reusedSocket, true));
    }
    // Bytes after a complete response (pipelined garbage, a confused peer): the connection is not reused.
    if (this.completed) this.finish(used === chunk.length);
  }

  onConnEnd(): void {
    if (this.finished) return;
    const parser = this.parser;
    if (parser !== undefined && parser.untilClose) {
      parser.finish();
      if (this.completed) this.finish(false);
    }
  }

  onConnClose(err: Error | undefined): void {
    if (this.finished) return;
    this.conn = undefined;
    const p = this.parser;
    if (p !== undefined && p.untilClose && err === undefined) {
      p.finish();
      if (this.completed) return this.finish(false);
    }
    const started = p?.started ?? false;
    const what = !started ? 'before any response' : this.responded ? 'mid-response' : 'before the response head was complete';
    const why = err ? `: ${err.message}` : '';
    this.fail(new H1Error('reset', `upstream connection ${err ? 'failed' : 'closed'} ${what}${why}`, this.reusedSocket, started));
  }

  onInterim(status: number, headers: ResponseHeaders): void {
    if (this.h.onInterim) this.h.onInterim(status, headers);
  }

  onHead(status: number, reason: string, headers: ResponseHeaders): void {
    this.responded = true;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.discarding) this.h.onResponse(status, headers, reason);
    if (this.finished) this.parser?.stop();
  }

  onBody(chunk: Buffer): void {
    if (this.discarding || this.finished) return;
    if (this.h.onData(chunk) === false) this.pause();
    if (this.finished) this.parser?.stop();
  }

  onComplete(trailers: ResponseHeaders | undefined): void {
    // Finished by the caller of execute()/finish(), once it knows whether bytes follow the response.
    this.completed = true;
    this.trailers = trailers;
  }

  /** The response ended cleanly: reuse the connection when everything allows it, then tell the handler. */
  private finish(clean: boolean): void {
    if (this.finished) return;
    this.finished = true;
    const c = this.conn;
    this.conn = undefined;
    this.cleanup();
    if (c !== undefined) {
      if (this.paused) c.socket.resume();
      const reusable = clean && this.bodyDone && this.parser!.framing.keepAlive && !this.rh.close;
      // Released before onEnd: a request the handler starts from onEnd can reuse it.
      if (reusable) this.pool.release(c);
      else this.pool.destroy(c);
    }
    this.h.onEnd(this.trailers);
  }

  private fail(err: H1Error): void {
    if (this.finished) return;
    this.finished = true;
    this.parser?.stop();
    this.cleanup();
    this.pool.cancel(this);
    const c = this.conn;
    this.conn = undefined;
    if (c !== undefined) this.pool.destroy(c);
    this.h.onError(err);
  }

  private cleanup(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.detachSource();
  }

  /** Arms the head timeout and asks the pool for a connection. */
  start(): void {
    const t = this.req.headTimeoutMs;
    if (t !== undefined && t > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.fail(new H1Error('timeout', `no response head from upstream within ${t}ms`, this.reusedSocket, this.parser?.started ?? false));
      }, t);
    }
    this.pool.acquire(this);
  }
}

/**
 * Sends `req` on a connection from `pool`; `h` gets the response. onResponse/onData/onEnd/onError are never
 * called from within this call (onSocket may be: an idle connection is taken at once). Throws H1Error('invalid_request') at once
 * (nothing is sent) for a head it must not write: bad method, target, header name or value, or framing.
 */
export function h1Request(pool: H1Pool, req: H1Request, h: H1Handler): H1Exchange {
  let rh: RequestHead;
  try {
    const body = req.body === undefined ? 'none' : Buffer.isBuffer(req.body) ? req.body.length : 'stream';
    rh = buildRequestHead(req.method, req.path, req.headers, { body, close: req.close });
  } catch (err) {
    if (err instanceof HeadError) throw new H1Error('invalid_request', `refused to send the request upstream: ${err.message}`);
    throw err;
  }
  const x = new H1Exchange(pool, req, rh, h);
  x.start();
  return x;
}
