// Under steady traffic: config changes lose no request; a drain lets in-flight requests finish and refuses new ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { startMesh } from './helpers/mesh.js';
import { emptyRaw } from '../../src/proxy/state.js';
import * as x from './helpers/xds.js';

function request(port: number, agent: http.Agent, path: string, host = 'b'): Promise<{ status: number; body: string; connection?: string }> {
  return new Promise((resolve) => {
    const req = http.get({ port, host: '127.0.0.1', path, agent, headers: { host } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
    });
    req.on('error', (e) => resolve({ status: -1, body: e.message }));
  });
}

test('config changes under steady traffic lose zero requests', async () => {
  const mesh = await startMesh();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  try {
    const results: number[] = [];
    let stop = false;
    const worker = async () => {
      while (!stop) results.push((await request(mesh.outPort, agent, '/steady')).status);
    };
    const workers = Array.from({ length: 6 }, worker);
    // Swap config ten times: fresh route and endpoint objects each time (new route table, new balancer).
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 40));
      const raw = emptyRaw();
      const cfg = mesh.configA;
      for (const l of cfg.listeners!) raw.listeners.set(l.name, l);
      for (const c of cfg.clusters!) raw.clusters.set(c.name, { ...c });
      for (const e of cfg.endpoints!) raw.endpoints.set(e.cluster_name, { ...e });
      for (const r of cfg.routes!) raw.routes.set(r.name, { ...r });
      for (const s of cfg.secrets!) raw.secrets.set(s.name, s);
      assert.equal(mesh.a.store.update(raw), undefined);
    }
    stop = true;
    await Promise.all(workers);
    assert.ok(results.length > 50, `only ${results.length} requests`);
    assert.deepEqual(results.filter((s) => s !== 200), []);
  } finally {
    agent.destroy();
    await mesh.close();
  }
});

test('a listener moved to another port: the old one drains, the new one serves', async () => {
  const mesh = await startMesh();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  try {
    const oldPort = mesh.outPort;
    const inflight = request(oldPort, agent, '/wait-ok?delay=200', 'b');
    await new Promise((r) => setTimeout(r, 50));
    const raw = emptyRaw();
    const st = mesh.a.store.current.raw;
    for (const k of ['listeners', 'routes', 'clusters', 'endpoints', 'secrets'] as const) for (const [n, v] of st[k]) raw[k].set(n, v);
    // find a free port by letting the OS choose, then move the listener there
    const probe = http.createServer();
    const freePort = await new Promise<number>((r) => probe.listen(0, '127.0.0.1', () => r((probe.address() as { port: number }).port)));
    await new Promise((r) => probe.close(r));
    raw.listeners.set('outbound|default/a', x.outboundHttpListener('default/a', freePort));
    assert.equal(mesh.a.store.update(raw), undefined);
    const r1 = await inflight;
    assert.equal(r1.status, 200);
    assert.equal(r1.connection, 'close', 'the old listener asks the client to reconnect');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(mesh.a.listenerPort('outbound|default/a'), freePort);
    const r2 = await request(freePort, agent, '/new');
    assert.equal(r2.status, 200);
  } finally {
    agent.destroy();
    await mesh.close();
  }
});

test('drain: in-flight requests finish, new connections are refused, drain ends early when idle', async () => {
  const mesh = await startMesh({ drainTimeoutMs: 3000 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
  try {
    const inflight = Array.from({ length: 5 }, (_, i) => request(mesh.outPort, agent, `/wait-ok?delay=400&i=${i}`));
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    const drained = mesh.a.drain();
    await new Promise((r) => setTimeout(r, 50));
    const refused = await request(mesh.outPort, new http.Agent(), '/new');
    assert.equal(refused.status, -1, 'listener no longer accepts');
    const rs = await Promise.all(inflight);
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 200]);
    assert.ok(rs.every((r) => r.connection === 'close'));
    await drained;
    assert.ok(Date.now() - t0 < 2500, `drain took ${Date.now() - t0}ms`);
    assert.equal(mesh.a.isReady(), false);
  } finally {
    agent.destroy();
    await mesh.close();
  }
});

test('drain closes idle keep-alive client connections at once instead of waiting out the drain timeout', async () => {
  const mesh = await startMesh({ drainTimeoutMs: 5000 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  try {
    // Two requests leave pooled, idle keep-alive connections open to the outbound listener.
    assert.equal((await request(mesh.outPort, agent, '/one')).status, 200);
    assert.equal((await request(mesh.outPort, agent, '/two')).status, 200);
    const t0 = Date.now();
    await mesh.a.drain();
    assert.ok(Date.now() - t0 < 1500, `drain took ${Date.now() - t0}ms with only idle connections open`);
  } finally {
    agent.destroy();
    await mesh.close();
  }
});
