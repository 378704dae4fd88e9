// Every compiled resource survives packAny/unpackAny unchanged, and every field (nested Anys too) exists in the proto.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileForProxy } from '../../../src/control/compile/index.js';
import { checkShape, setStrictPacking } from '../../../src/control/compile/pack.js';
import { messageType, packAny, unpackAny } from '../../../src/xds/protos.js';
import type { XdsSnapshot } from '../../../src/control/model.js';
import { PROXYLESS, bookinfo, res, trellisProxy } from './fixtures.js';
import { normalize } from './helpers.js';
import { richConfig } from './rich-config.js';

function assertRoundTrip(snap: XdsSnapshot): number {
  let n = 0;
  for (const [typeUrl, byName] of Object.entries(snap)) {
    for (const [name, value] of Object.entries(byName)) {
      checkShape(messageType(typeUrl), value, name);
      const back = unpackAny(packAny(typeUrl, value));
      assert.deepEqual(normalize(back), normalize(value), `${typeUrl} ${name} lost data in a proto round trip`);
      n++;
    }
  }
  return n;
}

test('checkShape rejects a field the proto lacks', () => {
  assert.throws(() => checkShape(messageType('envoy.config.cluster.v3.Cluster'), { name: 'x', lb_polcy: 'RANDOM' }), /lb_polcy/);
  assert.throws(() => checkShape(messageType('envoy.config.cluster.v3.Cluster'), { lb_policy: 'FASTEST' }), /FASTEST/);
});

test('trellis proxy snapshot with every feature round-trips', () => {
  setStrictPacking(true);
  try {
    const b = bookinfo(richConfig());
    const n = assertRoundTrip(compileForProxy(b.input, trellisProxy(b.productpage, b.reviews[0])));
    assert.ok(n > 15);
  } finally {
    setStrictPacking(false);
  }
});

test('proxyless snapshot round-trips', () => {
  setStrictPacking(true);
  try {
    const b = bookinfo([...richConfig(), res('Workload', 'x', {})]);
    const snap = compileForProxy(b.input, PROXYLESS, { listeners: ['reviews', 'ratings.default:9080', 'nope'] });
    assert.ok(assertRoundTrip(snap) > 4);
  } finally {
    setStrictPacking(false);
  }
});
