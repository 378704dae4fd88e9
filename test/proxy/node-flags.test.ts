// `trellis proxy` run as a program gets small-heap V8 flags in NODE_OPTIONS (bin/trellis.js's shell line); the user's settings win.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCa } from './helpers/ca.js';
import * as x from './helpers/xds.js';

const BIN = join(process.cwd(), 'bin', 'trellis.js');
/** The defaults, as written in the shell line (docs/operations.md states the same). */
const DEFAULTS = '--max-semi-space-size=2';

/** NODE_OPTIONS as the shell line leaves it, for `trellis ARGS` with `env`. */
function nodeOptionsFor(args: string[], env: Record<string, string | undefined>): string {
  // Run only the shell line, with node replaced by a printer: what node would have been started with.
  const line = readFileSync(BIN, 'utf8').split('\n')[1].replace(/exec node "\$0" "\$@"$/, 'printf %s "$NODE_OPTIONS"');
  const r = spawnSync('/bin/sh', ['-c', line, BIN, ...args], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('shell line: defaults for `proxy` only, before the user NODE_OPTIONS; TRELLIS_PROXY_NODE_FLAGS replaces them (table)', () => {
  const cases: [string, string[], Record<string, string>, string][] = [
    ['proxy: the defaults', ['proxy', '--workload', 'a'], {}, `${DEFAULTS} `],
    ['other verbs: untouched', ['control'], {}, ''],
    ['other verbs keep the user NODE_OPTIONS', ['status'], { NODE_OPTIONS: '--trace-gc' }, '--trace-gc'],
    ['no verb', [], {}, ''],
    ['the user NODE_OPTIONS come later, so they win', ['proxy'], { NODE_OPTIONS: '--max-semi-space-size=8' }, `${DEFAULTS} --max-semi-space-size=8`],
    ['replaced', ['proxy'], { TRELLIS_PROXY_NODE_FLAGS: '--max-semi-space-size=1 --max-old-space-size=200' }, '--max-semi-space-size=1 --max-old-space-size=200 '],
    ['empty: none', ['proxy'], { TRELLIS_PROXY_NODE_FLAGS: '', NODE_OPTIONS: '--trace-gc' }, ' --trace-gc'],
  ];
  for (const [name, args, env, want] of cases) assert.equal(nodeOptionsFor(args, env), want, name);
});

/** The young generation V8 actually sized (2 semi-spaces) in a node started with these flags and NODE_OPTIONS. */
function youngGenerationMb(nodeFlags: string[], nodeOptions: string): number {
  const churn = "let k=[];for(let i=0;i<3e6;i++){k.push({i});if(k.length>5e3)k=[]}console.log(require('v8').getHeapSpaceStatistics().find(s=>s.space_name==='new_space').space_size)";
  const r = spawnSync(process.execPath, [...nodeFlags, '-e', churn], { env: { ...process.env, NODE_OPTIONS: nodeOptions }, encoding: 'utf8', timeout: 20_000 });
  return Number(r.stdout.trim()) / 1048576;
}

test('V8 honours the later of two semi-space flags: NODE_OPTIONS order, then the node command line', () => {
  assert.equal(youngGenerationMb([], DEFAULTS), 4);
  assert.equal(youngGenerationMb([], `${DEFAULTS} --max-semi-space-size=1`), 2);
  assert.equal(youngGenerationMb(['--max-semi-space-size=4'], DEFAULTS), 8);
});

interface Running {
  p: ChildProcess;
  line: string;
  err: () => string;
}

function startProxy(dir: string, how: 'program' | string[], env: Record<string, string | undefined>): Promise<Running> {
  const args = ['proxy', '--workload', 'default/a', '--static-config', join(dir, 'static.json'), '--cert', join(dir, 'cert.pem'), '--key', join(dir, 'key.pem'), '--ca', join(dir, 'ca.pem'), '--metrics-port', '0', '--admin-port', '0', '--drain-timeout', '2s', '--log-level', 'warn'];
  const p = spawn(how === 'program' ? BIN : process.execPath, how === 'program' ? args : [...how, BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: undefined, TRELLIS_PROXY_NODE_FLAGS: undefined, ...env },
  });
  let out = '';
  let err = '';
  p.stderr!.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line: ${out} ${err}`)), 20_000);
    p.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve({ p, line: out.split('\n')[0], err: () => err });
      }
    });
    p.once('exit', (code) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`exited ${code}: ${err}`), { code, stderr: err }));
    });
  });
}

function children(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

/** NODE_OPTIONS of a running process (undefined when unset). */
function nodeOptions(pid: number): string | undefined {
  const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  return env.find((e) => e.startsWith('NODE_OPTIONS='))?.slice('NODE_OPTIONS='.length).trim();
}

async function stopped(r: Running): Promise<number | null> {
  const exit = new Promise<number | null>((res) => r.p.once('exit', (code) => res(code)));
  r.p.kill('SIGTERM');
  return exit;
}

test('bin/trellis.js as a program: one node process with the flags; the user NODE_OPTIONS win; `node bin/trellis.js` adds none', { timeout: 50_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-flags-'));
  const ca = await createTestCa();
  try {
    const id = await ca.issue('default', 'a');
    writeFileSync(join(dir, 'cert.pem'), (id.certChainPem as string[]).join('\n'));
    writeFileSync(join(dir, 'key.pem'), id.keyPem);
    writeFileSync(join(dir, 'ca.pem'), id.trustBundlePem);
    const c = x.outboundCluster('app', 80);
    const cfg = {
      listeners: [x.outboundHttpListener('default/a', 0)],
      clusters: [c],
      endpoints: [x.loadAssignment(c.name, [{ port: 9, workload: 'default/app', identity: '', targetPort: 9, tls: 'none' }])],
      routes: [x.routeConfiguration('outbound|default/a', [{ name: 'app', domains: ['app'], routes: [{ name: 'default/app#0', cluster: c.name }] }])],
    };
    writeFileSync(join(dir, 'static.json'), JSON.stringify(cfg));

    // The shell execs node: the spawned pid is the proxy itself (no wrapper process), SIGTERM drains it.
    const g = await startProxy(dir, 'program', {});
    assert.match(g.line, /^trellis proxy ready: sidecar mode, default\/a/);
    assert.deepEqual(children(g.p.pid!), []);
    assert.match(readFileSync(`/proc/${g.p.pid}/cmdline`, 'utf8'), /trellis\.js\0proxy\0/);
    assert.equal(nodeOptions(g.p.pid!), DEFAULTS);
    assert.equal(await stopped(g), 0);
    assert.match(g.err(), /SIGTERM: draining/);

    const u = await startProxy(dir, 'program', { NODE_OPTIONS: '--max-semi-space-size=4' });
    assert.equal(nodeOptions(u.p.pid!), `${DEFAULTS} --max-semi-space-size=4`);
    assert.equal(await stopped(u), 0);

    const e = await startProxy(dir, 'program', { TRELLIS_PROXY_NODE_FLAGS: '--max-semi-space-size=1' });
    assert.equal(nodeOptions(e.p.pid!), '--max-semi-space-size=1');
    assert.equal(await stopped(e), 0);

    // Started through node, its command line decides.
    const n = await startProxy(dir, ['--max-semi-space-size=3'], {});
    assert.equal(nodeOptions(n.p.pid!), undefined);
    assert.equal(await stopped(n), 0);

    // A flag node refuses: node names it and the proxy does not start.
    const bad = await startProxy(dir, 'program', { TRELLIS_PROXY_NODE_FLAGS: '--no-such-node-flag' }).then(
      () => assert.fail('started with a bad flag'),
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(bad.code, 9);
    assert.match(bad.stderr, /--no-such-node-flag is not allowed in NODE_OPTIONS/);
  } finally {
    ca.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
