// `trellis ca` as a child process: help, one-line usage errors, JSON output of status and rotate, 409 while a rotation runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startControlPlane } from '../../src/control/control-plane.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('trellis ca: help, usage errors as one line, status and rotate as JSON', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-cacli-'));
  const cp = await startControlPlane({ stateDir: dir, store: 'memory', grpcListen: '127.0.0.1:0', httpListen: '127.0.0.1:0', debounceMs: 20 });
  const ctl = ['--control', cp.httpAddress];
  try {
    const [help, none, bogus, badTimeout, unreachable] = await Promise.all([
      cli(['ca', '--help']),
      cli(['ca', ...ctl]),
      cli(['ca', 'bogus', ...ctl]),
      cli(['ca', 'rotate', '--timeout', 'soon', ...ctl]),
      cli(['ca', 'status', '--control', '127.0.0.1:1']),
    ]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /trellis ca rotate \[--timeout 5m\]/);
    for (const [r, re] of [
      [none, /^error: missing subcommand/],
      [bogus, /^error: unknown subcommand "ca bogus"/],
      [badTimeout, /^error: --timeout "soon" is not a duration/],
      [unreachable, /^error: cannot reach the control plane at 127\.0\.0\.1:1/],
    ] as const) {
      assert.equal(r.code, 1);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }

    const old = cp.ca.roots()[0].fingerprint;
    const status = JSON.parse((await cli(['ca', 'status', '-o', 'json', ...ctl])).stdout) as { roots: { fingerprint: string; signing: boolean }[] };
    assert.deepEqual(status.roots.map((r) => [r.fingerprint, r.signing]), [[old, true]]);
    const rotated = await cli(['ca', 'rotate', '-o', 'json', ...ctl]);
    assert.equal(rotated.code, 0, rotated.stderr);
    const report = JSON.parse(rotated.stdout) as { ok: boolean; oldRoot: string; newRoot: string; retired: string[] };
    assert.equal(report.ok, true);
    assert.deepEqual([report.oldRoot, report.retired], [old, [old]]);
    assert.deepEqual(cp.ca.roots().map((r) => r.fingerprint), [report.newRoot]);

    // While a rotation runs (held in step 1 by a push that does not finish), another is refused with one line.
    const origPush = cp.ads.pushAll.bind(cp.ads);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    cp.ads.pushAll = async () => {
      await held;
      return origPush();
    };
    const first = cli(['ca', 'rotate', '--timeout', '20s', ...ctl]);
    await new Promise((r) => {
      const t = setInterval(() => cp.rotator.busy && (clearInterval(t), r(undefined)), 20);
    });
    const second = await cli(['ca', 'rotate', ...ctl]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /^error: POST \/api\/v1\/ca\/rotate: 409 a root rotation is already running/);
    release();
    cp.ads.pushAll = origPush;
    const firstDone = await first;
    assert.equal(firstDone.code, 0, firstDone.stderr);
  } finally {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
