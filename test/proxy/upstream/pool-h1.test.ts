// UpstreamPool.h1: one H1Pool per pool key, the cluster breaker's 'connections' held per open connection, pools retired by prune/close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { UpstreamPool } from '../../../src/proxy/upstream/pool.js';
import { h1Request, type H1Error } from '../../../src/proxy/upstream/h1-client.js';
import type { H1Pool } from '../../../src/proxy/upstream/h1-pool.js';
import { CircuitBreaker } from '../../../src/proxy/resilience/index.js';
import type { ClusterConfig } from '../../../src/proxy/config/types.js';
import type { EndpointInfo } from '../../../src/proxy/policy-api.js';

const cluster = () => ({ name: 'outbound|80||b', port: 80, service: 'b.default.svc.cluster.local', connectTimeoutMs: 1000 }) as unknown as ClusterConfig;
const plain = (port: number) => ({ id: `127.0.0.1:${port}`, address: '127.0.0.1', port, metadata: { tls: 'none' } }) as unknown as EndpointInfo;

type Outcome = { status: number } | { error: H1Error };

function send(p: H1Pool, path = '/'): Promise<Outcome> {
  return new Promise((resolve) => {
    let status = 0;
    h1Request(p, { method: 'GET', path, headers: { host: 'b' } }, {
      onResponse: (s) => (status = s),
      onData: () => {},
      onEnd: () => resolve({ status }),
      onError: (error) => resolve({ error }),
    });
  });
}

async function withApp(fn: (port: number, held: http.ServerResponse[]) => Promise<void>): Promise<void> {
  const held: http.ServerResponse[] = [];
  const app = http.createServer((req, res) => {
    if (req.url === '/hold') return void held.push(res);
    res.end('ok');
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  try {
    await fn((app.address() as AddressInfo).port, held);
  } finally {
    app.closeAllConnections();
    await new Promise<void>((r) => app.close(() => r()));
  }
}

test('one H1Pool per key, apart from the node agent; a pruned pool is retired and replaced', async () => {
  await withApp(async (port) => {
    const pool = new UpstreamPool();
    try {
      const c = cluster();
      const ep = plain(port);
      const p = pool.h1(c, ep, undefined);
      assert.equal(pool.h1(c, ep, undefined), p);
      assert.equal(pool.h1(cluster(), ep, undefined), p);
      assert.notEqual(pool.h1(c, plain(port + 1), undefined), p);
      assert.ok(pool.agent(c, ep, undefined) !== (p as unknown));
      assert.deepEqual(await send(p), { status: 200 });
      assert.equal(p.idleCount, 1);
      pool.prune(() => false);
      assert.equal(p.idleCount, 0);
      const after = pool.h1(c, ep, undefined);
      assert.notEqual(after, p);
      assert.deepEqual(await send(after), { status: 200 });
    } finally {
      pool.close();
    }
  });
});

test('the breaker counts open connections: past max_connections a new one fails as overflow; closing releases', async () => {
  await withApp(async (port, held) => {
    const br = new CircuitBreaker({ connections: 1 });
    const pool = new UpstreamPool({ breaker: () => br });
    try {
      const p = pool.h1(cluster(), plain(port), undefined);
      const first = send(p, '/hold');
      while (held.length === 0) await new Promise((r) => setImmediate(r));
      assert.equal(br.active.connections, 1);
      const second = await send(p);
      assert.ok('error' in second);
      assert.equal(second.error.trellisCode, 'overflow');
      assert.match(second.error.message, /max_connections \(1\)/);
      held[0].end('done');
      assert.deepEqual(await first, { status: 200 });
      // Idle and reused: still one connection.
      assert.deepEqual(await send(p), { status: 200 });
      assert.equal(br.active.connections, 1);
      pool.close();
      while (br.active.connections > 0) await new Promise((r) => setImmediate(r));
    } finally {
      pool.close();
    }
  });
});

test('wouldQueueH1 applies the cluster cap: with the cap reached and nothing idle, a request would wait', async () => {
  await withApp(async (port, held) => {
    const pool = new UpstreamPool();
    try {
      const p = pool.h1(cluster(), plain(port), undefined);
      assert.equal(pool.wouldQueueH1(p, 1), false);
      const first = send(p, '/hold');
      while (held.length === 0) await new Promise((r) => setImmediate(r));
      assert.equal(pool.wouldQueueH1(p, 1), true);
      assert.equal(pool.wouldQueueH1(p, 2), false);
      held[0].end('done');
      assert.deepEqual(await first, { status: 200 });
      assert.equal(pool.wouldQueueH1(p, 1), false);
    } finally {
      pool.close();
    }
  });
});
