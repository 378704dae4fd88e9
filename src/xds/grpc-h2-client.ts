// A small gRPC client on node:http2 (plaintext, one connection per target): unary calls and bidirectional streams of
// already encoded messages. The proxy uses it instead of @grpc/grpc-js, whose ~5.5 MB per process it does not need.
import * as http2 from 'node:http2';
import { EventEmitter } from 'node:events';

/** gRPC status codes used here (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** A call that ended with a non-OK status. */
export class GrpcCallError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(details);
    this.name = 'GrpcCallError';
  }
}

export type GrpcMetadata = Record<string, string | string[]>;

export interface ChannelOptions {
  /** Ping interval on an open connection, and how long a ping may take before the connection is dropped. */
  keepaliveMs?: number;
  keepaliveTimeoutMs?: number;
  /** Largest message accepted. */
  maxMessageBytes?: number;
}

/** HTTP status -> gRPC status for responses that are not gRPC at all (the gRPC HTTP/2 spec's mapping). */
function httpToGrpc(status: number): number {
  if (status === 400) return GrpcStatus.INTERNAL;
  if (status === 401) return GrpcStatus.UNAUTHENTICATED;
  if (status === 403) return GrpcStatus.PERMISSION_DENIED;
  if (status === 404) return GrpcStatus.UNIMPLEMENTED;
  if (status === 429 || status === 502 || status === 503 || status === 504) return GrpcStatus.UNAVAILABLE;
  return GrpcStatus.UNKNOWN;
}

/** Length-prefixed message framing (compression flag 0). */
export function frame(msg: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + msg.length);
  out[0] = 0;
  out.writeUInt32BE(msg.length, 1);
  out.set(msg, 5);
  return out;
}

/** Splits a stream of DATA bytes into messages. */
export class MessageReader {
  private buf: Buffer | undefined;
  constructor(private readonly max: number) {}

  /** Returns the complete messages in `chunk` (with what was left over before); throws on a bad or oversized frame. */
  push(chunk: Buffer): Buffer[] {
    let b = this.buf === undefined ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    while (b.length >= 5) {
      if (b[0] !== 0) throw new GrpcCallError(GrpcStatus.INTERNAL, 'compressed messages are not supported');
      const len = b.readUInt32BE(1);
      if (len > this.max) throw new GrpcCallError(GrpcStatus.RESOURCE_EXHAUSTED, `received message larger than max (${len} vs. ${this.max})`);
      if (b.length < 5 + len) break;
      out.push(b.subarray(5, 5 + len));
      b = b.subarray(5 + len);
    }
    this.buf = b.length > 0 ? b : undefined;
    return out;
  }
}

function percentDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * A call's outcome from its response headers and trailers: gRPC status and message, or an HTTP-level failure.
 * Trailers-only responses carry grpc-status in the headers.
 */
export function callStatus(headers: http2.IncomingHttpHeaders | undefined, trailers: http2.IncomingHttpHeaders | undefined): GrpcCallError | undefined {
  const httpStatus = Number(headers?.[':status'] ?? 0);
  if (headers && httpStatus !== 200) return new GrpcCallError(httpToGrpc(httpStatus), `HTTP status ${httpStatus} from the server`);
  const src = trailers?.['grpc-status'] !== undefined ? trailers : headers;
  const raw = src?.['grpc-status'];
  if (raw === undefined) return new GrpcCallError(GrpcStatus.UNKNOWN, 'the server ended the call without a grpc-status');
  const code = Number(raw);
  if (code === GrpcStatus.OK) return undefined;
  const msg = src?.['grpc-message'];
  return new GrpcCallError(Number.isInteger(code) ? code : GrpcStatus.UNKNOWN, percentDecode(typeof msg === 'string' ? msg : `status ${code}`));
}

/** One bidirectional call: 'headers' (the server accepted the stream), 'message' (Buffer), then 'error' or 'end'. */
export class GrpcStream extends EventEmitter {
  private ended = false;
  constructor(private readonly stream: http2.ClientHttp2Stream | undefined) {
    super();
  }
  write(msg: Uint8Array): void {
    if (this.stream && !this.stream.destroyed && this.stream.writable) this.stream.write(frame(msg));
  }
  cancel(): void {
    this.ended = true;
    if (this.stream && !this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }
  /** @internal reports the end once. */
  finish(err: GrpcCallError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    if (err) this.emit('error', err);
    else this.emit('end');
  }
}

/** A connection to one gRPC server, opened when a call needs it and again after it fails. */
export class GrpcChannel {
  private session: http2.ClientHttp2Session | undefined;
  private ping: NodeJS.Timeout | undefined;
  private closed = false;
  private active = 0;
  private readonly max: number;

  constructor(
    private readonly address: string,
    private readonly opts: ChannelOptions = {},
  ) {
    this.max = opts.maxMessageBytes ?? 4 * 1024 * 1024;
  }

  private connection(): http2.ClientHttp2Session {
    const s = this.session;
    if (s && !s.closed && !s.destroyed) return s;
    const session = http2.connect(`http://${this.address}`);
    this.session = session;
    session.on('error', () => {});
    session.once('close', () => {
      if (this.session === session) this.session = undefined;
      if (this.ping) clearInterval(this.ping);
      this.ping = undefined;
    });
    session.once('goaway', () => {
      if (this.session === session) this.session = undefined;
    });
    const every = this.opts.keepaliveMs ?? 0;
    if (every > 0) {
      if (this.ping) clearInterval(this.ping);
      this.ping = setInterval(() => {
        if (session.destroyed) return;
        const t = setTimeout(() => session.destroy(new Error('keepalive ping timed out')), this.opts.keepaliveTimeoutMs ?? 10_000);
        t.unref();
        try {
          session.ping(() => clearTimeout(t));
        } catch {
          clearTimeout(t);
        }
      }, every);
      this.ping.unref();
    }
    session.unref();
    return session;
  }

  private open(path: string, md: GrpcMetadata, deadlineMs?: number): http2.ClientHttp2Stream {
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'trellis-grpc/1',
      ...md,
    };
    if (deadlineMs !== undefined) headers['grpc-timeout'] = `${Math.max(1, Math.ceil(deadlineMs))}m`;
    const session = this.connection();
    const stream = session.request(headers);
    // Open calls keep the process alive; an idle connection does not.
    this.active++;
    session.ref();
    stream.once('close', () => {
      if (--this.active === 0 && !session.destroyed) session.unref();
    });
    return stream;
  }

  /** Opens a bidirectional stream; errors (including an unreachable server) arrive as its 'error' event. */
  bidi(path: string, md: GrpcMetadata): GrpcStream {
    if (this.closed) {
      const g = new GrpcStream(undefined);
      queueMicrotask(() => g.finish(new GrpcCallError(GrpcStatus.CANCELLED, 'channel closed')));
      return g;
    }
    const stream = this.open(path, md);
    const call = new GrpcStream(stream);
    const reader = new MessageReader(this.max);
    let headers: http2.IncomingHttpHeaders | undefined;
    let trailers: http2.IncomingHttpHeaders | undefined;
    stream.on('response', (h) => {
      headers = h;
      if (Number(h[':status']) === 200 && h['grpc-status'] === undefined) call.emit('headers', h);
    });
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (chunk: Buffer) => {
      let msgs: Buffer[];
      try {
        msgs = reader.push(chunk);
      } catch (e) {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        return call.finish(e as GrpcCallError);
      }
      for (const m of msgs) call.emit('message', m);
    });
    stream.on('error', (err: NodeJS.ErrnoException) => call.finish(new GrpcCallError(GrpcStatus.UNAVAILABLE, connectionError(err))));
    // The server's end of stream (trailers) ends the call even though our side of the stream is still open.
    stream.on('end', () => {
      if (headers !== undefined) call.finish(callStatus(headers, trailers));
      if (!stream.destroyed) stream.close();
    });
    stream.on('close', () => {
      if (headers === undefined) return call.finish(new GrpcCallError(GrpcStatus.UNAVAILABLE, 'the connection closed before the server answered'));
      call.finish(callStatus(headers, trailers));
    });
    return call;
  }

  /** One request, one response, within `deadlineMs`. */
  unary(path: string, msg: Uint8Array, md: GrpcMetadata, deadlineMs: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new GrpcCallError(GrpcStatus.CANCELLED, 'channel closed'));
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.open(path, md, deadlineMs);
      } catch (err) {
        return reject(new GrpcCallError(GrpcStatus.UNAVAILABLE, connectionError(err as NodeJS.ErrnoException)));
      }
      const reader = new MessageReader(this.max);
      let headers: http2.IncomingHttpHeaders | undefined;
      let trailers: http2.IncomingHttpHeaders | undefined;
      let reply: Buffer | undefined;
      let failure: GrpcCallError | undefined;
      const timer = setTimeout(() => {
        failure = new GrpcCallError(GrpcStatus.DEADLINE_EXCEEDED, 'deadline exceeded');
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }, deadlineMs);
      stream.on('response', (h) => (headers = h));
      stream.on('trailers', (t) => (trailers = t));
      stream.on('data', (chunk: Buffer) => {
        try {
          for (const m of reader.push(chunk)) reply ??= Buffer.from(m);
        } catch (e) {
          failure ??= e as GrpcCallError;
          stream.close(http2.constants.NGHTTP2_CANCEL);
        }
      });
      stream.on('error', (err: NodeJS.ErrnoException) => {
        failure ??= new GrpcCallError(GrpcStatus.UNAVAILABLE, connectionError(err));
      });
      stream.on('close', () => {
        clearTimeout(timer);
        if (failure) return reject(failure);
        if (headers === undefined) return reject(new GrpcCallError(GrpcStatus.UNAVAILABLE, 'the connection closed before the server answered'));
        const st = callStatus(headers, trailers);
        if (st) return reject(st);
        if (reply === undefined) return reject(new GrpcCallError(GrpcStatus.INTERNAL, 'the server sent no response message'));
        resolve(reply);
      });
      stream.end(frame(msg));
    });
  }

  close(): void {
    this.closed = true;
    if (this.ping) clearInterval(this.ping);
    this.session?.destroy();
    this.session = undefined;
  }
}

/** The socket error behind a failed call, in one line (e.g. "connect ECONNREFUSED 127.0.0.1:15010"). */
function connectionError(err: NodeJS.ErrnoException): string {
  // A stream cancelled because the connection failed carries the socket error as its cause.
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? cause.message : err.message;
}
