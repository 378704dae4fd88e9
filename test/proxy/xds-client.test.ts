// The ADS client against a tiny ADS server: subscription, ACK/NACK, last good config, readiness, reconnect with backoff.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE } from '../../src/xds/protos.js';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { structToObject } from '../../src/proxy/config/struct.js';
import { FakeAds, waitFor } from './helpers/ads-server.js';
import { createTestCa, type TestCa } from './helpers/ca.js';
import { curl } from './helpers/curl.js';
import * as x from './helpers/xds.js';

let ca: TestCa;
let ads: FakeAds;
let proxy: Proxy;
let cert: { keyPem: string; certChainPem: string[]; trustBundlePem: string };

/** A certificate source that has nothing until the test provides it. */
class LateCert extends EventEmitter {
  material?: typeof cert & { notAfter: Date };
  current() {
    if (!this.material) throw new Error('not issued');
    return this.material;
  }
}
const late = new LateCert();

const cHttp = x.outboundCluster('b', 80);
const routeFor = (body: string) =>
  x.routeConfiguration('outbound|default/a', [{ name: 'static:80', domains: ['static'], routes: [{ name: 'default/static#0', direct: { status: 200, body } }] }]);

before(async () => {
  ca = await createTestCa();
  const id = await ca.issue('default', 'a');
  cert = { keyPem: id.keyPem, certChainPem: id.certChainPem as string[], trustBundlePem: id.trustBundlePem };
  ads = new FakeAds();
  await ads.start();
  proxy = await startProxy({
    controlAddress: `127.0.0.1:${ads.port}`,
    token: 'tok-123',
    workloads: [{ namespace: 'default', name: 'a', labels: { app: 'a' }, ports: [{ name: 'http', port: 8080, protocol: 'HTTP' }] }],
    certificateSources: { 'default/a': late },
    metricsPort: 0,
    adminPort: 0,
    backoffBaseMs: 50,
    backoffMaxMs: 200,
    logLevel: (process.env.TRELLIS_TEST_LOG as 'debug') ?? 'error',
  });
});
after(async () => {
  await proxy?.close();
  ads?.stop();
  ca?.cleanup();
});

const ready = async () => (await fetch(`http://127.0.0.1:${proxy.metricsPort()}/ready`)).status;

test('subscribes with node metadata and the bearer token; /ready is 503 not_ready until config and certificate', async () => {
  await waitFor(() => ads.requests.some((r) => r.type_url === LISTENER_TYPE), 5000, 'LDS request');
  const first = ads.requests[0];
  assert.match(first.node.id, /^node~127.0.0.1~trellis-proxy-/);
  const md = structToObject(first.node.metadata);
  assert.equal(md.TRELLIS_PROXY, '1');
  assert.equal(md.PROXY_KIND, 'sidecar');
  assert.equal(typeof md.VERSION, 'string');
  assert.deepEqual((md.WORKLOADS as any[])[0].name, 'a');
  assert.deepEqual((md.WORKLOADS as any[])[0].ports, [{ name: 'http', port: 8080, protocol: 'HTTP' }]);
  assert.deepEqual(ads.metadata[0].get('authorization'), ['Bearer tok-123']);
  assert.deepEqual(ads.requests.find((r) => r.type_url === SECRET_TYPE)?.resource_names, ['ROOTCA']);

  const r = await fetch(`http://127.0.0.1:${proxy.metricsPort()}/ready`);
  assert.equal(r.status, 503);
  assert.equal(r.headers.get('x-trellis-error'), 'not_ready');
  assert.match(await r.text(), /^not_ready: workload certificate/);

  // Config first: still not ready without the certificate.
  ads.set(CLUSTER_TYPE, 'c1', [cHttp]);
  ads.set(ENDPOINT_TYPE, 'e1', [x.loadAssignment(cHttp.name, [{ port: 1, workload: 'default/b', identity: 'spiffe://cluster.local/ns/default/sa/b', targetPort: 8080 }])]);
  ads.set(LISTENER_TYPE, 'l1', [x.outboundHttpListener('default/a', 0)]);
  ads.set(ROUTE_TYPE, 'r1', [routeFor('v1')]);
  ads.set(SECRET_TYPE, 's1', [x.rootCaSecret(ca.bundlePem)]);
  await waitFor(() => proxy.store.complete(), 5000, 'complete config');
  assert.equal(await ready(), 503);
  assert.equal(proxy.isReady(), false);

  late.material = { ...cert, notAfter: new Date(Date.now() + 3600_000) };
  late.emit('rotated');
  // the proxy learns of the first certificate through 'rotated'; readiness follows
  await waitFor(async () => (await ready()) === 200, 5000, '/ready 200');
  await proxy.ready;
});

test('ACKs each accepted response with its version and nonce; EDS (on demand) and RDS are subscribed by name', async () => {
  const acks = ads.requests.filter((r) => r.type_url === LISTENER_TYPE && r.response_nonce);
  assert.equal(acks.at(-1)!.version_info, 'l1');
  assert.equal(acks.at(-1)!.error_detail, null);
  // Nothing routed to cluster b yet: its endpoints are not subscribed, and readiness did not wait for them.
  assert.equal(ads.requests.some((r) => r.type_url === ENDPOINT_TYPE && r.resource_names.length > 0), false);
  assert.equal(proxy.store.current.clusters.get(cHttp.name)!.hasEndpoints, false);
  const st = await proxy.store.whenEndpoints(cHttp.name, 5000);
  assert.equal(st.clusters.get(cHttp.name)!.hasEndpoints, true);
  const eds = ads.requests.filter((r) => r.type_url === ENDPOINT_TYPE).at(-1)!;
  assert.deepEqual(eds.resource_names, [cHttp.name]);
  const rds = ads.requests.filter((r) => r.type_url === ROUTE_TYPE).at(-1)!;
  assert.deepEqual(rds.resource_names, ['outbound|default/a']);
  assert.equal(proxy.xds!.statusJson().listeners.state, 'SYNCED');
});

test('serves traffic from the config; a route update applies', async () => {
  const port = proxy.listenerPort('outbound|default/a')!;
  assert.equal((await curl(['-H', 'Host: static', `http://127.0.0.1:${port}/`])).body, 'v1');
  ads.set(ROUTE_TYPE, 'r2', [routeFor('v2')]);
  await waitFor(async () => (await curl(['-H', 'Host: static', `http://127.0.0.1:${port}/`])).body === 'v2', 5000, 'v2');
});

test('NACKs a listener it cannot use, with the reason, and keeps the last good config', async () => {
  const bad = { ...x.outboundHttpListener('default/a', 0), filter_chains: [] };
  const before = ads.requests.length;
  ads.set(LISTENER_TYPE, 'l2', [bad]);
  await waitFor(() => ads.requests.slice(before).some((r) => r.type_url === LISTENER_TYPE && r.error_detail), 5000, 'NACK');
  const nack = ads.requests.slice(before).find((r) => r.type_url === LISTENER_TYPE && r.error_detail)!;
  assert.equal(nack.version_info, 'l1', 'NACK carries the last accepted version');
  assert.match(nack.error_detail.message, /listener outbound\|default\/a: no filter_chains/);
  assert.equal(proxy.xds!.statusJson().listeners.state, 'NACKED');
  const port = proxy.listenerPort('outbound|default/a')!;
  assert.equal((await curl(['-H', 'Host: static', `http://127.0.0.1:${port}/`])).body, 'v2');
  // Fix it again.
  ads.set(LISTENER_TYPE, 'l3', [x.outboundHttpListener('default/a', 0)]);
  await waitFor(() => proxy.xds!.statusJson().listeners.state === 'SYNCED', 5000, 'SYNCED');
});

test('NACKs undecodable bytes', async () => {
  const before = ads.requests.length;
  ads.pushRaw(CLUSTER_TYPE, 'c-bad', [{ type_url: CLUSTER_TYPE, value: Buffer.from([0xff, 0xff, 0xff]) }]);
  await waitFor(() => ads.requests.slice(before).some((r) => r.type_url === CLUSTER_TYPE && r.error_detail), 5000, 'NACK');
  assert.equal(proxy.store.current.clusters.has(cHttp.name), true);
});

test('control plane away: keeps serving, xds_connected 0; reconnects with backoff when it returns', async () => {
  const port = proxy.listenerPort('outbound|default/a')!;
  const adsPort = ads.port;
  const metric = async () => (await (await fetch(`http://127.0.0.1:${proxy.metricsPort()}/metrics`)).text()).match(/^trellis_xds_connected (\d)$/m)?.[1];
  assert.equal(await metric(), '1');
  ads.stop();
  await waitFor(async () => (await metric()) === '0', 5000, 'disconnected');
  assert.equal((await curl(['-H', 'Host: static', `http://127.0.0.1:${port}/`])).body, 'v2');
  assert.equal(await ready(), 200, 'stays ready on last good config');
  const before = ads.requests.length;
  await ads.start(adsPort);
  await waitFor(async () => (await metric()) === '1', 5000, 'reconnected');
  // the new stream re-subscribes carrying the versions it holds
  const lds = ads.requests.slice(before).find((r) => r.type_url === LISTENER_TYPE)!;
  assert.equal(lds.version_info, 'l3');
});
