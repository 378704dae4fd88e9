// A proxy joining with only a token: it makes its key, gets its SVID from the CA over gRPC, and becomes ready.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../../src/xds/protos.js';
import { addCertificateService } from '../../src/identity/ca-service.js';
import { TokenIssuer } from '../../src/identity/token.js';
import { startProxy } from '../../src/proxy/proxy.js';
import { FakeAds, waitFor } from './helpers/ads-server.js';
import { createTestCa } from './helpers/ca.js';
import { curl } from './helpers/curl.js';
import * as x from './helpers/xds.js';

test('joins with a token: certificate from the CA (service account from the token), config from ADS, then ready', async () => {
  const ca = await createTestCa();
  const tokens = await TokenIssuer.loadOrCreate(ca.dir);
  const token = await tokens.create({ namespace: 'default', serviceAccount: 'checkout' });
  const ads = new FakeAds();
  await ads.start(0, (server) => addCertificateService(server, { ca: ca.authority, tokens }));
  ads.set(CLUSTER_TYPE, '1', []);
  ads.set(LISTENER_TYPE, '1', [x.outboundHttpListener('default/checkout-v1', 0)]);
  ads.set(ROUTE_TYPE, '1', [x.routeConfiguration('outbound|default/checkout-v1', [{ name: 's', domains: ['s'], routes: [{ name: 'default/s#0', direct: { status: 200, body: 'joined' } }] }])]);
  ads.set(SECRET_TYPE, '1', [x.rootCaSecret(ca.bundlePem)]);
  const p = await startProxy({
    controlAddress: `127.0.0.1:${ads.port}`,
    token,
    workloads: [{ namespace: 'default', name: 'checkout-v1' }],
    metricsPort: 0,
    adminPort: 0,
    logLevel: 'error',
  });
  try {
    await Promise.race([p.ready, new Promise((_, j) => setTimeout(() => j(new Error(`not ready: ${p.readiness().reason}`)), 8000))]);
    assert.equal(p.identity('default/checkout-v1')!.spiffeId, 'spiffe://cluster.local/ns/default/sa/checkout');
    const certs = (await (await fetch(`http://127.0.0.1:${p.adminPort()}/certs`)).json()) as { spiffeId: string; expiresInSeconds: number }[];
    assert.equal(certs[0].spiffeId, 'spiffe://cluster.local/ns/default/sa/checkout');
    assert.ok(certs[0].expiresInSeconds > 0);
    const r = await curl(['-H', 'Host: s', `http://127.0.0.1:${p.listenerPort('outbound|default/checkout-v1')}/`]);
    assert.equal(r.body, 'joined');
    await waitFor(() => ads.requests.some((q) => q.type_url === LISTENER_TYPE && q.version_info === '1'), 3000, 'LDS ACK');
  } finally {
    await p.close();
    ads.stop();
    ca.cleanup();
  }
});
