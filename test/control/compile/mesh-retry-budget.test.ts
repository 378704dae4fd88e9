// Mesh spec.defaults.retryBudget -> every outbound cluster's trellis metadata -> the budget the proxy builds from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileForProxy } from '../../../src/control/compile/index.js';
import { meshSettings } from '../../../src/control/mesh.js';
import { retryBudgetOptionsFromCluster } from '../../../src/proxy/resilience/retry-budget.js';
import { CLUSTER_TYPE, packAny, unpackAny } from '../../../src/xds/protos.js';
import type { Resource } from '../../../src/api/types.js';
import { bookinfo, res, trellisProxy } from './fixtures.js';
import { clusters, trellisMeta } from './helpers.js';

const RV = 'reviews.default.svc.cluster.local';

function mesh(defaults: unknown): Resource {
  return res('Mesh', 'default', defaults === undefined ? {} : { defaults }, { namespace: 'trellis-system', apiVersion: 'trellis.dev/v1alpha1' });
}

/** Every outbound cluster of productpage's snapshot, compiled with `resources` (Mesh settings resolved as the control plane does). */
function compiled(resources: Resource[]): Record<string, any> {
  const b = bookinfo(resources);
  return clusters(compileForProxy({ ...b.input, mesh: meshSettings(resources) }, trellisProxy(b.productpage)));
}

const cases: { name: string; resources: Resource[]; meta: unknown; proxy: { ratio: number; minPerSecond: number; windowSeconds: number } }[] = [
  { name: 'no Mesh', resources: [], meta: undefined, proxy: { ratio: 0.2, minPerSecond: 10, windowSeconds: 10 } },
  { name: 'Mesh without defaults', resources: [mesh(undefined)], meta: undefined, proxy: { ratio: 0.2, minPerSecond: 10, windowSeconds: 10 } },
  { name: 'defaults without retryBudget', resources: [mesh({ timeout: '5s' })], meta: undefined, proxy: { ratio: 0.2, minPerSecond: 10, windowSeconds: 10 } },
  { name: 'every field set', resources: [mesh({ retryBudget: { retryRatio: 50, minRetriesPerSecond: 3, ttl: '30s' } })], meta: { retryRatio: 50, minRetriesPerSecond: 3, ttl: '30s' }, proxy: { ratio: 0.5, minPerSecond: 3, windowSeconds: 30 } },
  { name: 'empty budget: documented defaults spelled out', resources: [mesh({ retryBudget: {} })], meta: { retryRatio: 20, minRetriesPerSecond: 10, ttl: '10s' }, proxy: { ratio: 0.2, minPerSecond: 10, windowSeconds: 10 } },
  { name: 'ratio 0 (only the floor)', resources: [mesh({ retryBudget: { retryRatio: 0, minRetriesPerSecond: 1 } })], meta: { retryRatio: 0, minRetriesPerSecond: 1, ttl: '10s' }, proxy: { ratio: 0, minPerSecond: 1, windowSeconds: 10 } },
  { name: 'fractional ratio kept', resources: [mesh({ retryBudget: { retryRatio: 2.5 } })], meta: { retryRatio: 2.5, minRetriesPerSecond: 10, ttl: '10s' }, proxy: { ratio: 0.025, minPerSecond: 10, windowSeconds: 10 } },
  { name: 'compound ttl in whole seconds', resources: [mesh({ retryBudget: { ttl: '1m30s' } })], meta: { retryRatio: 20, minRetriesPerSecond: 10, ttl: '90s' }, proxy: { ratio: 0.2, minPerSecond: 10, windowSeconds: 90 } },
  { name: 'sub-second ttl: the shortest window', resources: [mesh({ retryBudget: { ttl: '500ms' } })], meta: { retryRatio: 20, minRetriesPerSecond: 10, ttl: '1s' }, proxy: { ratio: 0.2, minPerSecond: 10, windowSeconds: 1 } },
  { name: 'out-of-range values (validation reports them) fall back per field', resources: [mesh({ retryBudget: { retryRatio: 150, minRetriesPerSecond: -2, ttl: 'soon' } })], meta: { retryRatio: 20, minRetriesPerSecond: 10, ttl: '10s' }, proxy: { ratio: 0.2, minPerSecond: 10, windowSeconds: 10 } },
  {
    name: 'a DestinationRule policy and subsets keep the Mesh budget (no DR or route budget field exists)',
    resources: [
      mesh({ retryBudget: { retryRatio: 5, minRetriesPerSecond: 2, ttl: '20s' } }),
      res('DestinationRule', 'reviews', { host: 'reviews', trafficPolicy: { connectionPool: { http: { maxRetries: 4 } } }, subsets: [{ name: 'v1', labels: { version: 'v1' } }] }),
    ],
    meta: { retryRatio: 5, minRetriesPerSecond: 2, ttl: '20s' },
    proxy: { ratio: 0.05, minPerSecond: 2, windowSeconds: 20 },
  },
];

for (const c of cases) {
  test(`Mesh retryBudget: ${c.name}`, () => {
    const all = compiled(c.resources);
    const outbound = Object.entries(all).filter(([n]) => n.startsWith('outbound|'));
    assert.ok(outbound.length >= 4, 'bookinfo has several outbound clusters');
    for (const [name, cluster] of outbound) {
      assert.deepEqual(trellisMeta(cluster).retryBudget, c.meta, name);
      // What the proxy builds from the cluster as it arrives over xDS (encoded and decoded).
      assert.deepEqual(retryBudgetOptionsFromCluster(unpackAny(packAny(CLUSTER_TYPE, cluster))), c.proxy, name);
    }
    // Inbound clusters deliver to the local app: no retries, no budget.
    for (const [name, cluster] of Object.entries(all).filter(([n]) => n.startsWith('inbound|'))) assert.equal(trellisMeta(cluster).retryBudget, undefined, name);
  });
}

test('the subset cluster of a DestinationRule carries the Mesh budget too', () => {
  const all = compiled(cases.at(-1)!.resources);
  assert.deepEqual(trellisMeta(all[`outbound|9080|v1|${RV}`]).retryBudget, { retryRatio: 5, minRetriesPerSecond: 2, ttl: '20s' });
  assert.deepEqual(all[`outbound|9080||${RV}`].circuit_breakers.thresholds[0].max_retries, { value: 4 });
});

test('changing the Mesh budget changes the compiled clusters (no stale shared cluster)', () => {
  const a = compiled([mesh({ retryBudget: { retryRatio: 10 } })])[`outbound|9080||${RV}`];
  const b = compiled([mesh({ retryBudget: { retryRatio: 30 } })])[`outbound|9080||${RV}`];
  assert.equal(trellisMeta(a).retryBudget && (trellisMeta(a).retryBudget as any).retryRatio, 10);
  assert.equal(trellisMeta(b).retryBudget && (trellisMeta(b).retryBudget as any).retryRatio, 30);
});

test('the proxy reads ttl spellings the compiler may not have normalized (older control planes, hand-written static configs)', () => {
  const withTtl = (ttl: unknown) => ({ metadata: { filter_metadata: { trellis: { fields: { retryBudget: { structValue: { fields: { ttl } } } } } } } });
  const cases: [unknown, number][] = [
    [{ stringValue: '500ms' }, 1],
    [{ stringValue: '1m30s' }, 90],
    [{ stringValue: '15' }, 15],
    [{ numberValue: 2.7 }, 2],
    [{ stringValue: '0s' }, 10],
    [{ stringValue: 'soon' }, 10],
  ];
  for (const [ttl, seconds] of cases) assert.equal(retryBudgetOptionsFromCluster(withTtl(ttl)).windowSeconds, seconds, JSON.stringify(ttl));
});
