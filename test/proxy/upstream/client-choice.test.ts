// TRELLIS_UPSTREAM_CLIENT: the hand-written HTTP/1.1 client is the default on both upstream legs; "node" selects node's http client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { IncomingMessage } from 'node:http';
import { parseUpstreamClient } from '../../../src/proxy/upstream/client-choice.js';
import { startMesh } from '../helpers/mesh.js';

test('parseUpstreamClient: default h1, "node" selects node, anything else warns and keeps the default', () => {
  assert.deepEqual(parseUpstreamClient(undefined), { client: 'h1' });
  assert.deepEqual(parseUpstreamClient(''), { client: 'h1' });
  assert.deepEqual(parseUpstreamClient('h1'), { client: 'h1' });
  assert.deepEqual(parseUpstreamClient('node'), { client: 'node' });
  assert.deepEqual(parseUpstreamClient(' NODE '), { client: 'node' });
  const bad = parseUpstreamClient('undici');
  assert.equal(bad.client, 'h1');
  assert.match(bad.warning ?? '', /TRELLIS_UPSTREAM_CLIENT="undici" is not "h1" or "node"/);
});

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host: 'b' }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

/**
 * The raw header names the app saw for one request through the chain. node's client always adds
 * "Connection: keep-alive" on a keep-alive agent; the hand-written client sends no Connection field
 * (keep-alive is HTTP/1.1's default), so the field tells which client made the last hop.
 */
async function rawNamesThrough(client: string | undefined, inboundL7: 'auto' | 'always'): Promise<string[]> {
  // Handlers read the variable when they are built (the inbound's on its first L7 connection): keep it set throughout.
  const prev = process.env.TRELLIS_UPSTREAM_CLIENT;
  if (client === undefined) delete process.env.TRELLIS_UPSTREAM_CLIENT;
  else process.env.TRELLIS_UPSTREAM_CLIENT = client;
  try {
    const mesh = await startMesh({ inboundL7 });
    try {
      let raw: string[] = [];
      mesh.httpApp.prependListener('request', (req: IncomingMessage) => {
        raw = req.rawHeaders.filter((_, i) => i % 2 === 0);
      });
      const r = await get(mesh.outPort, '/which');
      assert.equal(r.status, 200, r.body);
      return raw;
    } finally {
      await mesh.close();
    }
  } finally {
    if (prev === undefined) delete process.env.TRELLIS_UPSTREAM_CLIENT;
    else process.env.TRELLIS_UPSTREAM_CLIENT = prev;
  }
}

for (const inboundL7 of ['auto', 'always'] as const) {
  // auto: the inbound pipes bytes, so the app sees the outbound proxy's client; always: the inbound's forwardH1.
  const leg = inboundL7 === 'auto' ? 'outbound -> peer inbound' : 'inbound -> app';
  test(`${leg}: the hand-written client is the default`, async () => {
    const names = await rawNamesThrough(undefined, inboundL7);
    assert.ok(names.includes('host'), names.join(','));
    assert.ok(!names.some((n) => n.toLowerCase() === 'connection'), names.join(','));
  });
  test(`${leg}: TRELLIS_UPSTREAM_CLIENT=node uses node's http client`, async () => {
    const names = await rawNamesThrough('node', inboundL7);
    assert.ok(names.includes('Connection'), names.join(','));
  });
}
