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

test('examples/retries-timeouts.yaml: retries hide a flaky upstream; a slow one times out with 504', { timeout: 90_000 }, async () => {
  const { run, rows } = await up('retries-timeouts.yaml');
  try {
    await ready(rows.client.outbound, 'web');
    for (let i = 0; i < 20; i++) {
      const r = await request(rows.client.outbound, '/?flaky=1', { host: 'web' });
      assert.equal(r.status, 200, `request ${i}: ${r.status} ${r.body}`);
    }
    const t0 = Date.now();
    const slow = await request(rows.client.outbound, '/?delay=3000', { host: 'web' });
    const took = Date.now() - t0;
    assert.equal(slow.status, 504);
    assert.equal(slow.headers['x-trellis-error'], 'upstream_timeout');
    assert.ok(took >= 900 && took < 2500, `timed out after ${took} ms, expected about 1 s`);
    // A POST is not retried: the flaky upstream's 503 comes through.
    let failed = 0;
    for (let i = 0; i < 6; i++) {
      const r = await request(rows.client.outbound, '/?flaky=1', { host: 'web', 'content-length': '0' }, 'POST');
      if (r.status === 503) failed++;
    }
    assert.ok(failed >= 2, `POSTs failing through: ${failed}`);
  } finally {
    await stop(run);
  }
});

test('examples/circuit-breaker.yaml: concurrent calls past the pool limits get a fast overflow', { timeout: 90_000 }, async () => {
  const { run, rows } = await up('circuit-breaker.yaml');
  try {
    await ready(rows.client.outbound, 'web');
    const wide = new http.Agent({ keepAlive: false, maxSockets: 20 });
    const one = () =>
      new Promise<{ status: number; error?: string }>((resolve) => {
        http
          .get({ host: '127.0.0.1', port: rows.client.outbound, path: '/?delay=500', headers: { host: 'web' }, agent: wide }, (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, error: res.headers['x-trellis-error'] as string | undefined }));
          })
          .on('error', () => resolve({ status: 0 }));
      });
    const results = await Promise.all(Array.from({ length: 10 }, one));
    const overflow = results.filter((r) => r.status === 503 && r.error === 'overflow').length;
    const ok = results.filter((r) => r.status === 200).length;
    assert.ok(overflow >= 5, `overflow ${overflow} of 10: ${JSON.stringify(results)}`);
    assert.ok(ok >= 1 && ok <= 3, `ok ${ok} of 10`);
    assert.equal(overflow + ok, 10, `every call is either served or an overflow: ${JSON.stringify(results)}`);
  } finally {
    await stop(run);
  }
});

test('examples/outlier-detection.yaml: the failing endpoint is ejected and calls succeed', { timeout: 90_000 }, async () => {
  const { run, rows } = await up('outlier-detection.yaml');
  try {
    await eventually(async () => ((await request(rows.client.outbound, '/', { host: 'web' })).status !== 404 ? true : undefined), 10_000, 'routes');
    // Let web-b fail its consecutive 5xx and be ejected.
    for (let i = 0; i < 12; i++) await request(rows.client.outbound, '/', { host: 'web' });
    const names: Record<string, number> = {};
    for (let i = 0; i < 20; i++) {
      const r = await request(rows.client.outbound, '/', { host: 'web' });
      assert.equal(r.status, 200, `after ejection every call succeeds (got ${r.status})`);
      const n = JSON.parse(r.body).name as string;
      names[n] = (names[n] ?? 0) + 1;
    }
    assert.deepEqual(Object.keys(names), ['default/web-a']);
  } finally {
    await stop(run);
  }
});

test('examples/mirroring.yaml: v1 answers, v2 receives a copy of each call', { timeout: 90_000 }, async () => {
  const { run, rows } = await up('mirroring.yaml');
  try {
    await ready(rows.client.outbound, 'web');
    const before = JSON.parse((await request(rows['web-v2'].app, '/', {})).body).served as number;
    for (let i = 0; i < 20; i++) {
      const r = await request(rows.client.outbound, '/', { host: 'web' });
      assert.equal(JSON.parse(r.body).version, 'v1');
    }
    const after = await eventually(async () => {
      const served = JSON.parse((await request(rows['web-v2'].app, '/', {})).body).served as number;
      return served - before - 1 >= 20 ? served : undefined;
    }, 5000, 'the mirror copies');
    assert.ok(after - before - 1 >= 20);
  } finally {
    await stop(run);
  }
});

test('examples/jwt.yaml: a valid token passes, a bad one is 401, none is 403', { timeout: 90_000 }, async () => {
  const { SignJWT, importJWK } = await import('jose');
  const jwk = JSON.parse((await import('node:fs')).readFileSync(join(EXAMPLES, 'jwt-demo-signing-key.json'), 'utf8'));
  const key = await importJWK(jwk, 'ES256');
  const token = await new SignJWT({ sub: 'alice' })
    .setProtectedHeader({ alg: 'ES256', kid: 'demo-1' })
    .setIssuer('https://issuer.example')
    .setAudience('web')
    .setExpirationTime('10m')
    .sign(key);
  const { run, rows } = await up('jwt.yaml');
  try {
    const good = await eventually(async () => {
      const r = await request(rows.client.outbound, '/', { host: 'web', authorization: `Bearer ${token}` });
      return r.status === 200 ? r : undefined;
    }, 10_000, 'an authenticated call');
    assert.equal(JSON.parse(good.body).headers['x-jwt-sub'], 'alice');
    const bad = await request(rows.client.outbound, '/', { host: 'web', authorization: `Bearer ${token.slice(0, -4)}AAAA` });
    assert.equal(bad.status, 401);
    assert.equal(bad.headers['x-trellis-error'], 'unauthenticated');
    const none = await request(rows.client.outbound, '/', { host: 'web' });
    assert.equal(none.status, 403);
    assert.equal(none.headers['x-trellis-error'], 'denied');
  } finally {
    await stop(run);
  }
});

test('examples/rate-limit.yaml: a burst past the limit gets 429 rate_limited with Retry-After', { timeout: 90_000 }, async () => {
  const { run, rows } = await up('rate-limit.yaml');
  try {
    await ready(rows.client.outbound, 'web');
    await new Promise((r) => setTimeout(r, 1100)); // let the buckets refill after the readiness probe
    const results = [];
    for (let i = 0; i < 10; i++) results.push(await request(rows.client.outbound, '/', { host: 'web' }));
    const limited = results.filter((r) => r.status === 429);
    assert.ok(limited.length >= 6, `limited ${limited.length} of 10`);
    assert.equal(limited[0].headers['x-trellis-error'], 'rate_limited');
    assert.ok(Number(limited[0].headers['retry-after']) >= 1);
  } finally {
    await stop(run);
  }
});
