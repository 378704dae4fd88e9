// UpstreamPool.agent: one agent per (caller identity and generation, endpoint, SNI); the per-endpoint memo never hands out a stale one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamPool } from '../../../src/proxy/upstream/pool.js';
import type { ClusterConfig } from '../../../src/proxy/config/types.js';
import type { EndpointInfo } from '../../../src/proxy/policy-api.js';
import type { WorkloadTls } from '../../../src/proxy/tls/identity.js';

const cluster = (over: Partial<ClusterConfig> = {}) =>
  ({ name: 'outbound|80||b', port: 80, service: 'b.default.svc.cluster.local', connectTimeoutMs: 1000, ...over }) as unknown as ClusterConfig;
const endpoint = (port = 15006) =>
  ({ id: `10.0.0.7:${port}`, address: '10.0.0.7', port, metadata: { tls: 'mutual', identity: 'spiffe://td/ns/default/sa/b', targetPort: 8080 } }) as unknown as EndpointInfo;
const caller = (generation: number) => ({ spiffeId: 'spiffe://td/ns/default/sa/a', generation }) as unknown as WorkloadTls;

test('same cluster, endpoint and caller: one agent; another generation, endpoint, SNI or pruned pool: another', () => {
  const pool = new UpstreamPool();
  try {
    const c = cluster();
    const ep = endpoint();
    const me = caller(1);
    const a = pool.agent(c, ep, me);
    assert.equal(pool.agent(c, ep, me), a);
    // An equal config object from a later update finds the same pooled connections.
    assert.equal(pool.agent(cluster(), ep, me), a);
    assert.equal(pool.agent(c, ep, me), a);
    // A rotated certificate (same caller object, next generation) must not reuse connections made with the old one.
    (me as { generation: number }).generation = 2;
    const b = pool.agent(c, ep, me);
    assert.notEqual(b, a);
    assert.equal(pool.agent(c, ep, me), b);
    assert.notEqual(pool.agent(c, endpoint(15007), me), b);
    assert.notEqual(pool.agent(cluster({ subset: 'v2' } as Partial<ClusterConfig>), ep, me), b);
    assert.notEqual(pool.agent(cluster({ connectTimeoutMs: 5 }), ep, me), b);
    assert.notEqual(pool.agent(c, ep, undefined), b);
    // Pruned (endpoint gone): the remembered agent is not handed out again.
    pool.prune(() => false);
    const after = pool.agent(c, ep, me);
    assert.notEqual(after, b);
    assert.equal(pool.agent(c, ep, me), after);
  } finally {
    pool.close();
  }
});

test('the agent files every socket under one name (it serves a single endpoint)', () => {
  const pool = new UpstreamPool();
  try {
    const a = pool.agent(cluster(), endpoint(), caller(1));
    assert.equal(a.getName({ host: '10.0.0.7', port: 15006 }), a.getName({ host: 'other', port: 1, localAddress: '127.0.0.2' }));
  } finally {
    pool.close();
  }
});
