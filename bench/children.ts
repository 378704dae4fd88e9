// Keeps track of every process a benchmark starts and stops them all (SIGTERM, then SIGKILL), even when the benchmark fails.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { alive, childPids } from './proc-stats.js';

export interface Tracked {
  name: string;
  proc: ChildProcess;
  /** Processes it forked (nginx workers): killed too if the parent does not take them down. */
  descendants: Set<number>;
  exited: Promise<void>;
  /** Set when the process could not be started (e.g. ENOENT: the tool is not installed). */
  spawnError?: Error;
}

const running = new Set<Tracked>();

export function start(name: string, cmd: string, args: string[], opts: SpawnOptions = {}): Tracked {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  const t: Tracked = {
    name,
    proc,
    descendants: new Set(),
    exited: new Promise((r) => {
      if (proc.exitCode !== null || proc.signalCode !== null) r();
      proc.once('exit', () => r());
      proc.once('error', (err) => {
        t.spawnError = err;
        r();
      });
    }),
  };
  running.add(t);
  t.exited.then(() => running.delete(t));
  return t;
}

/** Records the current children of a tracked process so that a cleanup can reach them. */
export function noteDescendants(t: Tracked): number[] {
  if (t.proc.pid) for (const c of childPids(t.proc.pid)) t.descendants.add(c);
  return [...t.descendants];
}

function killQuietly(pid: number | undefined, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/** SIGTERM, wait up to graceMs, then SIGKILL the process and any descendant still alive. */
export async function stop(t: Tracked, graceMs = 3000): Promise<void> {
  noteDescendants(t);
  if (t.proc.exitCode === null && t.proc.signalCode === null) {
    killQuietly(t.proc.pid, 'SIGTERM');
    const timer = new Promise<'late'>((r) => setTimeout(() => r('late'), graceMs).unref());
    if ((await Promise.race([t.exited.then(() => 'done' as const), timer])) === 'late') killQuietly(t.proc.pid, 'SIGKILL');
    await t.exited;
  }
  for (const d of t.descendants) {
    const end = Date.now() + graceMs;
    while (alive(d) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    if (alive(d)) killQuietly(d, 'SIGKILL');
  }
  running.delete(t);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((t) => stop(t)));
}

let installed = false;
/** Last resort on exit or a signal: SIGKILL whatever is still running. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => {
    for (const t of running) {
      killQuietly(t.proc.pid, 'SIGKILL');
      for (const d of t.descendants) killQuietly(d, 'SIGKILL');
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      console.error(`${sig}: stopping every process the benchmark started`);
      stopAll().finally(() => process.exit(130));
    });
  }
}
