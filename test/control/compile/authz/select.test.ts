// Which policies apply to a workload, and that any YAML shape compiles without throwing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Resource } from '../../../../src/api/types.js';
import { compileAuthorization, selectPolicies } from '../../../../src/control/compile/authz/index.js';
import type { MeshSettings, WorkloadInstance } from '../../../../src/control/model.js';

const MESH: MeshSettings = { trustDomain: 'cluster.local', rootNamespaces: ['mesh-root', 'istio-system'], certificateTtlSeconds: 86400 };
const WL: WorkloadInstance = {
  name: 'w', namespace: 'shop', labels: { app: 'cart', v: '1' }, serviceAccount: 'w', identity: 'spiffe://cluster.local/ns/shop/sa/w',
  services: ['cart.shop.svc.cluster.local'], address: '127.0.0.1', ports: [], health: 'HEALTHY', source: 'Workload',
};
const pol = (name: string, namespace: string, spec: Record<string, unknown> = {}): Resource =>
  ({ apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name, namespace }, spec });

test('selection table', () => {
  const rows: [Resource, boolean][] = [
    [pol('ns-wide', 'shop'), true],
    [pol('other-ns', 'web'), false],
    [pol('root', 'mesh-root'), true],
    [pol('istio-root', 'istio-system'), true],
    [pol('sel-hit', 'shop', { selector: { matchLabels: { app: 'cart' } } }), true],
    [pol('sel-miss', 'shop', { selector: { matchLabels: { app: 'cart', v: '2' } } }), false],
    [pol('sel-empty', 'shop', { selector: { matchLabels: {} } }), true],
    [pol('sel-other-ns', 'web', { selector: { matchLabels: { app: 'cart' } } }), false],
    [pol('root-sel', 'mesh-root', { selector: { matchLabels: { app: 'cart' } } }), true],
    [pol('ref-hit', 'shop', { targetRef: { kind: 'Service', group: '', name: 'cart' } }), true],
    [pol('refs-hit', 'shop', { targetRefs: [{ kind: 'Service', name: 'x' }, { kind: 'Service', name: 'cart' }] }), true],
    [pol('ref-miss', 'shop', { targetRef: { kind: 'Service', name: 'pay' } }), false],
    [pol('ref-other-ns', 'web', { targetRef: { kind: 'Service', name: 'cart' } }), false],
  ];
  for (const [p, want] of rows) {
    const got = selectPolicies([p], WL, MESH, []).length === 1;
    assert.equal(got, want, p.metadata.name);
  }
});

test('compileAuthorization never throws on arbitrary YAML-ish specs', () => {
  const json = fc.letrec((tie) => ({
    v: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), fc.integer(), fc.string({ maxLength: 6 }), fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(fc.constantFrom('rules', 'from', 'to', 'when', 'source', 'operation', 'key', 'values', 'notValues', 'paths', 'notPaths', 'principals', 'ipBlocks', 'action', 'selector', 'matchLabels', 'targetRef', 'targetRefs', 'kind', 'name', 'provider', 'x'), tie('v'), { maxKeys: 3 })),
  })).v;
  fc.assert(
    fc.property(json, (spec) => {
      const r = compileAuthorization([pol('fuzz', 'shop', { rules: [spec] }), pol('fuzz2', 'shop', spec as Record<string, unknown>)], WL, MESH);
      assert.ok(Array.isArray(r.filters));
    }),
    { numRuns: 200 },
  );
});
