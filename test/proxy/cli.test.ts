// `trellis proxy` as a process: argument errors, static config, ready line, `proxy wait`, SIGTERM drain.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as http from 'node:http';
import { parseWorkload, parseDurationMs } from '../../src/cli/proxy.js';
import { createTestCa } from './helpers/ca.js';
import { listen } from './helpers/mesh.js';
import * as x from './helpers/xds.js';

const MAIN = join(process.cwd(), 'src', 'cli', 'main.ts');

function run(args: string[], timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MAIN, ...args], { timeout: timeoutMs }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('--workload parsing (table)', () => {
  assert.deepEqual(parseWorkload('default/reviews-v2'), { namespace: 'default', name: 'reviews-v2' });
  assert.deepEqual(parseWorkload('ratings'), { namespace: 'default', name: 'ratings' });
  assert.deepEqual(parseWorkload('shop/cart,service=cart,sa=cart-sa,port=http:9080/http,port=9090/GRPC,label=app:cart,inbound=15102,outbound=15101'), {
    namespace: 'shop',
    name: 'cart',
    service: 'cart',
    serviceAccount: 'cart-sa',
    ports: [
      { name: 'http', port: 9080, protocol: 'HTTP' },
      { name: undefined, port: 9090, protocol: 'GRPC' },
    ],
    labels: { app: 'cart' },
    inboundPort: 15102,
    outboundPort: 15101,
  });
  assert.throws(() => parseWorkload('Bad/Name'), /expected NS\/NAME/);
  assert.throws(() => parseWorkload('a/b,colour=red'), /unknown key "colour"/);
  assert.throws(() => parseWorkload('a/b,port=x'), /port must be/);
  assert.equal(parseDurationMs('10s', 'x'), 10_000);
  assert.equal(parseDurationMs('250ms', 'x'), 250);
  assert.equal(parseDurationMs('2', 'x'), 2000);
  assert.throws(() => parseDurationMs('soon', '--drain-timeout'), /--drain-timeout: cannot read duration "soon"/);
});

test('user errors are one clear line and exit 1', async () => {
  const r1 = await run(['proxy', '--token', 't']);
  assert.equal(r1.code, 1);
  assert.equal(r1.stderr.trim(), 'error: --workload NS/NAME is required (repeat it for node mode)');
  const r2 = await run(['proxy', '--workload', 'default/a']);
  assert.match(r2.stderr.trim(), /^error: --token is required/);
  const r3 = await run(['proxy', 'wait', '--url', 'http://127.0.0.1:1/ready', '--timeout', '0.3s']);
  assert.equal(r3.code, 1);
  assert.match(r3.stderr.trim(), /^error: proxy not ready after 0.3s at http:\/\/127.0.0.1:1\/ready \(last: ECONNREFUSED\)$/);
});

test('static config: ready line, proxy wait, SIGTERM lets the in-flight request finish', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-cli-'));
  const ca = await createTestCa();
  const app = http.createServer((req, res) => setTimeout(() => res.end(`done ${req.url}`), 600));
  const appPort = await listen(app);
  try {
    const id = await ca.issue('default', 'a');
    writeFileSync(join(dir, 'cert.pem'), (id.certChainPem as string[]).join('\n'));
    writeFileSync(join(dir, 'key.pem'), id.keyPem);
    writeFileSync(join(dir, 'ca.pem'), id.trustBundlePem);
    const c = x.outboundCluster('app', 80);
    const cfg = {
      listeners: [x.outboundHttpListener('default/a', 0)],
      clusters: [c],
      endpoints: [x.loadAssignment(c.name, [{ port: appPort, workload: 'default/app', identity: '', targetPort: appPort, tls: 'none' }])],
      routes: [x.routeConfiguration('outbound|default/a', [{ name: 'app', domains: ['app'], routes: [{ name: 'default/app#0', cluster: c.name }] }])],
    };
    writeFileSync(join(dir, 'static.json'), JSON.stringify(cfg));
    const p = spawn(
      process.execPath,
      ['--import', 'tsx', MAIN, 'proxy', '--workload', 'default/a', '--static-config', join(dir, 'static.json'), '--cert', join(dir, 'cert.pem'), '--key', join(dir, 'key.pem'), '--ca', join(dir, 'ca.pem'), '--metrics-port', '0', '--admin-port', '0', '--drain-timeout', '5s', '--log-level', 'warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const line = await new Promise<string>((resolve, reject) => {
      p.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolve(out.split('\n')[0]);
      });
      p.on('exit', () => reject(new Error(`exited early: ${err}`)));
      setTimeout(() => reject(new Error(`no ready line: ${out} ${err}`)), 15_000);
    });
    assert.match(line, /^trellis proxy ready: sidecar mode, default\/a; outbound \d+; metrics \d+$/);
    const outPort = Number(/outbound (\d+)/.exec(line)![1]);
    const metricsPort = Number(/metrics (\d+)/.exec(line)![1]);
    const w = await run(['proxy', 'wait', '--metrics-port', String(metricsPort), '--timeout', '5s']);
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stdout, /^proxy ready/);

    const inflight = new Promise<{ status: number; body: string }>((resolve) => {
      http.get({ port: outPort, host: '127.0.0.1', path: '/slow', headers: { host: 'app' } }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      }).on('error', (e) => resolve({ status: -1, body: e.message }));
    });
    await new Promise((r) => setTimeout(r, 150));
    p.kill('SIGTERM');
    const exit = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    const res = await inflight;
    assert.deepEqual(res, { status: 200, body: 'done /slow' });
    assert.equal(await exit, 0);
    assert.match(err, /SIGTERM: draining/);
  } finally {
    app.closeAllConnections();
    app.close();
    ca.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
