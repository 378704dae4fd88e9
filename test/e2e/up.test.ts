// End to end: `trellis up` runs control plane, proxy and apps; traffic flows; a crashed app restarts; SIGTERM leaves nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTrellis, descendants, alive, httpGet, eventually } from './helpers.js';
import { freePorts } from '../../src/local/ports.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/up/two-services.yaml', import.meta.url));

for (const mode of ['node', 'sidecar'] as const) {
  test(`trellis up (${mode} mode): traffic through the mesh, app restart, clean stop`, { timeout: 90_000 }, async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'trellis-up-'));
    const [grpcPort, httpPort] = await freePorts(2);
    const up = runTrellis(['up', '-f', FIXTURE, '--mode', mode, '--state-dir', stateDir, '--grpc-port', String(grpcPort), '--http-port', String(httpPort)]);
    try {
      await up.waitFor(/Ctrl-C stops everything/, 60_000);
      const out = up.output();
      // The table names each workload with its identity.
      assert.match(out, /default\/frontend\s+spiffe:\/\/cluster\.local\/ns\/default\/sa\/frontend/);
      assert.match(out, /default\/backend\s+spiffe:\/\/cluster\.local\/ns\/default\/sa\/backend/);
      const row = out.split('\n').find((l) => l.startsWith('default/frontend'))!;
      const outbound = Number(row.trim().split(/\s+/)[3]);

      // frontend's proxy routes by Host to backend over mTLS.
      const r = await eventually(async () => {
        const res = await httpGet(outbound, '/hello', { host: 'backend' });
        return res.status === 200 ? res : undefined;
      }, 10_000, 'a request through the mesh');
      const body = JSON.parse(r.body);
      assert.equal(body.name, 'backend');
      assert.equal(body.path, '/hello');
      // The absolute-form (HTTP_PROXY style) request reaches it too.
      const abs = await httpGet(outbound, 'http://backend.default.svc.cluster.local/abs');
      assert.equal(abs.status, 200);
      assert.equal(JSON.parse(abs.body).path, '/abs');
      // An unknown host is an explained error, not an anonymous 503.
      const nr = await httpGet(outbound, '/', { host: 'nope' });
      assert.equal(nr.headers['x-trellis-error'], 'no_route');

      // Crash the backend app: it is restarted and serves again with a new pid.
      const before = body.pid as number;
      await httpGet(19302, '/crash');
      const after = await eventually(async () => {
        const res = await httpGet(outbound, '/', { host: 'backend' });
        const b = JSON.parse(res.body);
        return res.status === 200 && b.pid !== before ? b : undefined;
      }, 15_000, 'the crashed app to come back');
      assert.notEqual(after.pid, before);
      assert.match(up.output(), /backend.*restarting in/);

      // SIGTERM stops everything: no process left behind.
      const pids = descendants(up.child.pid!);
      assert.ok(pids.length >= 3, `expected proxy and apps under trellis up, saw ${pids.length}; trellis up said:\n${up.output().slice(-3000)}`);
      up.child.kill('SIGTERM');
      const code = await up.exited;
      assert.equal(code, 0);
      await eventually(async () => (pids.every((p) => !alive(p)) ? true : undefined), 10_000, 'all children to exit');
    } finally {
      if (up.child.exitCode === null) up.child.kill('SIGKILL');
    }
  });
}
