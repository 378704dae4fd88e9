// End to end: `trellis demo --duration` runs the embedded mesh and proves split, header routing, mTLS and denial.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTrellis, descendants, alive, eventually } from './helpers.js';

test('trellis demo --duration 20 sees every expected traffic pattern and exits 0', { timeout: 120_000 }, async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'trellis-demo-'));
  const demo = runTrellis(['demo', '--duration', '20', '--state-dir', stateDir]);
  let pids: number[] = [];
  const sample = setInterval(() => {
    if (demo.child.pid) pids = [...new Set([...pids, ...descendants(demo.child.pid)])];
  }, 1000);
  const code = await demo.exited;
  clearInterval(sample);
  const out = demo.output();
  assert.equal(code, 0, out);
  assert.match(out, /PASS {2}canary split 90\/10: reviews v1 \d+, v2 \d+/);
  assert.match(out, /PASS {2}test-user routed to v2/);
  assert.match(out, /PASS {2}mTLS on every edge/);
  assert.match(out, /PASS {2}intruder denied/);
  assert.match(out, /default\/productpage-v1\s+default\/reviews-v1/);
  assert.ok(pids.length >= 2, 'the demo ran child processes');
  await eventually(async () => (pids.every((p) => !alive(p)) ? true : undefined), 10_000, 'demo children to exit');
});
