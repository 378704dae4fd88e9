// CLI verbs as child processes against a control plane started in the test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.js';
import { CLUSTER_TYPE } from '../../src/xds/protos.js';
import { findProblems } from '../../src/cli/check.js';
import { RawAdsClient } from './ads-client.js';

const MAIN = join(process.cwd(), 'src/cli/main.ts');

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

const GOOD = `apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
`;
const BAD = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
  - timeout: soon
    route:
    - destination: {host: ratings}
`;

let dir: string;
let cp: ControlPlane;
let ctl: string[];
let client: RawAdsClient;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trellis-cli-'));
  cp = await startControlPlane({ stateDir: join(dir, 'state'), store: 'memory', grpcListen: '127.0.0.1:0', httpListen: '127.0.0.1:0', debounceMs: 20 });
  ctl = ['--control', `127.0.0.1:${cp.httpPort}`];
  await writeFile(join(dir, 'good.yaml'), GOOD);
  await writeFile(join(dir, 'bad.yaml'), BAD);
});

after(async () => {
  client?.close();
  await cp.close();
  await rm(dir, { recursive: true, force: true });
});

test('apply prints what changed; a bad file prints every diagnostic and exits 1 with nothing applied', async () => {
  const [ok, bad] = await Promise.all([
    run(['apply', '-f', join(dir, 'good.yaml'), ...ctl]),
    run(['apply', '-f', join(dir, 'bad.yaml'), join(dir, 'good.yaml'), ...ctl]),
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^Service default\/reviews (created|unchanged)$/m);
  assert.match(ok.stdout, /^VirtualService default\/reviews (created|unchanged)$/m);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /bad\.yaml:7:\d+: error TRL0206/);
  assert.match(bad.stderr, /^error: .*nothing was sent/m);
  assert.equal((await cp.store.list()).filter((r) => r.metadata.name === 'ratings').length, 0);
  const again = await run(['apply', '-f', join(dir, 'good.yaml'), ...ctl]);
  assert.match(again.stdout, /VirtualService default\/reviews unchanged/);
});

test('get lists as a table, JSON and YAML; delete by kind and name', async () => {
  await cp.store.apply([{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'gone', namespace: 'default' }, spec: { ports: [{ port: 80 }] } }]);
  const [table, json, yaml, missing] = await Promise.all([
    run(['get', 'svc', ...ctl]),
    run(['get', 'virtualservices', 'reviews', '-o', 'json', ...ctl]),
    run(['get', 'vs', '-o', 'yaml', ...ctl]),
    run(['get', 'vs', 'nope', ...ctl]),
  ]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^NAMESPACE\s+NAME\s+DETAIL/m);
  assert.match(table.stdout, /^default\s+reviews\s+ports=9080 selector=app=reviews/m);
  assert.equal(JSON.parse(json.stdout).spec.hosts[0], 'reviews');
  assert.match(yaml.stdout, /kind: VirtualService/);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error: .*404 VirtualService default\/nope not found/m);
  const del = await run(['delete', 'service', 'gone', '-n', 'default', ...ctl]);
  assert.equal(del.code, 0, del.stderr);
  assert.match(del.stdout, /Service default\/gone deleted/);
  const del2 = await run(['delete', 'service', 'gone', ...ctl]);
  assert.equal(del2.code, 1);
  assert.match(del2.stderr, /not found/);
});

test('status, config and check show a proxy and its NACK', async () => {
  const tok = await cp.tokens.create({ namespace: 'default', serviceAccount: 'reviews' });
  client = new RawAdsClient(`127.0.0.1:${cp.grpcPort}`, { id: 'sc-1', metadata: { TRELLIS_PROXY: '1', VERSION: '0.1.0', WORKLOADS: [{ name: 'reviews-v1', namespace: 'default', serviceAccount: 'reviews', service: 'reviews', ports: [{ name: 'http', port: 9081 }] }] } }, tok);
  client.request({ type: CLUSTER_TYPE });
  const r = await client.next(5000);
  client.ack(r, [], 'bad cluster for the test');
  await new Promise((res) => setTimeout(res, 100));
  const [status, statusJson, config, check, checkJson] = await Promise.all([
    run(['status', ...ctl]),
    run(['status', '-o', 'json', ...ctl]),
    run(['config', 'sc-1', 'clusters', ...ctl]),
    run(['check', ...ctl]),
    run(['check', '-o', 'json'], { TRELLIS_CONTROL: `127.0.0.1:${cp.httpPort}` }),
  ]);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /^PROXY\s+WORKLOADS\s+CONNECTED\s+LDS\s+RDS\s+CDS\s+EDS\s+SDS/m);
  assert.match(status.stdout, /^sc-1\s+default\/reviews-v1\s+\d+s\s+-\s+-\s+NACKED/m);
  assert.match(status.stdout, /sc-1: clusters NACKED .*bad cluster for the test/);
  const sj = JSON.parse(statusJson.stdout);
  assert.equal(sj.proxies[0].types.clusters.nackReason, 'bad cluster for the test');
  assert.ok(sj.workloads.some((w: any) => w.name === 'reviews-v1' && w.proxy.inboundPort > 0));
  assert.equal(config.code, 0, config.stderr);
  assert.match(config.stdout, /clusters\s+outbound\|9080\|\|reviews\.default\.svc\.cluster\.local/);
  assert.equal(check.code, 1);
  assert.match(check.stdout, /problem: proxy sc-1: clusters NACKED: bad cluster for the test/);
  assert.match(check.stdout, /trellis describe/);
  assert.equal(JSON.parse(checkJson.stdout).ok, false);
});

test('verbs fail with one line when the control plane is unreachable or arguments are wrong', async () => {
  const [down, badKind, help] = await Promise.all([
    run(['status', '--control', '127.0.0.1:1']),
    run(['get', 'gadgets', ...ctl]),
    run(['config', '--help']),
  ]);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /^error: cannot reach the control plane at 127\.0\.0\.1:1/);
  assert.equal(down.stderr.trim().split('\n').length, 1);
  assert.match(badKind.stderr, /unknown kind "gadgets"/);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: trellis config PROXY/);
});

test('trellis control runs in the foreground, prints its ports and stops cleanly on SIGINT', async () => {
  const p = spawn(process.execPath, ['--import', 'tsx', MAIN, 'control', '--state-dir', join(dir, 'state2'), '--grpc-port', '0', '--http-port', '0']);
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  const exited = new Promise<number>((res) => p.on('close', (c) => res(c ?? -1)));
  const deadline = Date.now() + 15_000;
  while (!/HTTP API http:\/\/127\.0\.0\.1:(\d+)/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const port = /HTTP API http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1];
  try {
    assert.ok(port, out);
    assert.match(out, /xDS\+CA grpc 127\.0\.0\.1:\d+/);
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
  } finally {
    p.kill('SIGINT');
  }
  assert.equal(await exited, 0);
});

test('trellis control --ca-cert/--ca-key signs with the operator CA; one without the other is refused', async () => {
  const { execFileSync } = await import('node:child_process');
  const { X509Certificate } = await import('node:crypto');
  const { readFileSync } = await import('node:fs');
  const key = join(dir, 'op-ca.key');
  const cert = join(dir, 'op-ca.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '400', '-subj', '/O=operator/CN=operator root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { stdio: 'ignore' });
  const half = await run(['control', '--ca-cert', cert, '--state-dir', join(dir, 'state-op1')]);
  assert.equal(half.code, 1);
  assert.match(half.stderr, /--ca-cert and --ca-key go together/);

  const p = spawn(process.execPath, ['--import', 'tsx', MAIN, 'control', '--state-dir', join(dir, 'state-op2'), '--grpc-port', '0', '--http-port', '0', '--ca-cert', cert, '--ca-key', key]);
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  const exited = new Promise<number>((res) => p.on('close', (c) => res(c ?? -1)));
  const deadline = Date.now() + 15_000;
  while (!/HTTP API http:\/\/127\.0\.0\.1:(\d+)/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const port = /HTTP API http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1];
  try {
    assert.ok(port, out);
    const ca = (await (await fetch(`http://127.0.0.1:${port}/api/v1/ca`)).json()) as { operatorProvided: boolean; roots: { fingerprint: string; signing: boolean }[] };
    const want = new X509Certificate(readFileSync(cert)).fingerprint256.replace(/:/g, '').toLowerCase();
    assert.equal(ca.operatorProvided, true);
    assert.deepEqual(ca.roots.map((r) => [r.fingerprint.replace(/:/g, '').toLowerCase(), r.signing]), [[want, true]]);
  } finally {
    p.kill('SIGINT');
  }
  assert.equal(await exited, 0);
});

test('check decides from a table of reported facts', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const far = '2030-01-01T00:00:00Z';
  const ok = { store: { kind: 'memory' }, ca: { roots: [{ fingerprint: 'aa', notAfter: far }], intermediates: [] } };
  const proxy = (state: 'SYNCED' | 'STALE' | 'NACKED', sentAt = '2025-12-31T23:59:59Z') => ({
    id: 'p', kind: 'trellis', connectedSince: far, workloads: [], types: { clusters: { state, sentAt, sentVersion: '3' } },
  });
  const cases: [string, unknown, unknown[], RegExp | null][] = [
    ['all good', ok, [proxy('SYNCED')], null],
    ['stale in flight is fine', ok, [proxy('STALE')], null],
    ['stale for long', ok, [proxy('STALE', '2025-12-31T23:00:00Z')], /clusters STALE/],
    ['nacked', ok, [proxy('NACKED')], /clusters NACKED/],
    ['root expires in 10 days', { ...ok, ca: { roots: [{ fingerprint: 'aa', notAfter: '2026-01-11T00:00:00Z' }], intermediates: [] } }, [], /root aa expires in 10 day/],
    ['intermediate expired', { ...ok, ca: { roots: [], intermediates: [{ fingerprint: 'bb', notAfter: '2025-01-01T00:00:00Z' }] } }, [], /intermediate bb expired/],
    ['config refused', { ...ok, store: { kind: 'file', lastError: { message: 'config in x rejected' } } }, [], /config: config in x rejected/],
  ];
  for (const [name, status, proxies, want] of cases) {
    const got = findProblems(status as any, proxies as any, now);
    if (want) assert.ok(got.some((p) => want.test(p)), `${name}: ${got.join('; ')}`);
    else assert.deepEqual(got, [], name);
  }
});
