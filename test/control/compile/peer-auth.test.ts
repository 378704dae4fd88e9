// PeerAuthentication precedence: port-level > workload selector > namespace > mesh root namespace > PERMISSIVE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveMtls } from '../../../src/control/compile/peer-auth.js';
import { asRes } from '../../../src/control/compile/spec.js';
import { MESH, res } from './fixtures.js';

const W = { namespace: 'shop', labels: { app: 'cart' } };
const pa = (name: string, ns: string, spec: unknown) => res('PeerAuthentication', name, spec, { namespace: ns, apiVersion: 'security.istio.io/v1' });

const ROOT_STRICT = pa('mesh', 'trellis-system', { mtls: { mode: 'STRICT' } });
const ISTIO_DISABLE = pa('mesh', 'istio-system', { mtls: { mode: 'DISABLE' } });
const NS_PERMISSIVE = pa('ns', 'shop', { mtls: { mode: 'PERMISSIVE' } });
const NS_UNSET = pa('ns-unset', 'shop', { mtls: { mode: 'UNSET' } });
const WL_STRICT = pa('cart', 'shop', { selector: { matchLabels: { app: 'cart' } }, mtls: { mode: 'STRICT' } });
const WL_PORT = pa('cart-port', 'shop', { selector: { matchLabels: { app: 'cart' } }, portLevelMtls: { '8080': { mode: 'DISABLE' } } });
const WL_OTHER = pa('other', 'shop', { selector: { matchLabels: { app: 'other' } }, mtls: { mode: 'DISABLE' } });
const OTHER_NS = pa('ns', 'elsewhere', { mtls: { mode: 'DISABLE' } });

const table: [string, ReturnType<typeof pa>[], number, string, string][] = [
  ['nothing -> PERMISSIVE default', [], 9080, 'PERMISSIVE', 'default'],
  ['mesh root namespace applies', [ROOT_STRICT], 9080, 'STRICT', 'trellis-system/mesh'],
  ['istio-system is a root namespace too', [ISTIO_DISABLE], 9080, 'DISABLE', 'istio-system/mesh'],
  ['namespace beats root', [ROOT_STRICT, NS_PERMISSIVE], 9080, 'PERMISSIVE', 'shop/ns'],
  ['UNSET namespace policy inherits from root', [ROOT_STRICT, NS_UNSET], 9080, 'STRICT', 'trellis-system/mesh'],
  ['workload selector beats namespace', [NS_PERMISSIVE, WL_STRICT], 9080, 'STRICT', 'shop/cart'],
  ['selector for other labels does not apply', [NS_PERMISSIVE, WL_OTHER], 9080, 'PERMISSIVE', 'shop/ns'],
  ['port-level beats workload selector', [WL_STRICT, WL_PORT], 8080, 'DISABLE', 'shop/cart-port'],
  ['port-level only for its port; other port inherits', [NS_PERMISSIVE, WL_PORT], 9080, 'PERMISSIVE', 'shop/ns'],
  ['another namespace does not apply', [OTHER_NS], 9080, 'PERMISSIVE', 'default'],
];

for (const [name, pas, port, mode, decidedBy] of table) {
  test(`PeerAuthentication: ${name}`, () => {
    assert.deepEqual(effectiveMtls(asRes(pas), MESH, W, port), { mode, decidedBy });
  });
}

test('PeerAuthentication: a custom Mesh root namespace is honoured', () => {
  const custom = pa('mesh', 'mesh-root', { mtls: { mode: 'STRICT' } });
  assert.equal(effectiveMtls(asRes([custom]), { ...MESH, rootNamespaces: ['mesh-root'] }, W, 1).mode, 'STRICT');
  assert.equal(effectiveMtls(asRes([custom]), MESH, W, 1).mode, 'PERMISSIVE');
});
