// `trellis control` re-runs itself once with glibc allocator settings; env, signals and exit codes pass through.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocatorEnv, REEXEC_MARKER } from '../../src/cli/allocator-env.js';

const MAIN = join(import.meta.dirname, '../../src/cli/main.ts');
const dir = mkdtempSync(join(tmpdir(), 'trellis-reexec-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('allocatorEnv: what to add, per platform and what the user set', () => {
  const cases: [string, NodeJS.ProcessEnv, NodeJS.Platform, Record<string, string> | undefined][] = [
    ['nothing set on linux', {}, 'linux', { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' }],
    ['one set by the user', { MALLOC_ARENA_MAX: '8' }, 'linux', { MALLOC_MMAP_THRESHOLD_: '131072' }],
    ['both set (even empty): the user wins', { MALLOC_ARENA_MAX: '', MALLOC_MMAP_THRESHOLD_: '1' }, 'linux', undefined],
    ['already re-executed', { [REEXEC_MARKER]: '1' }, 'linux', undefined],
    ['not glibc', {}, 'darwin', undefined],
  ];
  for (const [what, env, platform, want] of cases) assert.deepEqual(allocatorEnv(env, platform), want, what);
});

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  for (const k of ['MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_', REEXEC_MARKER]) if (!(k in extra)) delete env[k];
  return env;
}

function start(name: string, env: NodeJS.ProcessEnv, grpcPort = '0'): { p: ChildProcess; out: () => string; err: () => string; exit: Promise<[number | null, NodeJS.Signals | null]> } {
  const p = spawn(process.execPath, ['--import', 'tsx', MAIN, 'control', '--state-dir', join(dir, name), '--grpc-port', grpcPort, '--http-port', '0'], { env });
  let out = '';
  let err = '';
  p.stdout!.on('data', (c) => (out += c));
  p.stderr!.on('data', (c) => (err += c));
  const exit = new Promise<[number | null, NodeJS.Signals | null]>((r) => p.once('exit', (c, s) => r([c, s])));
  return { p, out: () => out, err: () => err, exit };
}

async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `trellis control` processes whose parent is `pid` (from /proc; tsx may start helper processes of its own). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== pid) continue;
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').includes('control')) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

const environOf = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');

test('re-executes once with the settings; the child sees them; SIGTERM stops it cleanly with exit 0', { skip: process.platform !== 'linux' }, async () => {
  const c = start('a', cleanEnv());
  try {
    await until(() => c.out().includes('trellis control plane:'), 'control plane up');
    assert.match(c.err(), /allocator: MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072/);
    const kids = childrenOf(c.p.pid!);
    assert.equal(kids.length, 1, `one child, got ${kids.length}`);
    const env = environOf(kids[0]);
    assert.ok(env.includes('MALLOC_ARENA_MAX=2') && env.includes('MALLOC_MMAP_THRESHOLD_=131072') && env.includes(`${REEXEC_MARKER}=1`));
    assert.deepEqual(childrenOf(kids[0]), [], 'the child did not re-execute again');
    c.p.kill('SIGTERM');
    assert.deepEqual(await c.exit, [0, null]);
    assert.match(c.out(), /stopping the control plane/);
  } finally {
    c.p.kill('SIGKILL');
  }
});

test('settings given by the user: no second process, their values kept', { skip: process.platform !== 'linux' }, async () => {
  const c = start('b', cleanEnv({ MALLOC_ARENA_MAX: '4', MALLOC_MMAP_THRESHOLD_: '65536' }));
  try {
    await until(() => c.out().includes('trellis control plane:'), 'control plane up');
    assert.match(c.err(), /allocator: MALLOC_ARENA_MAX=4 MALLOC_MMAP_THRESHOLD_=65536/);
    assert.deepEqual(childrenOf(c.p.pid!), []);
    c.p.kill('SIGINT');
    assert.deepEqual(await c.exit, [0, null]);
  } finally {
    c.p.kill('SIGKILL');
  }
});

test("the child's exit code and the signal that killed it pass through the parent", { skip: process.platform !== 'linux' }, async () => {
  // Exit code: the gRPC port is taken, so the control plane cannot start; same code and message as without re-exec.
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
  const port = String((busy.address() as AddressInfo).port);
  try {
    const direct = start('c1', cleanEnv({ MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' }), port);
    const viaParent = start('c2', cleanEnv(), port);
    const [d, v] = await Promise.all([direct.exit, viaParent.exit]);
    assert.notEqual(d[0], 0);
    assert.deepEqual(v, d);
    assert.match(viaParent.err(), new RegExp(port));
  } finally {
    busy.close();
  }
  // Signal: the child killed outright; the parent ends by the same signal.
  const c = start('d', cleanEnv());
  try {
    await until(() => c.out().includes('trellis control plane:'), 'control plane up');
    const [kid] = childrenOf(c.p.pid!);
    process.kill(kid, 'SIGKILL');
    assert.deepEqual(await c.exit, [null, 'SIGKILL']);
  } finally {
    c.p.kill('SIGKILL');
  }
});
