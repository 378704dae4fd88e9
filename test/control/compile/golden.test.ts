// Golden files: the expanded snapshot for a bookinfo-like mesh. Regenerate with UPDATE_GOLDEN=1 after intended changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compileForProxy } from '../../../src/control/compile/index.js';
import { expandAnys } from '../../../src/xds/protos.js';
import type { XdsSnapshot } from '../../../src/control/model.js';
import { PROXYLESS, bookinfo, trellisProxy } from './fixtures.js';
import { richConfig } from './rich-config.js';

function golden(name: string, snap: XdsSnapshot): void {
  const file = fileURLToPath(new URL(`./golden/${name}.json`, import.meta.url));
  const actual = `${JSON.stringify(expandAnys(snap), null, 2)}\n`;
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    writeFileSync(file, actual);
    return;
  }
  const expected = readFileSync(file, 'utf8');
  // Compare parsed so a failure shows a structural diff; the file is the review artefact.
  assert.deepEqual(JSON.parse(actual), JSON.parse(expected), `${name} differs from its golden file (UPDATE_GOLDEN=1 to accept)`);
}

test('golden: bookinfo, productpage sidecar, no policy', () => {
  const b = bookinfo();
  golden('bookinfo-productpage-default', compileForProxy(b.input, trellisProxy(b.productpage)));
});

test('golden: bookinfo with routing, DestinationRules, PeerAuthentication and upstreams', () => {
  const b = bookinfo(richConfig());
  golden('bookinfo-productpage-rich', compileForProxy(b.input, trellisProxy(b.productpage)));
});

test('golden: proxyless client subscribed to reviews', () => {
  const b = bookinfo(richConfig());
  golden('bookinfo-proxyless-reviews', compileForProxy(b.input, PROXYLESS, { listeners: ['reviews', 'ratings:9080'] }));
});
