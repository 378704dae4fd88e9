// Reads a process's CPU time (/proc/PID/stat), memory (/proc/PID/smaps_rollup) and child pids, for benchmarks.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** utime + stime of the whole process (all threads), in seconds. */
export function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may hold spaces and parentheses: fields are counted after the last ')'.
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / ticksPerSecond();
}

export function totalCpuSeconds(pids: number[]): number {
  return pids.reduce((s, p) => s + cpuSeconds(p), 0);
}

export interface Memory {
  /** Unique set size: Private_Clean + Private_Dirty (kB). */
  ussKb: number;
  rssKb: number;
  pssKb: number;
}

export function memory(pid: number): Memory {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { ussKb: field('Private_Clean') + field('Private_Dirty'), rssKb: field('Rss'), pssKb: field('Pss') };
}

/** Memory of one logical proxy made of several processes (nginx master + worker): USS and PSS add up; RSS counts shared pages once per process. */
export function memorySum(pids: number[]): Memory {
  const m = pids.map(memory);
  return { ussKb: sum(m.map((x) => x.ussKb)), rssKb: sum(m.map((x) => x.rssKb)), pssKb: sum(m.map((x) => x.pssKb)) };
}

/** Direct children of a process (from /proc/PID/task/PID/children). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'n/a';
  }
}

export function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}
