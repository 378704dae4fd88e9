// Node mode (several workloads, each with its own identity and listeners), certificate rotation without dropping connections, admin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as tls from 'node:tls';
import * as http from 'node:http';
import { X509Certificate } from 'node:crypto';
import { startMesh, type Mesh } from './helpers/mesh.js';
import { startProxy, type Proxy } from '../../src/proxy/proxy.js';
import { StaticCertificateSource } from '../../src/proxy/tls/identity.js';
import { curl } from './helpers/curl.js';
import * as x from './helpers/xds.js';

let mesh: Mesh;
let node: Proxy;
before(async () => {
  mesh = await startMesh();
  const idA = await mesh.ca.issue('default', 'a');
  const idC = await mesh.ca.issue('default', 'c');
  const route = (w: string) =>
    x.routeConfiguration(`outbound|${w}`, [{ name: 'b.default.svc.cluster.local:80', domains: x.domainsFor('b', 80), routes: [{ name: 'default/b#0', cluster: mesh.configA.clusters![0].name }] }]);
  node = await startProxy({
    mode: 'node',
    workloads: [
      { namespace: 'default', name: 'a' },
      { namespace: 'default', name: 'c' },
    ],
    staticConfig: {
      listeners: [x.outboundHttpListener('default/a', 0), x.outboundHttpListener('default/c', 0)],
      clusters: [mesh.configA.clusters![0]],
      endpoints: [mesh.configA.endpoints![0]],
      routes: [route('default/a'), route('default/c')],
    },
    staticIdentity: { 'default/a': idA, 'default/c': idC },
    metricsPort: 0,
    adminPort: 0,
    logLevel: 'error',
  });
  await node.ready;
});
after(async () => {
  await node?.close();
  await mesh?.close();
});

test('node mode: each workload calls with its own SVID through its own listener', async () => {
  for (const w of ['a', 'c']) {
    const port = node.listenerPort(`outbound|default/${w}`)!;
    const r = await curl(['-H', 'Host: b', `http://127.0.0.1:${port}/from-${w}`]);
    assert.equal(r.status, 200, r.body);
  }
  const text = await (await fetch(`http://127.0.0.1:${mesh.b.metricsPort()}/metrics`)).text();
  assert.match(text, /trellis_tcp_connections_opened_total\{[^}]*source_principal="spiffe:\/\/cluster.local\/ns\/default\/sa\/a",connection_security_policy="mutual_tls"\}/);
  assert.match(text, /trellis_tcp_connections_opened_total\{[^}]*source_principal="spiffe:\/\/cluster.local\/ns\/default\/sa\/c",connection_security_policy="mutual_tls"\}/);
  assert.notEqual(node.identity('default/a')!.spiffeId, node.identity('default/c')!.spiffeId);
});

test('admin: config dump with decoded resources, certificates with expiry, log level', async () => {
  const base = `http://127.0.0.1:${node.adminPort()}`;
  const dump = (await (await fetch(`${base}/config_dump`)).json()) as Record<string, any>;
  assert.equal(dump.mode, 'node');
  assert.deepEqual(dump.missing, []);
  const l = dump.listeners.find((y: any) => y.name === 'outbound|default/a');
  assert.equal(l.filter_chains[0].filters[0].typed_config['@type'], 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
  assert.equal(typeof dump.boundPorts['outbound|default/c'], 'number');
  const certs = (await (await fetch(`${base}/certs`)).json()) as any[];
  assert.deepEqual(certs.map((c) => c.spiffeId).sort(), ['spiffe://cluster.local/ns/default/sa/a', 'spiffe://cluster.local/ns/default/sa/c']);
  assert.ok(certs.every((c) => c.expiresInSeconds > 3000));
  assert.equal((await (await fetch(`${base}/logging?level=debug`, { method: 'POST' })).text()).trim(), 'debug');
  const bad = await fetch(`${base}/logging?level=loud`, { method: 'POST' });
  assert.equal(bad.status, 400);
  await fetch(`${base}/logging?level=error`, { method: 'POST' });
});

function tlsGet(socket: tls.TLSSocket, path: string): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d;
      const m = /content-length: (\d+)/i.exec(buf);
      const end = buf.indexOf('\r\n\r\n');
      if (m && end >= 0 && buf.length >= end + 4 + Number(m[1])) {
        socket.off('data', onData);
        resolve(buf);
      }
    };
    socket.on('data', onData);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: b\r\n\r\n`);
  });
}

test('certificate rotation: new connections get the new certificate, open connections keep working', async () => {
  const src = new StaticCertificateSource(await mesh.ca.issue('default', 'b'));
  const idA = await mesh.ca.issue('default', 'a');
  const p = await startProxy({
    workloads: [{ namespace: 'default', name: 'b' }],
    staticConfig: { listeners: [x.inboundListener('default/b', 0, [{ appPort: mesh.ports.http }])], clusters: [x.inboundCluster('default/b', mesh.ports.http)] },
    certificateSources: { 'default/b': src },
    metricsPort: 0,
    adminPort: -1,
    logLevel: 'error',
  });
  try {
    await p.ready;
    const port = p.listenerPort('inbound|default/b')!;
    const connect = () =>
      new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({
          port,
          host: '127.0.0.1',
          servername: `outbound_.${mesh.ports.http}_._.b.default.svc.cluster.local`,
          key: idA.keyPem,
          cert: (idA.certChainPem as string[]).join('\n'),
          ca: mesh.ca.bundlePem,
          checkServerIdentity: () => undefined,
        });
        s.once('secureConnect', () => resolve(s));
        s.once('error', reject);
      });
    const serial = (s: tls.TLSSocket) => new X509Certificate(s.getPeerCertificate().raw).serialNumber;
    const old = await connect();
    assert.match(await tlsGet(old, '/before'), /^HTTP\/1.1 200/);
    const oldSerial = serial(old);
    src.set(await mesh.ca.issue('default', 'b'));
    const fresh = await connect();
    assert.notEqual(serial(fresh), oldSerial, 'new connection sees the rotated certificate');
    assert.match(await tlsGet(old, '/after'), /^HTTP\/1.1 200/, 'the connection opened before rotation still works');
    old.destroy();
    fresh.destroy();
  } finally {
    await p.close();
  }
});
