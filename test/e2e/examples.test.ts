// Every feature example in examples/ runs with `trellis up` and shows the behaviour it documents.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import { runTrellis, eventually, type Running } from './helpers.js';
import { freePorts } from '../../src/local/ports.js';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));

interface Row {
  app: number;
  outbound: number;
  inbound: number;
}

/** Runs `trellis up -f examples/<file>` and returns the workload table's ports by workload name. */
async function up(file: string): Promise<{ run: Running; rows: Record<string, Row> }> {
  const stateDir = mkdtempSync(join(tmpdir(), 'trellis-ex-'));
  const [grpcPort, httpPort] = await freePorts(2);
  const run = runTrellis(['up', '-f', join(EXAMPLES, file), '--state-dir', stateDir, '--grpc-port', String(grpcPort), '--http-port', String(httpPort)]);
  await run.waitFor(/Ctrl-C stops everything/, 60_000);
  const rows: Record<string, Row> = {};
  for (const line of run.output().split('\n')) {
    const m = /^default\/(\S+)\s+spiffe:\S+\s+(\d+)\s+(\d+)\s+(\d+)/.exec(line);
    if (m) rows[m[1]] = { app: Number(m[2]), outbound: Number(m[3]), inbound: Number(m[4]) };
  }
  return { run, rows };
}

async function stop(run: Running): Promise<void> {
  run.child.kill('SIGTERM');
  assert.equal(await run.exited, 0);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

function request(port: number, path: string, headers: Record<string, string>, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Waits until the service answers 200 through the mesh (config reaches the proxy within a moment of start). */
function ready(port: number, host: string): Promise<unknown> {
  return eventually(async () => ((await request(port, '/', { host })).status === 200 ? true : undefined), 10_000, `${host} through the mesh`);
}

test('examples/canary.yaml: about 10% of calls reach v2', { timeout: 90_000 }, async () => {
  const { run, rows } = await up('canary.yaml');
  try {
    await ready(rows.client.outbound, 'web');
    const versions: Record<string, number> = {};
    for (let i = 0; i < 400; i++) {
      const r = await request(rows.client.outbound, '/', { host: 'web' });
      assert.equal(r.status, 200);
      const v = JSON.parse(r.body).version as string;
      versions[v] = (versions[v] ?? 0) + 1;
    }
    const share = (versions.v2 ?? 0) / 400;
    // 10% ± 4.5 points is about three standard deviations at n = 400.
    assert.ok(Math.abs(share - 0.1) <= 0.045, `v2 share ${share} (${JSON.stringify(versions)})`);
  } finally {
    await stop(run);
  }
});

test('examples/header-routing.yaml: user: test-user goes to v2, everyone else to v1', { timeout: 90_000 }, async () => {
  const { run, rows } = await up('header-routing.yaml');
  try {
    await ready(rows.client.outbound, 'web');
    for (let i = 0; i < 20; i++) {
      const tu = await request(rows.client.outbound, '/', { host: 'web', user: 'test-user' });
      assert.equal(JSON.parse(tu.body).version, 'v2');
      const other = await request(rows.client.outbound, '/', { host: 'web', user: 'someone' });
      assert.equal(JSON.parse(other.body).version, 'v1');
    }
  } finally {
    await stop(run);
  }
});

test('examples/fault-injection.yaml: about half the calls are answered 503 fault_injected by the proxy', { timeout: 90_000 }, async () => {
  const { run, rows } = await up('fault-injection.yaml');
  try {
    await eventually(async () => ((await request(rows.client.outbound, '/', { host: 'web' })).headers['x-trellis-error'] === 'fault_injected' ? true : undefined), 10_000, 'a fault');
    let faults = 0;
    let ok = 0;
    for (let i = 0; i < 400; i++) {
      const r = await request(rows.client.outbound, '/', { host: 'web' });
      if (r.status === 503 && r.headers['x-trellis-error'] === 'fault_injected') faults++;
      else if (r.status === 200) ok++;
    }
    assert.equal(faults + ok, 400);
    assert.ok(Math.abs(faults / 400 - 0.5) <= 0.075, `fault share ${faults / 400}`);
  } finally {
    await stop(run);
  }
});

test('examples/strict-mtls.yaml: mesh calls pass, plaintext to the inbound port is refused', { timeout: 90_000 }, async () => {
  const { run, rows } = await up('strict-mtls.yaml');
  try {
    await ready(rows.client.outbound, 'web');
    const r = await request(rows.web.inbound, '/', {}).catch((err: Error) => ({ status: 0, headers: {} as http.IncomingHttpHeaders, body: err.message }));
    assert.notEqual(r.status, 200, 'plaintext must not reach the app under STRICT');
    if (r.status !== 0) assert.equal(r.headers['x-trellis-error'], 'mtls_required');
  } finally {
    await stop(run);
  }
});

test('examples/authorization.yaml: only frontend may GET web; the intruder is denied', { timeout: 90_000 }, async () => {
  const { run, rows } = await up('authorization.yaml');
  try {
    await ready(rows.frontend.outbound, 'web');
    const denied = await request(rows.intruder.outbound, '/', { host: 'web' });
    assert.equal(denied.status, 403);
    assert.equal(denied.headers['x-trellis-error'], 'denied');
    const post = await request(rows.frontend.outbound, '/', { host: 'web', 'content-length': '0' }, 'POST');
    assert.equal(post.status, 403);
  } finally {
    await stop(run);
  }
});
