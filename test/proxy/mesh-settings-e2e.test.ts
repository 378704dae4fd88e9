// Mesh settings end to end (control plane -> xDS -> real proxies): defaults.timeout gives 504 upstream_timeout from a
// slow app, accessLog writes JSON then (after a Mesh change) text lines to its file, pathNormalization refuses %2F by
// default and DECODE_AND_MERGE_SLASHES routes /a%2Fb as /a/b.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Resource } from '../../src/api/types.js';
import { call, startTestMesh } from '../telemetry/mesh.js';

function meshResource(spec: Record<string, unknown>): Resource {
  return { apiVersion: 'trellis.dev/v1alpha1', kind: 'Mesh', metadata: { name: 'default', namespace: 'trellis-system' }, spec } as Resource;
}

/** Polls `check` until it returns a value (bounded; the deadline fails the test, it is not an assertion on timing). */
async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

test('Mesh defaults.timeout, accessLog (json -> text) and pathNormalization through real proxies', { timeout: 45_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-mesh-e2e-'));
  const file = join(dir, 'access.log');
  const mesh = await startTestMesh(
    [{ name: 'client' }, { name: 'slow', delayMs: 2000 }, { name: 'fast' }],
    [meshResource({ defaults: { timeout: '300ms' }, accessLog: { format: 'json', path: file } })],
  );
  try {
    const out = mesh.outbound('client');
    // defaults.timeout: the route for `slow` sets none, so the Mesh's 300ms applies.
    const slow = await call(out, 'slow', '/');
    assert.equal(slow.status, 504, slow.body);
    assert.equal(slow.headers['x-trellis-error'], 'upstream_timeout');
    // Default normalization: %2F refused by the caller's proxy.
    const refused = await call(out, 'fast', '/a%2Fb');
    assert.equal(refused.status, 400, refused.body);
    assert.equal(refused.headers['x-trellis-error'], 'bad_request');
    assert.equal((await call(out, 'fast', '/a//b')).status, 200);

    // accessLog json: the 504 and the 400 appear as JSON lines in the Mesh's file.
    const json = await until('JSON access log lines', () => {
      const recs = lines(file).map((l) => JSON.parse(l));
      return recs.some((r) => r.error_code === 'upstream_timeout') && recs.some((r) => r.error_code === 'bad_request') ? recs : undefined;
    });
    const timeoutRec = json.find((r) => r.error_code === 'upstream_timeout' && r.direction === 'outbound');
    assert.equal(timeoutRec.status, 504);
    assert.equal(timeoutRec.source_workload, 'default/client');

    // Change the Mesh: text lines, DECODE_AND_MERGE_SLASHES. The proxies reconfigure without a restart.
    await mesh.cp.store.apply([meshResource({ defaults: { timeout: '300ms' }, accessLog: { format: 'text', path: file }, pathNormalization: 'DECODE_AND_MERGE_SLASHES' })]);
    const decoded = await until('DECODE_AND_MERGE_SLASHES to reach the proxy', async () => {
      const r = await call(out, 'fast', '/a%2Fb');
      return r.status === 200 ? r : undefined;
    });
    assert.equal(JSON.parse(decoded.body).path, '/a/b', 'the app receives the decoded, merged path');
    const text = await until('a text access log line', () => lines(file).find((l) => l.includes('outbound "GET /a/b HTTP/1.1" 200 -')));
    assert.match(text, /^\d{4}-\d\d-\d\dT\S+Z outbound "GET \/a\/b HTTP\/1\.1" 200 - authority=fast .*source_workload=default\/client .*duration_ms=/);
  } finally {
    await mesh.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Mesh accessLog enabled: false turns off a launcher default; no block leaves it on', { timeout: 30_000 }, async () => {
  // --access-log-default as `trellis up` passes it; a file here so the test can read it.
  const dir = mkdtempSync(join(tmpdir(), 'trellis-mesh-e2e-'));
  const file = join(dir, 'default.log');
  const mesh = await startTestMesh([{ name: 'client' }, { name: 'fast' }], [meshResource({ trustDomain: 'cluster.local' })], { accessLogDefault: file });
  try {
    const out = mesh.outbound('client');
    assert.equal((await call(out, 'fast', '/one')).status, 200);
    await until('the default log', () => (lines(file).some((l) => l.includes('"/one"')) ? true : undefined));
    await mesh.cp.store.apply([meshResource({ trustDomain: 'cluster.local', accessLog: { enabled: false } })]);
    // Once the proxies hold the new config, requests are no longer logged: wait for a request that is not.
    await until('logging to stop', async () => {
      const marker = `/probe-${Math.random().toString(36).slice(2)}`;
      assert.equal((await call(out, 'fast', marker)).status, 200);
      await new Promise((r) => setTimeout(r, 100));
      return lines(file).some((l) => l.includes(marker)) ? undefined : true;
    });
  } finally {
    await mesh.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
