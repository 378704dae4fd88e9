// Control plane end to end over its own APIs: HTTP apply/delete (atomic, with diagnostics), ADS with a token, NACK status, metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from '../../src/control/control-plane.js';
import { CLUSTER_TYPE, LISTENER_TYPE } from '../../src/xds/protos.js';
import { RawAdsClient, names } from './ads-client.js';

const GOOD = `apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: 9081}]
---
apiVersion: trellis.dev/v1alpha1
kind: Workload
metadata: {name: reviews-v1, namespace: default, labels: {app: reviews, version: v1}}
spec:
  service: reviews
  ports: [{name: http, port: 9081, protocol: HTTP}]
`;

const BAD = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
      weight: 30
    - destination: {host: reviews}
      weight: 30
`;

async function api(cp: ControlPlane, path: string, body?: unknown): Promise<{ status: number; json: any; text: string }> {
  const res = await fetch(`http://127.0.0.1:${cp.httpPort}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: body === undefined ? undefined : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

test('control plane: HTTP apply is atomic, ADS serves a token-registered proxy, status shows NACKs', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-cp-'));
  const cp = await startControlPlane({ stateDir: dir, store: 'memory', grpcListen: '127.0.0.1:0', httpListen: '127.0.0.1:0', debounceMs: 20, disconnectGraceMs: 200 });
  const clients: RawAdsClient[] = [];
  try {
    assert.equal((await api(cp, '/healthz')).status, 200);
    const ok = await api(cp, '/api/v1/apply', { yaml: GOOD, file: 'good.yaml' });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json.changes.map((c: any) => `${c.kind} ${c.namespace}/${c.name} ${c.action}`), [
      'Service default/reviews created',
      'Workload default/reviews-v1 created',
    ]);

    const bad = await api(cp, '/api/v1/apply', { yaml: BAD + '---\n' + GOOD.replace('9080', '9090'), file: 'bad.yaml' });
    assert.equal(bad.status, 400);
    assert.ok(bad.json.diagnostics.some((d: any) => d.code === 'TRL0203'), bad.text);
    const broken = await api(cp, '/api/v1/apply', { yaml: 'kind: [', file: 'broken.yaml' });
    assert.equal(broken.status, 400);
    assert.equal(broken.json.diagnostics[0].file, 'broken.yaml');
    const svc = await api(cp, '/api/v1/resources/service/default/reviews');
    assert.equal(svc.json.spec.ports[0].port, 9080, 'a rejected apply changes nothing');
    assert.equal((await api(cp, '/api/v1/resources?kind=vs')).json.resources.length, 0);
    assert.equal((await api(cp, '/api/v1/resources/vs/default/nope')).status, 404);

    const tok = await api(cp, '/api/v1/tokens', { namespace: 'default', serviceAccount: 'reviews' });
    assert.equal(tok.status, 200);
    const c = new RawAdsClient(
      `127.0.0.1:${cp.grpcPort}`,
      { id: 'sidecar-1', metadata: { TRELLIS_PROXY: '1', VERSION: '0.1.0', WORKLOADS: [{ name: 'reviews-v1', namespace: 'default' }] } },
      tok.json.token,
    );
    clients.push(c);
    c.request({ type: CLUSTER_TYPE });
    const cds = await c.next(5000);
    assert.ok(names(cds).includes('outbound|9080||reviews.default.svc.cluster.local'), names(cds).join(','));
    c.request({ type: LISTENER_TYPE });
    const lds = await c.next(5000);
    assert.ok(names(lds).length > 0);
    c.ack(cds);
    c.ack(lds, [], 'listener rejected for the test');
    await new Promise((r) => setTimeout(r, 200));
    const proxies = (await api(cp, '/api/v1/proxies')).json.proxies;
    assert.equal(proxies.length, 1);
    assert.equal(proxies[0].id, 'sidecar-1');
    assert.equal(proxies[0].types.clusters.state, 'SYNCED');
    assert.equal(proxies[0].types.listeners.state, 'NACKED');
    assert.equal(proxies[0].types.listeners.nackReason, 'listener rejected for the test');
    assert.equal(proxies[0].workloads[0].health, 'HEALTHY');
    const cfg = await api(cp, `/api/v1/proxies/${encodeURIComponent('sidecar-1')}/config?type=clusters`);
    assert.ok(cfg.json.clusters.some((x: any) => x.name.startsWith('outbound|9080|')));
    const reg = (await api(cp, '/api/v1/registry')).json;
    assert.equal(reg.workloads.find((w: any) => w.name === 'reviews-v1').proxy.id, 'sidecar-1');

    // a config change reaches the proxy; a delete too
    const del = await api(cp, '/api/v1/delete', { keys: [{ kind: 'Service', namespace: 'default', name: 'reviews' }] });
    assert.equal(del.status, 200, del.text);
    const cds2 = await c.next(3000);
    assert.equal(cds2.type_url, CLUSTER_TYPE);
    assert.notEqual(cds2.version_info, cds.version_info);

    const metrics = (await api(cp, '/metrics')).text;
    for (const m of ['trellis_xds_connected 1', 'trellis_control_xds_nacks_total{type="listeners"} 1', 'trellis_certificate_expiry_seconds{kind="root"}', 'process_cpu_user_seconds_total']) {
      assert.ok(metrics.includes(m), `metrics have ${m}`);
    }
    const status = (await api(cp, '/api/v1/status')).json;
    assert.equal(status.store.kind, 'memory');
    assert.equal(status.ca.roots.length, 1);
  } finally {
    for (const c of clients) c.close();
    await cp.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('control plane: a file store with a broken file at start keeps running and reports the error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'trellis-cp-'));
  const { writeFile, mkdir } = await import('node:fs/promises');
  await mkdir(join(dir, 'config'));
  await writeFile(join(dir, 'config', 'a.yaml'), 'kind: [');
  const cp = await startControlPlane({ stateDir: join(dir, 'state'), store: { file: join(dir, 'config') }, grpcListen: '127.0.0.1:0', httpListen: '127.0.0.1:0' });
  try {
    const st = (await api(cp, '/api/v1/status')).json;
    assert.equal(st.store.kind, 'file');
    assert.match(st.store.lastError.message, /rejected/);
    const r = await api(cp, '/api/v1/apply', { yaml: GOOD });
    assert.equal(r.status, 409);
    assert.match(r.json.error, /edit the files/);
  } finally {
    await cp.close();
    await rm(dir, { recursive: true, force: true });
  }
});
