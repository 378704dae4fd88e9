// What the listener manager needs from every kind of listener, and the shared accept/drain plumbing.
import * as net from 'node:net';
import type { ListenerConfig } from '../config/types.js';

export interface ManagedListener {
  readonly name: string;
  readonly config: ListenerConfig;
  readonly server: net.Server;
  /** Bound port (useful when the config asked for port 0). */
  port(): number;
  listen(): Promise<void>;
  /** Stops accepting; open connections and in-flight requests continue. */
  stopAccepting(): void;
  /** Asks open connections to finish (Connection: close, GOAWAY); resolves when none remain or at the deadline, then destroys the rest. */
  drain(timeoutMs: number): Promise<void>;
  connections(): number;
}

/** Tracks accepted sockets so a drain can wait for them and destroy stragglers. */
export class ConnectionSet {
  readonly sockets = new Set<net.Socket>();
  private waiters: (() => void)[] = [];

  add(s: net.Socket): void {
    this.sockets.add(s);
    s.once('close', () => {
      this.sockets.delete(s);
      if (this.sockets.size === 0) for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Resolves once every tracked socket closed or after timeoutMs (then the rest are destroyed). */
  wait(timeoutMs: number): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        for (const s of this.sockets) s.destroy();
        resolve();
      }, timeoutMs);
      timer.unref();
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

export function listenOn(server: net.Server, address: string, port: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(new Error(`${what}: cannot listen on ${address}:${port}: ${err.code ?? err.message}`));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, address);
  });
}

/** Reads until at least `n` bytes arrived (or the socket ends), then puts them back and calls `cb` with them. */
export function peek(socket: net.Socket, n: number, cb: (first: Buffer) => void): void {
  let buf: Buffer | undefined;
  const onData = (chunk: Buffer) => {
    buf = buf ? Buffer.concat([buf, chunk]) : chunk;
    if (buf.length < n) return;
    done();
  };
  const onEnd = () => done();
  const done = () => {
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.pause();
    const b = buf ?? Buffer.alloc(0);
    if (b.length) socket.unshift(b);
    cb(b);
  };
  socket.on('data', onData);
  socket.once('end', onEnd);
}
