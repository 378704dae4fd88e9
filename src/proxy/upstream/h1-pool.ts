// Keep-alive HTTP/1.1 connections to one upstream: connect on demand, hand out idle ones LIFO, queue past the cap, close when idle too long.
import type { Socket } from 'node:net';

/** Opens one connection; the pool waits for `readyEvent` on it (or its 'close') before use. */
export type Connect = () => Socket;

export interface H1PoolOptions {
  connect: Connect;
  /** Event meaning "connected and verified": 'trellis:ready' for openUpstream, 'secureConnect' for tls, 'connect' for net. */
  readyEvent?: string;
  /** Open connections (connecting, busy and idle) at most; further requests wait. */
  maxSockets?: number;
  /** Idle connections kept; a connection freed past this closes. */
  maxIdle?: number;
  /** Idle connections close after about this long (never later: peers' keep-alive timeouts are usually 5 s). */
  idleMs?: number;
  /** Requests per connection before it retires (0 = unlimited). */
  maxRequestsPerSocket?: number;
}

/** Who is using a connection: gets its socket's events while it holds it. */
export interface ConnUser {
  onConnData(chunk: Buffer): void;
  onConnEnd(): void;
  onConnClose(err: Error | undefined): void;
  onConnDrain(): void;
}

/** A request waiting for a connection. */
export interface Waiter {
  onConn(conn: H1Conn): void;
  onConnectError(err: Error): void;
}

/** One upstream socket, its listeners installed once (no per-request listener churn). */
export class H1Conn {
  ready = false;
  /** Requests started on it. */
  served = 0;
  user: ConnUser | undefined = undefined;
  idleSince = 0;
  idle = false;
  closed = false;
  error: Error | undefined = undefined;
  /** The request this connection was opened for, until it is ready. */
  bound: Waiter | undefined;

  constructor(
    readonly pool: H1Pool,
    readonly socket: Socket,
  ) {}

  /** Whether the request now on this connection is its first (a failure on a reused one may be the keep-alive race). */
  get reused(): boolean {
    return this.served > 1;
  }
}

const WAITER_GONE = Symbol('gone');
type QueuedWaiter = Waiter & { [WAITER_GONE]?: boolean };

function failWaiter(w: QueuedWaiter, err: Error): void {
  if (!w[WAITER_GONE]) w.onConnectError(err);
}

export class H1Pool {
  readonly opts: Required<H1PoolOptions>;
  maxSockets: number;
  /** Connections open or opening. */
  open = 0;
  private readonly idleList: H1Conn[] = [];
  private readonly queue: QueuedWaiter[] = [];
  private queueHead = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private retired = false;

  constructor(opts: H1PoolOptions) {
    this.opts = {
      connect: opts.connect,
      readyEvent: opts.readyEvent ?? 'connect',
      maxSockets: opts.maxSockets ?? 512,
      maxIdle: opts.maxIdle ?? 64,
      idleMs: opts.idleMs ?? 4000,
      maxRequestsPerSocket: opts.maxRequestsPerSocket ?? 0,
    };
    this.maxSockets = this.opts.maxSockets;
  }

  get idleCount(): number {
    return this.idleList.length;
  }

  get pending(): number {
    return this.queue.length - this.queueHead;
  }

  /** True when a request now would wait: no idle connection and the cap reached. */
  wouldQueue(): boolean {
    return this.idleList.length === 0 && this.open >= this.maxSockets;
  }

  /** Gives `w` a connection now (idle, most recent first), opens one, or queues it. */
  acquire(w: Waiter): void {
    // Failures are reported on a later tick: the caller has its exchange object in hand by then.
    if (this.retired) return void process.nextTick(failWaiter, w, new Error('connection pool closed'));
    const c = this.idleList.pop();
    if (c !== undefined) return this.hand(c, w);
    if (this.open < this.maxSockets) return this.openFor(w);
    this.queue.push(w);
  }

  /** The waiter gave up (aborted) before it got a connection. */
  cancel(w: Waiter): void {
    (w as QueuedWaiter)[WAITER_GONE] = true;
  }

  /** The user is done and the connection is clean: reuse it (or close it when no longer wanted). */
  release(c: H1Conn): void {
    c.user = undefined;
    const max = this.opts.maxRequestsPerSocket;
    if (this.retired || c.closed || c.socket.destroyed || (max > 0 && c.served >= max)) return this.destroy(c);
    const w = this.nextWaiter();
    if (w !== undefined) return this.hand(c, w);
    if (this.idleList.length >= this.opts.maxIdle) return this.destroy(c);
    c.idle = true;
    c.idleSince = Date.now();
    c.socket.unref();
    this.idleList.push(c);
    this.armSweeper();
  }

  /** Closes a connection that must not be reused (error, abort, unclean end, connection: close). */
  destroy(c: H1Conn): void {
    c.user = undefined;
    if (!c.socket.destroyed) c.socket.destroy();
  }

  /** No more reuse: idle connections close now; busy ones close when their request ends. */
  retire(): void {
    this.retired = true;
    for (const c of this.idleList.splice(0)) c.socket.destroy();
    for (let w = this.nextWaiter(); w !== undefined; w = this.nextWaiter()) w.onConnectError(new Error('connection pool closed'));
    if (this.sweeper) clearTimeout(this.sweeper);
    this.sweeper = undefined;
  }

  private hand(c: H1Conn, w: Waiter): void {
    if (c.idle) {
      c.idle = false;
      c.socket.ref();
    }
    c.served++;
    w.onConn(c);
  }

  private nextWaiter(): Waiter | undefined {
    while (this.queueHead < this.queue.length) {
      const w = this.queue[this.queueHead++];
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
      if (!w[WAITER_GONE]) return w;
    }
    if (this.queueHead > 0) {
      this.queue.length = 0;
      this.queueHead = 0;
    }
    return undefined;
  }

  private openFor(w: Waiter | undefined): void {
    let socket: Socket;
    try {
      socket = this.opts.connect();
    } catch (err) {
      if (w !== undefined) process.nextTick(failWaiter, w, err as Error);
      return;
    }
    const c = new H1Conn(this, socket);
    c.bound = w;
    this.open++;
    socket.on('data', (chunk: Buffer) => {
      if (c.user !== undefined) c.user.onConnData(chunk);
      // Bytes nobody asked for (an idle connection): the peer is confused; never reuse it.
      else socket.destroy();
    });
    socket.on('end', () => {
      if (c.user !== undefined) c.user.onConnEnd();
    });
    socket.on('drain', () => {
      if (c.user !== undefined) c.user.onConnDrain();
    });
    socket.on('error', (err: Error) => {
      c.error ??= err;
    });
    socket.once('close', () => this.onClose(c));
    socket.once(this.opts.readyEvent, () => {
      c.ready = true;
      const bound = c.bound;
      c.bound = undefined;
      if (bound !== undefined && !(bound as QueuedWaiter)[WAITER_GONE]) return this.hand(c, bound);
      // Its request went away while connecting: the connection serves the next one or idles.
      c.served = 0;
      this.release(c);
    });
  }

  private onClose(c: H1Conn): void {
    c.closed = true;
    this.open--;
    if (c.idle) {
      c.idle = false;
      const i = this.idleList.indexOf(c);
      if (i >= 0) this.idleList.splice(i, 1);
    }
    const user = c.user;
    c.user = undefined;
    if (!c.ready) {
      const bound = c.bound;
      c.bound = undefined;
      if (bound !== undefined && !(bound as QueuedWaiter)[WAITER_GONE]) bound.onConnectError(c.error ?? new Error('connection closed before it was ready'));
    } else if (user !== undefined) user.onConnClose(c.error);
    // A slot freed: a queued request gets a new connection.
    if (!this.retired && this.open < this.maxSockets) {
      const w = this.nextWaiter();
      if (w !== undefined) this.openFor(w);
    }
  }

  private armSweeper(): void {
    if (this.sweeper !== undefined) return;
    const period = Math.max(25, Math.floor(this.opts.idleMs / 8));
    this.sweeper = setTimeout(() => {
      this.sweeper = undefined;
      // Close early rather than late: a connection older than idleMs - period may pass idleMs before the next sweep.
      const cutoff = Date.now() - (this.opts.idleMs - period);
      let n = 0;
      while (n < this.idleList.length && this.idleList[n].idleSince <= cutoff) n++;
      for (const c of this.idleList.splice(0, n)) {
        c.idle = false;
        c.socket.destroy();
      }
      if (this.idleList.length > 0) this.armSweeper();
    }, period);
    this.sweeper.unref();
  }
}
