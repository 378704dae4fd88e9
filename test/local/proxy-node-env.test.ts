// The node flags `trellis up` gives its proxies: the same small-heap default as an installed `trellis proxy`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { proxyNodeEnv } from '../../src/local/local-mesh.js';

const cases: { name: string; env: NodeJS.ProcessEnv; want: Record<string, string> }[] = [
  { name: 'default flag', env: {}, want: { NODE_OPTIONS: '--max-semi-space-size=2' } },
  { name: "user's NODE_OPTIONS come after (and so win)", env: { NODE_OPTIONS: '--max-semi-space-size=8' }, want: { NODE_OPTIONS: '--max-semi-space-size=2 --max-semi-space-size=8' } },
  { name: 'TRELLIS_PROXY_NODE_FLAGS replaces the default', env: { TRELLIS_PROXY_NODE_FLAGS: '--max-old-space-size=64' }, want: { NODE_OPTIONS: '--max-old-space-size=64' } },
  { name: 'empty TRELLIS_PROXY_NODE_FLAGS: no flags', env: { TRELLIS_PROXY_NODE_FLAGS: '' }, want: {} },
  { name: 'empty flags keep the user NODE_OPTIONS', env: { TRELLIS_PROXY_NODE_FLAGS: '', NODE_OPTIONS: '--trace-warnings' }, want: { NODE_OPTIONS: '--trace-warnings' } },
];
for (const c of cases) test(`proxyNodeEnv: ${c.name}`, () => assert.deepEqual(proxyNodeEnv(c.env), c.want));
