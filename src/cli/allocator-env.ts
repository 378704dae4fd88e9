// glibc allocator settings for the control plane: re-runs `trellis control` once with them set, passing signals and exit codes through.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

/** Set in the re-executed child: never re-exec twice. */
export const REEXEC_MARKER = 'TRELLIS_CONTROL_REEXEC';

/**
 * Freed HTTP/2 and response buffers stay in glibc's per-thread arenas (measured: 110-170 MB of a 500 MB RSS at
 * 1,000 proxies). Two arenas and mmap for blocks of 128 KiB or more give that memory back to the system.
 */
export const ALLOCATOR_DEFAULTS: Readonly<Record<string, string>> = Object.freeze({ MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' });

/**
 * The variables to add before re-executing, or undefined when the process should run as it is: not glibc's
 * platform, already re-executed, or every variable set by the user (their values win, even empty ones).
 */
export function allocatorEnv(env: NodeJS.ProcessEnv, platform: NodeJS.Platform = process.platform): Record<string, string> | undefined {
  if (platform !== 'linux' || env[REEXEC_MARKER] !== undefined) return undefined;
  const add: Record<string, string> = {};
  for (const [k, v] of Object.entries(ALLOCATOR_DEFAULTS)) if (env[k] === undefined) add[k] = v;
  return Object.keys(add).length ? add : undefined;
}

// Not SIGUSR1: Node reserves it for the inspector.
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'];

/**
 * Runs this same command again (same node, flags and arguments) with `add` in its environment and the marker set;
 * forwards signals to it; resolves with its exit code, or re-raises the signal that ended it on this process.
 */
export function reexecWith(add: Record<string, string>): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, ...add, [REEXEC_MARKER]: '1' },
  });
  const forward = (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  for (const s of FORWARDED) process.on(s, forward);
  return new Promise((resolve, reject) => {
    child.once('error', (err) => {
      for (const s of FORWARDED) process.off(s, forward);
      reject(new Error(`cannot start the control plane with allocator settings: ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      for (const s of FORWARDED) process.off(s, forward);
      if (signal) {
        // Die the way the child died, so a supervisor sees the same thing; the exit code is the fallback.
        process.kill(process.pid, signal);
        resolve(128 + (constants.signals[signal] ?? 0));
        return;
      }
      resolve(code ?? 1);
    });
  });
}
