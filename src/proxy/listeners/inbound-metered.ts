// The inbound's rate-limit-only path: an mTLS HTTP/1.1 connection piped to the app byte for byte, with request and
// response heads scanned for framing only, so every request takes a token (or gets a 429) without a full HTTP stack.
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { ResponseParser, ResponseError, type ResponseEvents } from '../upstream/h1-parser.js';
import { MAX_REQUEST_HEAD_BYTES, parseRequestHead, RequestHeadError, type RequestHeadInfo } from '../upstream/h1-request.js';
import type { LocalRateLimiter } from '../resilience/index.js';

/** What decides each request, asked again per request so that config pushes apply to open connections. */
export type MeterDecision =
  /** Keep metering; no limiter: every request passes. */
  | { kind: 'meter'; limiter: LocalRateLimiter | undefined; route: string }
  /** The connection's chain now needs the full HTTP stack: hand the connection over once it is idle. */
  | { kind: 'l7' }
  /** The chain is gone (port removed): close the connection. */
  | { kind: 'gone' };

export interface MeterHooks {
  /** Names the listener and app in messages. */
  where: string;
  /** The verified caller (its rate-limit key). */
  peer: string;
  decide(): MeterDecision;
  /** A request was refused here (rate limit, bad head): for metrics, logs and tap; `head` when it parsed. */
  refused(
    code: 'rate_limited' | 'bad_request' | 'headers_too_large',
    status: number,
    detail: { limit?: 'total' | 'per_caller'; rule?: string; reason?: string; head?: RequestHeadInfo; startMs?: number },
  ): void;
  /** A forwarded request's response ended (status 0: the app closed before answering). */
  observed(status: number, seconds: number, requestBytes: number, responseBytes: number, head: RequestHeadInfo, startMs: number): void;
  /** Takes over `down` (the app connection is already closed); `pending` are bytes read but not yet handled. */
  handoff(pending: Buffer | undefined): void;
}

const REASON: Record<number, string> = { 400: 'Bad Request', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large', 501: 'Not Implemented' };
const CRLF2 = Buffer.from('\r\n\r\n', 'latin1');
/** Answers owed at once (pipelined requests); past this the caller is not read until some are sent. */
const MAX_OWED = 64;

/** A proxy-generated HTTP/1.1 answer carrying `x-trellis-error` (same shape as the L7 path's). */
function localReply(status: number, code: string, message: string, close: boolean, extra = ''): Buffer {
  const body = `${code}: ${message.replace(/[\r\n]+/g, ' ')}\n`;
  return Buffer.from(
    `HTTP/1.1 ${status} ${REASON[status] ?? 'Error'}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `x-trellis-error: ${code}\r\n${extra}${close ? 'connection: close\r\n' : ''}\r\n${body}`,
    'utf8',
  );
}

interface Forwarded {
  method: string;
  upgrade: boolean;
  head: RequestHeadInfo;
  /** performance.now() when its head was forwarded. */
  start: number;
  bytes: number;
}
/** In answer order: a request the app answers, or a reply made here. */
type Pending = Forwarded | { reply: Buffer; close: boolean };

const NOOP_EVENTS: ResponseEvents = { onInterim() {}, onHead() {}, onBody() {}, onComplete() {} };

/**
 * One connection. Requests are forwarded exactly as received (head and body bytes); a refused request is
 * answered here, in order after the responses still owed for earlier requests, and never reaches the app.
 * Responses are forwarded as they arrive and parsed only to know where each ends. A framing the two sides
 * could read differently is refused with 400 and the connection closed, so no request slips past the count.
 */
export class MeteredPipe {
  private state: 'head' | 'body' | 'await-upgrade' | 'await-idle' | 'raw' | 'closed' = 'head';
  /** Bytes from the caller not yet handled (a partial head, or what arrived while waiting). */
  private held: Buffer | undefined;
  private readonly queue: Pending[] = [];
  private readonly res: ResponseParser;
  private resActive = false;
  /** Status of the response being parsed. */
  private status = 0;
  private readonly body: ResponseParser;
  private draining = false;

  constructor(
    private readonly down: Socket,
    private readonly up: Socket,
    private readonly hooks: MeterHooks,
  ) {
    this.res = new ResponseParser({ onInterim() {}, onHead: (status) => (this.status = status), onBody() {}, onComplete() {} });
    // Only where the body ends matters: its bytes, chunk framing included, are forwarded as received.
    this.body = new ResponseParser(NOOP_EVENTS);
  }

  start(): void {
    this.down.on('data', this.onDown);
    this.up.on('data', this.onUp);
    this.down.once('end', () => {
      if (this.state !== 'closed') this.up.end();
    });
    this.up.once('end', this.onUpEnd);
  }

  /** Finish what is in flight, then close (the proxy or listener drains). */
  drain(): void {
    this.draining = true;
    if (this.idle()) this.close();
  }

  private idle(): boolean {
    return this.queue.length === 0 && this.state === 'head' && (this.held === undefined || this.held.length === 0);
  }

  private close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.down.end();
    this.up.destroy();
  }

  private fail(): void {
    this.state = 'closed';
    this.down.destroy();
    this.up.destroy();
  }

  private upFull = false;
  private downFull = false;

  /** Writes toward the app; a full app socket pauses the caller until it drains. */
  private toUp(c: Buffer): void {
    if (!this.up.write(c) && !this.upFull) {
      this.upFull = true;
      this.down.pause();
      this.up.once('drain', () => {
        this.upFull = false;
        if (this.state !== 'closed' && !this.readPaused) this.down.resume();
      });
    }
  }

  /** Writes toward the caller; a full caller socket pauses the app until it drains. */
  private toDown(c: Buffer): void {
    if (!this.down.write(c) && !this.downFull) {
      this.downFull = true;
      this.up.pause();
      this.down.once('drain', () => {
        this.downFull = false;
        this.up.resume();
      });
    }
  }

  private readonly onDown = (chunk: Buffer): void => {
    if (this.state === 'raw') return this.toUp(chunk);
    if (this.state === 'closed') return;
    this.held = this.held === undefined || this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk]);
    this.pump();
    // Waiting (for a 101, for the connection to go idle, or for owed answers): stop reading, so what is held stays bounded.
    if (this.waiting()) {
      this.readPaused = true;
      this.down.pause();
    }
  };

  private readPaused = false;

  private waiting(): boolean {
    return this.state === 'await-upgrade' || this.state === 'await-idle' || (this.state === 'head' && this.queue.length >= MAX_OWED);
  }

  /** Handles held caller bytes until they run out or a wait begins. */
  private pump(): void {
    while (this.held !== undefined && this.held.length > 0) {
      if (this.state === 'body') {
        let n: number;
        try {
          n = this.body.execute(this.held);
        } catch (e) {
          // The app holds a partial request: that connection is done. The caller gets the 400 when nothing else is owed it.
          this.up.off('end', this.onUpEnd);
          this.up.destroy();
          this.queue.pop();
          if (this.queue.length > 0) return this.fail();
          return this.refuse(400, 'bad_request', `request body framing: ${(e as ResponseError).message}`);
        }
        if (n > 0) this.toUp(n === this.held.length ? this.held : this.held.subarray(0, n));
        this.held = this.held.subarray(n);
        if (this.body.done) this.afterRequest();
        continue;
      }
      if (this.state !== 'head' || this.queue.length >= MAX_OWED) return;
      const held = this.held;
      const e = held.indexOf(CRLF2);
      if (e < 0) {
        if (held.length > MAX_REQUEST_HEAD_BYTES) return this.refuse(431, 'headers_too_large', `request head larger than ${MAX_REQUEST_HEAD_BYTES} bytes`);
        return;
      }
      if (e > MAX_REQUEST_HEAD_BYTES) return this.refuse(431, 'headers_too_large', `request head larger than ${MAX_REQUEST_HEAD_BYTES} bytes`);
      let head: RequestHeadInfo;
      try {
        head = parseRequestHead(held, 0, e + 2);
      } catch (err) {
        const r = err as RequestHeadError;
        return this.refuse(r.status ?? 400, r.status === 431 ? 'headers_too_large' : 'bad_request', r.message);
      }
      const d = this.hooks.decide();
      if (d.kind === 'gone') return this.fail();
      if (d.kind === 'l7') {
        this.state = 'await-idle';
        return this.maybeHandoff();
      }
      const v = d.limiter?.take(this.hooks.peer, d.route);
      const headLen = e + 4;
      if (v === undefined || v.allowed) {
        this.toUp(held.subarray(0, headLen));
        this.held = held.subarray(headLen);
        this.queue.push({ method: head.method, upgrade: head.upgrade, head, start: performance.now(), bytes: head.length });
        this.currentUpgrade = head.upgrade;
        if (head.framing !== 'none') {
          this.body.beginBody(head.framing, head.length);
          this.state = 'body';
        } else this.afterRequest();
        continue;
      }
      const what = v.limit === 'total' ? 'total' : 'per-caller';
      this.hooks.refused('rate_limited', 429, { limit: v.limit, rule: v.rule, reason: `${what} limit of ${v.rule} exceeded`, head, startMs: performance.now() });
      // A refused body is not read: the connection closes after the answer (the caller may not even send it).
      const close = head.framing !== 'none' || head.close || head.upgrade;
      this.reply(localReply(429, 'rate_limited', `request rate limit exceeded (${what} limit); retry after ${v.retryAfterSeconds}s`, close, `retry-after: ${v.retryAfterSeconds}\r\n`), close);
      this.held = held.subarray(headLen);
      if (close) return;
    }
  }

  private currentUpgrade = false;

  /** The request's last byte was forwarded. */
  private afterRequest(): void {
    this.state = this.currentUpgrade ? 'await-upgrade' : 'head';
  }

  private refuse(status: number, code: 'bad_request' | 'headers_too_large', message: string): void {
    this.hooks.refused(code, status, {});
    this.reply(localReply(status, code, `${this.hooks.where}: ${message}`, true), true);
  }

  /** Queues an answer made here; a closing one ends reading from the caller. */
  private reply(buf: Buffer, close: boolean): void {
    if (close) {
      this.state = 'closed';
      this.held = undefined;
      this.down.pause();
    }
    this.queue.push({ reply: buf, close });
    this.flushReplies();
  }

  /** Writes the answers made here that are next in order. */
  private flushReplies(): void {
    while (this.queue.length > 0) {
      const p = this.queue[0];
      if (!('reply' in p)) return;
      this.queue.shift();
      if (p.close) {
        this.down.end(p.reply);
        this.up.destroy();
        this.queue.length = 0;
        return;
      }
      this.down.write(p.reply);
    }
  }

  private readonly onUp = (chunk: Buffer): void => {
    if (this.state === 'raw') return this.toDown(chunk);
    const entry = this.queue[0];
    if (entry === undefined || 'reply' in entry) return this.fail(); // the app answered nothing that was asked
    this.toDown(chunk);
    let p = 0;
    while (p < chunk.length) {
      const cur = this.queue[0];
      if (cur === undefined || 'reply' in cur) return this.fail();
      if (!this.resActive) {
        this.res.reset(cur.method, cur.upgrade);
        this.resActive = true;
        this.status = 0;
      }
      try {
        p += this.res.execute(p === 0 ? chunk : chunk.subarray(p));
      } catch {
        return this.fail();
      }
      if (!this.res.done) return;
      if (this.responseDone()) return;
    }
  };

  /** The response at the head of the queue ended; true when the connection left metered mode. */
  private responseDone(): boolean {
    this.resActive = false;
    this.report(this.queue.shift() as Forwarded, this.status);
    if (this.res.upgraded) {
      this.toRaw();
      return true;
    }
    if (this.state === 'await-upgrade' && this.queue.length === 0) this.state = 'head';
    this.flushReplies();
    if (this.state === 'closed') return true;
    if (this.state === 'await-idle') {
      this.maybeHandoff();
      return true;
    }
    if (this.draining && this.idle()) {
      this.close();
      return true;
    }
    if (this.state === 'head' && this.held !== undefined && this.held.length > 0) this.pump();
    if (this.readPaused && !this.waiting()) {
      this.readPaused = false;
      if (!this.upFull) this.down.resume();
    }
    return false;
  }

  private readonly onUpEnd = (): void => {
    if (this.state === 'raw') {
      this.down.end();
      return;
    }
    // A close-delimited response ends with the app's connection.
    if (this.resActive && this.res.finish()) {
      this.resActive = false;
      this.report(this.queue.shift() as Forwarded, this.status);
    }
    if (this.queue.some((p) => !('reply' in p))) this.down.destroy();
    else {
      this.flushReplies();
      this.down.end();
    }
    this.state = 'closed';
  };

  private report(f: Forwarded, status: number): void {
    const fr = this.res.framing;
    this.hooks.observed(status, (performance.now() - f.start) / 1000, f.bytes, status !== 0 && fr.kind === 'length' ? fr.length : 0, f.head, f.start);
  }

  /** 101 Switching Protocols: from here on both directions are piped unchanged. */
  private toRaw(): void {
    this.state = 'raw';
    this.readPaused = false;
    const rest = this.held;
    this.held = undefined;
    if (rest !== undefined && rest.length > 0) this.toUp(rest);
    this.down.resume();
  }

  /** Hands the connection to the full HTTP stack once no response is owed. */
  private maybeHandoff(): void {
    if (this.queue.length > 0) return;
    this.state = 'closed';
    this.down.off('data', this.onDown);
    this.up.off('data', this.onUp);
    this.up.off('end', this.onUpEnd);
    this.up.destroy();
    this.down.pause();
    const rest = this.held;
    this.held = undefined;
    this.hooks.handoff(rest);
  }
}
