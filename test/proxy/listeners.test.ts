// Listener binding: a taken port is reported by /ready (503 naming it) and retried until it frees up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { startProxy } from '../../src/proxy/proxy.js';
import { createTestCa } from './helpers/ca.js';
import { waitFor } from './helpers/ads-server.js';
import * as x from './helpers/xds.js';

test('a port in use: not ready with the reason, then bound once it is free', async () => {
  const ca = await createTestCa();
  const blocker = net.createServer();
  const port = await new Promise<number>((r) => blocker.listen(0, '127.0.0.1', () => r((blocker.address() as net.AddressInfo).port)));
  const p = await startProxy({
    workloads: [{ namespace: 'default', name: 'a' }],
    staticConfig: {
      listeners: [x.outboundHttpListener('default/a', port)],
      routes: [x.routeConfiguration('outbound|default/a', [{ name: 's', domains: ['s'], routes: [{ name: 'default/s#0', direct: { status: 200, body: 'ok' } }] }])],
    },
    staticIdentity: await ca.issue('default', 'a'),
    metricsPort: 0,
    adminPort: -1,
    logLevel: 'error',
  });
  try {
    await waitFor(() => /cannot listen/.test(p.readiness().reason), 3000, 'bind error');
    const r = await fetch(`http://127.0.0.1:${p.metricsPort()}/ready`);
    assert.equal(r.status, 503);
    assert.match(await r.text(), new RegExp(`^not_ready: listener outbound\\|default/a: cannot listen on 127.0.0.1:${port}: EADDRINUSE`));
    await new Promise((r2) => blocker.close(r2));
    await waitFor(() => p.isReady(), 4000, 'ready after the port frees');
    assert.equal(p.listenerPort('outbound|default/a'), port);
  } finally {
    await p.close();
    ca.cleanup();
  }
});
