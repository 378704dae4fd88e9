// The inbound listener: mTLS required under STRICT, SPIFFE peers from our trust domain only, PERMISSIVE by first byte.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';
import { startMesh, type Mesh } from './helpers/mesh.js';
import { createTestCa, type TestCa } from './helpers/ca.js';
import { curl } from './helpers/curl.js';
import { selectChain } from '../../src/proxy/listeners/inbound.js';
import type { InboundChain } from '../../src/proxy/config/types.js';

let mesh: Mesh;
let other: TestCa;
let dir: string;
before(async () => {
  mesh = await startMesh();
  other = await createTestCa('other.domain');
  dir = mkdtempSync(join(tmpdir(), 'trellis-inbound-'));
  const good = await mesh.ca.issue('default', 'a');
  const foreign = await other.issue('default', 'a');
  writeFileSync(join(dir, 'good.crt'), (good.certChainPem as string[]).join('\n'));
  writeFileSync(join(dir, 'good.key'), good.keyPem);
  writeFileSync(join(dir, 'foreign.crt'), (foreign.certChainPem as string[]).join('\n'));
  writeFileSync(join(dir, 'foreign.key'), foreign.keyPem);
  writeFileSync(join(dir, 'ca.pem'), mesh.ca.bundlePem);
});
after(async () => {
  await mesh?.close();
  other?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function sClient(args: string[], input: string): Promise<{ out: string; err: string; code: number | null }> {
  return new Promise((resolve) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${mesh.inPort}`, '-quiet', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => p.kill(), 4000);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ out, err, code });
    });
    p.stdin.on('error', () => {});
    setTimeout(() => p.stdin.end(input), 300);
  });
}

const sni = () => `outbound_.${mesh.ports.http}_._.b.default.svc.cluster.local`;
const REQ = 'GET /via-openssl HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n';

test('a client with a mesh SVID gets through to the app (SNI picks the port)', async () => {
  const r = await sClient(['-servername', sni(), '-cert', join(dir, 'good.crt'), '-key', join(dir, 'good.key'), '-CAfile', join(dir, 'ca.pem'), '-alpn', 'http/1.1'], REQ);
  assert.match(r.out, /^HTTP\/1.1 200/, r.err);
  assert.match(r.out, /"url":"\/via-openssl"/);
});

test('STRICT: TLS without a client certificate is refused', async () => {
  const r = await sClient(['-servername', sni(), '-CAfile', join(dir, 'ca.pem')], REQ);
  assert.doesNotMatch(r.out, /HTTP\/1.1/);
});

test('a certificate from another trust domain is refused', async () => {
  const r = await sClient(['-servername', sni(), '-cert', join(dir, 'foreign.crt'), '-key', join(dir, 'foreign.key'), '-CAfile', join(dir, 'ca.pem')], REQ);
  assert.doesNotMatch(r.out, /HTTP\/1.1/);
  const text = await (await fetch(`http://127.0.0.1:${mesh.b.metricsPort()}/metrics`)).text();
  assert.match(text, /trellis_tls_handshake_failures_total\{direction="inbound",reason="[a-z_]+"\} \d+/);
});

test('STRICT: plaintext HTTP gets 403 x-trellis-error mtls_required and the connection closes', async () => {
  const r = await curl(['-H', 'Host: b', `http://127.0.0.1:${mesh.inPort}/`]);
  assert.equal(r.status, 403);
  assert.equal(r.headers['x-trellis-error'], 'mtls_required');
  assert.match(r.body, /^mtls_required: listener inbound\|default\/b requires mutual TLS \(mtls STRICT, decided by default\)/);
});

test('STRICT: plaintext non-HTTP bytes are just closed', async () => {
  const got = await new Promise<string>((resolve) => {
    const s = net.connect(mesh.inPort, '127.0.0.1', () => s.write('\x00\x01binary-protocol'));
    let buf = '';
    s.on('data', (d) => (buf += d));
    s.on('close', () => resolve(buf));
    s.on('error', () => resolve(buf));
  });
  assert.equal(got, '');
});

test('PERMISSIVE: plaintext reaches the app on the same port, mTLS still works', async () => {
  const m = await startMesh({ mtls: 'PERMISSIVE' });
  try {
    const plain = await curl(['-H', 'Host: b', `http://127.0.0.1:${m.inPort}/plain`]);
    assert.equal(plain.status, 200);
    assert.equal(JSON.parse(plain.body).url, '/plain');
    const viaMesh = await curl(['-H', 'Host: b', `http://127.0.0.1:${m.outPort}/mtls`]);
    assert.equal(viaMesh.status, 200);
  } finally {
    await m.close();
  }
});

test('filter chain selection by SNI port and transport (table)', () => {
  const c = (destinationPort: number, transport: InboundChain['transport']): InboundChain => ({
    destinationPort,
    transport,
    mtls: 'PERMISSIVE',
    decidedBy: 'default',
    protocol: 'HTTP',
    cluster: `inbound|${destinationPort}|ns/w`,
    alpn: [],
    httpFilters: [],
  });
  const chains = [c(9080, 'tls'), c(9080, 'raw_buffer'), c(9090, 'tls')];
  const rows: [boolean, string | undefined, number | undefined][] = [
    [true, 'outbound_.9090_._.r.default.svc.cluster.local', 9090],
    [true, 'outbound_.9080_.v1_.r.default.svc.cluster.local', 9080],
    [true, 'outbound_.7777_._.r.default.svc.cluster.local', undefined],
    [true, undefined, 9080],
    [false, undefined, 9080],
  ];
  for (const [tls, sniName, want] of rows) {
    const got = selectChain(chains, tls, sniName);
    assert.equal(got?.destinationPort, want, `${tls} ${sniName}`);
    if (got) assert.equal(got.transport === 'raw_buffer', !tls);
  }
  assert.equal(selectChain([c(1, 'tls')], false, undefined), undefined);
});
