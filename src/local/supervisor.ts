// Runs child processes for `trellis up`: prefixed logs, restart with backoff, and a stop that leaves nothing behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { EventEmitter } from 'node:events';

export interface ProcessSpec {
  name: string;
  command: string;
  args: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** Restart when it exits on its own (apps: yes; proxies: yes). */
  restart: boolean;
  /** Milliseconds SIGTERM may take before SIGKILL. */
  stopTimeoutMs?: number;
}

export interface ProcessState {
  name: string;
  pid?: number;
  restarts: number;
  running: boolean;
  lastExit?: { code: number | null; signal: NodeJS.Signals | null };
}

const MIN_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 10_000;
/** A process that stays up this long is considered healthy again and its backoff resets. */
const HEALTHY_AFTER_MS = 10_000;

/**
 * One supervised process. Each child gets its own process group (detached) so that stopping it
 * also stops whatever it spawned: `trellis up` must leave no process behind.
 */
export class Supervised extends EventEmitter {
  readonly state: ProcessState;
  private child?: ChildProcess;
  private stopping = false;
  private backoffMs = MIN_BACKOFF_MS;
  private restartTimer?: NodeJS.Timeout;
  private startedAt = 0;

  constructor(
    readonly spec: ProcessSpec,
    private readonly log: (name: string, line: string, stream: 'out' | 'err') => void,
  ) {
    super();
    this.state = { name: spec.name, restarts: 0, running: false };
  }

  start(): void {
    if (this.stopping) return;
    const child = spawn(this.spec.command, this.spec.args, {
      cwd: this.spec.cwd,
      env: { ...process.env, ...this.spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child = child;
    this.startedAt = Date.now();
    this.state.pid = child.pid;
    this.state.running = true;
    createInterface({ input: child.stdout! }).on('line', (l) => this.log(this.spec.name, l, 'out'));
    createInterface({ input: child.stderr! }).on('line', (l) => this.log(this.spec.name, l, 'err'));
    child.on('error', (err) => {
      this.log(this.spec.name, `failed to start: ${err.message}`, 'err');
    });
    child.on('exit', (code, signal) => {
      this.state.running = false;
      this.state.lastExit = { code, signal };
      this.emit('exit', code, signal);
      if (this.stopping || !this.spec.restart) return;
      if (Date.now() - this.startedAt > HEALTHY_AFTER_MS) this.backoffMs = MIN_BACKOFF_MS;
      const delay = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
      this.log(this.spec.name, `exited (${signal ?? `code ${code}`}); restarting in ${delay} ms`, 'err');
      this.restartTimer = setTimeout(() => {
        this.state.restarts++;
        this.emit('restart');
        this.start();
      }, delay);
    });
  }

  /** SIGTERM to the whole process group, SIGKILL after the timeout. Resolves once it has exited. */
  stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
    const pid = child.pid;
    return new Promise((resolve) => {
      const kill = setTimeout(() => signalGroup(pid, 'SIGKILL'), this.spec.stopTimeoutMs ?? 10_000);
      child.once('exit', () => {
        clearTimeout(kill);
        // Anything the child left in its group goes too.
        signalGroup(pid, 'SIGKILL');
        resolve();
      });
      signalGroup(pid, 'SIGTERM');
    });
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

/** Colours names so interleaved logs stay readable in a terminal. */
export function prefixLogger(width: number, color = process.stdout.isTTY): (name: string, line: string) => void {
  const palette = [36, 32, 33, 35, 34, 96, 92, 93, 95, 94];
  const colors = new Map<string, number>();
  return (name, line) => {
    let c = colors.get(name);
    if (c === undefined) {
      c = palette[colors.size % palette.length];
      colors.set(name, c);
    }
    const tag = name.padEnd(width);
    process.stdout.write(color ? `\x1b[${c}m${tag}\x1b[0m | ${line}\n` : `${tag} | ${line}\n`);
  };
}
