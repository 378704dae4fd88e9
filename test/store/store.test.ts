// Store semantics: atomic validated changes, watchers, file reload within a second, broken files refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Resource } from '../../src/api/types.js';
import type { Diagnostic } from '../../src/api/diagnostics.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { FileStore } from '../../src/store/file-store.js';
import { StoreRejectedError, type StoreSnapshot } from '../../src/store/store.js';
import { resourceKey } from '../../src/api/names.js';

const svc = (name: string, extra: Record<string, unknown> = {}): Resource => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'default' },
  spec: { selector: { app: name }, ports: [{ name: 'http', port: 9080 }], ...extra },
});

/** Rejects any Service whose spec has `bad: true`, so tests do not depend on the real rules. */
const fakeValidate = (rs: Resource[]): Diagnostic[] =>
  rs
    .filter((r) => r.spec?.bad)
    .map((r) => ({ severity: 'error', code: 'TEST', message: `${r.metadata.name} is bad` }) as unknown as Diagnostic);

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

test('memory store: a batch with one bad resource changes nothing', async () => {
  const s = new MemoryStore({ validate: fakeValidate });
  await s.start();
  const seen: StoreSnapshot[] = [];
  const off = s.watch((snap) => seen.push(snap));
  const r1 = await s.apply([svc('a'), svc('b')]);
  assert.equal(r1.revision, 1);
  assert.deepEqual(
    r1.changes.map((c) => `${c.name}:${c.action}`),
    ['a:created', 'b:created'],
  );
  await assert.rejects(s.apply([svc('a', { extra: 1 }), svc('c', { bad: true })]), (err: unknown) => {
    assert.ok(err instanceof StoreRejectedError);
    assert.equal(err.diagnostics.length, 1);
    return true;
  });
  assert.equal(s.snapshot().revision, 1);
  assert.deepEqual((await s.list()).map((r) => r.metadata.name).sort(), ['a', 'b']);
  assert.equal((await s.get(resourceKey(svc('a'))))?.spec.extra, undefined);
  assert.equal(seen.length, 2); // initial + one accepted change
  off();
});

test('memory store: unchanged apply keeps the revision; configured and deleted are reported', async () => {
  const s = new MemoryStore({ validate: fakeValidate });
  await s.apply([svc('a')]);
  const same = await s.apply([svc('a')]);
  assert.equal(same.revision, 1);
  assert.equal(same.changes[0].action, 'unchanged');
  const changed = await s.apply([svc('a', { x: 1 })]);
  assert.equal(changed.changes[0].action, 'configured');
  assert.equal(changed.revision, 2);
  const del = await s.delete([resourceKey(svc('a'))]);
  assert.equal(del.changes[0].action, 'deleted');
  assert.equal((await s.list()).length, 0);
  await assert.rejects(s.delete([resourceKey(svc('zzz'))]), /not found/);
});

test('memory store: the same resource twice in one change is refused', async () => {
  const s = new MemoryStore({ validate: fakeValidate });
  await assert.rejects(s.apply([svc('a'), svc('a', { x: 1 })]), /twice/);
  assert.equal(s.snapshot().revision, 0);
});

const YAML_A = `apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
`;

test('file store: picks up an edit within 1 s, refuses a broken file and keeps the previous config', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-fs-'));
  await mkdir(join(dir, 'sub'));
  const logs: string[] = [];
  const s = new FileStore(dir, { pollMs: 200, log: (m) => logs.push(m) });
  try {
    await writeFile(join(dir, 'sub', 'a.yaml'), YAML_A);
    await s.start();
    assert.equal((await s.list()).length, 1);
    assert.equal(s.lastError(), undefined);

    await writeFile(join(dir, 'b.yml'), YAML_A.replace(/reviews/g, 'ratings'));
    assert.ok(await waitFor(() => s.snapshot().resources.length === 2, 1000), 'new file seen within 1 s');

    const rev = s.snapshot().revision;
    await writeFile(join(dir, 'b.yml'), 'kind: [unclosed\n  : :');
    assert.ok(await waitFor(() => s.lastError() !== undefined, 1000), 'broken file reported within 1 s');
    assert.equal(s.snapshot().revision, rev);
    assert.equal(s.snapshot().resources.length, 2);
    assert.match(s.lastError()!.message, /rejected/);
    assert.ok(logs.some((l) => /rejected/.test(l)));

    await writeFile(join(dir, 'b.yml'), YAML_A.replace(/reviews/g, 'details'));
    assert.ok(await waitFor(() => s.lastError() === undefined, 1000), 'fixed file clears the error');
    assert.deepEqual(s.snapshot().resources.map((r) => r.metadata.name).sort(), ['details', 'reviews']);

    await assert.rejects(s.apply([svc('x')]), /edit the files/);
  } finally {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('file store: one file as the root, invalid config at start keeps an empty state with the error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-fs-'));
  const file = join(dir, 'one.yaml');
  await writeFile(file, YAML_A.replace('ports:', 'bad: true\n  ports:'));
  const s = new FileStore(file, { validate: fakeValidate, pollMs: 200 });
  try {
    await s.start();
    assert.equal(s.snapshot().resources.length, 0);
    assert.ok(s.lastError());
    assert.match(s.lastError()!.diagnostics[0].message, /bad/);
    await writeFile(file, YAML_A);
    assert.ok(await waitFor(() => s.snapshot().resources.length === 1, 1000));
  } finally {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  }
});
