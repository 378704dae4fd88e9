// Inbound authorization end to end: compiler-built RBAC filters pushed into proxy B, real mTLS callers through proxy A (and C).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { startMesh, EchoClient, type Mesh } from './helpers/mesh.js';
import { curl } from './helpers/curl.js';
import { compileAuthorization } from '../../src/control/compile/authz/index.js';
import type { AuthorizationPolicySpec } from '../../src/api/types.js';
import { RBAC_TYPE, packAny } from '../../src/xds/protos.js';
import type { Proxy } from '../../src/proxy/proxy.js';
import { MESH_SETTINGS, closeAgent, echoed, metricsText, pushInboundFilters, request, resource, startCaller, workloadB, type FilterEntry } from './security-helpers.js';

let mesh: Mesh;
let caller: { proxy: Proxy; port: number };
before(async () => {
  // PERMISSIVE: mesh callers come over mTLS; plaintext lets a test send raw paths straight to B's inbound.
  mesh = await startMesh({ mtls: 'PERMISSIVE' });
  caller = await startCaller(mesh, 'c');
});
after(async () => {
  closeAgent();
  await caller?.proxy.close();
  await mesh?.close();
});

function authz(policies: { name: string; spec: AuthorizationPolicySpec }[]): FilterEntry[] {
  const r = compileAuthorization(policies.map((p) => resource('AuthorizationPolicy', p.name, p.spec)), workloadB(mesh.ports.http), MESH_SETTINGS);
  assert.deepEqual(r.warnings, []);
  return r.filters;
}

function push(filters: FilterEntry[]): void {
  assert.equal(pushInboundFilters(mesh, filters), undefined);
}

const viaA = (path: string, headers: Record<string, string> = {}) => request(mesh.outPort, 'b', path, headers);
const viaC = (path: string) => request(caller.port, 'b', path);

test('a pooled L4 connection does not outlive a policy that needs L7: nothing more reaches the app unchecked', async () => {
  assert.equal((await viaA('/before')).status, 200);
  push(authz([{ name: 'deny-all', spec: { action: 'DENY', rules: [{}] } }]));
  // Sent at once over the pooled connection: held and reset by B (the caller may replay it on a new connection).
  const seen = mesh.seen.length;
  const during = await viaA('/during');
  assert.ok(during.status === 403 || during.status === 503, `${during.status} ${during.body}`);
  assert.equal(mesh.seen.length, seen, 'the app must not see a request sent after the policy arrived');
  await new Promise((r) => setTimeout(r, 400));
  const r = await viaA('/after');
  assert.equal(r.status, 403, r.body);
  assert.equal(r.headers['x-trellis-error'], 'denied');
  assert.equal(mesh.seen.length, seen);
});

test('ALLOW by principal: the allowed caller passes, another caller gets 403 denied and the app sees nothing', async () => {
  push(authz([{ name: 'only-a', spec: { selector: { matchLabels: { app: 'b' } }, rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/a'] } }] }] } }]));
  const ok = await viaA('/allowed');
  assert.equal(ok.status, 200, ok.body);
  assert.equal(echoed(ok).headers['x-forwarded-client-cert'], 'By=spiffe://cluster.local/ns/default/sa/b;URI=spiffe://cluster.local/ns/default/sa/a');
  const seen = mesh.seen.length;
  const no = await viaC('/allowed');
  assert.equal(no.status, 403);
  assert.equal(no.headers['x-trellis-error'], 'denied');
  assert.equal(no.body, 'denied: denied by authorization policy\n');
  assert.doesNotMatch(no.body, /only-a/);
  assert.equal(mesh.seen.length, seen, 'the app must not see a denied request');
  // Plaintext has no principal: denied too.
  const plain = await curl(['-H', 'Host: b', `http://127.0.0.1:${mesh.inPort}/allowed`]);
  assert.equal(plain.status, 403);
  const text = await metricsText(mesh.b);
  assert.match(text, /trellis_authz_decisions_total\{action="ALLOW",decision="deny"\} [1-9]/);
  assert.match(text, /trellis_authz_decisions_total\{action="ALLOW",decision="allow"\} [1-9]/);
  assert.match(text, /trellis_requests_total\{reporter="destination",source_workload="c",[^}]*response_code="403"[^}]*error_code="denied"/);
});

test('DENY on /admin refuses every spelling of it; escaped slashes are a 400; what the app receives is the normalized path', async () => {
  push(
    authz([
      { name: 'no-admin', spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin', '/admin/*'] } }] }] } },
      { name: 'no-admin-host', spec: { action: 'DENY', rules: [{ to: [{ operation: { hosts: ['admin.example.com'] } }] }] } },
    ]),
  );
  // Through the mesh (A normalizes before routing; B again before policy).
  for (const p of ['/admin', '/%61dmin', '//admin', '/x/../admin', '/admin/x']) {
    const r = await viaA(p);
    assert.equal(r.status, 403, `${p} via A: ${r.status} ${r.body}`);
    assert.equal(r.headers['x-trellis-error'], 'denied');
  }
  // Straight to B's inbound, byte for byte as written (B's own normalizer decides).
  const raw = async (path: string) => curl(['--path-as-is', '-H', 'Host: b', `http://127.0.0.1:${mesh.inPort}${path}`]);
  for (const p of ['/admin', '/%61dmin', '/%61%64%6D%69%6E', '//admin', '/x/../admin', '/./admin', '/admin/./', '/x/..;/admin', '/admin\\x']) {
    const r = await raw(p);
    assert.equal(r.status, 403, `${p} direct: ${r.status} ${r.body}`);
  }
  for (const p of ['/%2Fadmin', '/x%2F..%2Fadmin', '/%5Cadmin']) {
    const r = await raw(p);
    assert.equal(r.status, 400, `${p}: ${r.status} ${r.body}`);
    assert.equal(r.headers['x-trellis-error'], 'bad_request');
    assert.match(r.body, /escaped slash/);
  }
  const pub = await raw('/public/./x/../y?q=1');
  assert.equal(pub.status, 200, pub.body);
  assert.equal(echoed(pub).url, '/public/y?q=1');
  assert.equal((await viaA('/public')).status, 200);
  // Host compared case-insensitively, without port or trailing dot.
  for (const host of ['admin.example.com', 'ADMIN.Example.com', 'admin.example.com.', 'admin.example.com:8080']) {
    const r = await curl(['-H', `Host: ${host}`, `http://127.0.0.1:${mesh.inPort}/public`]);
    assert.equal(r.status, 403, `host ${host}: ${r.status}`);
  }
});

test('methods must be uppercase tokens (400 bad_request)', async () => {
  push(authz([{ name: 'allow-all', spec: { rules: [{}] } }]));
  const r = await curl(['--http2-prior-knowledge', '-X', 'get', '-H', 'Host: b', `http://127.0.0.1:${mesh.inPort}/x`]);
  assert.equal(r.status, 400, r.stderr);
  assert.equal(r.headers['x-trellis-error'], 'bad_request');
  assert.match(r.body, /method "get"/);
  // HTTP/1.1: Node's parser refuses an unknown method before any policy; still a 400 naming the cause.
  const h1 = await new Promise<string>((resolve) => {
    const s = net.connect(mesh.inPort, '127.0.0.1', () => s.write('get / HTTP/1.1\r\nHost: b\r\n\r\n'));
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('close', () => resolve(out));
    s.setTimeout(3000, () => s.destroy());
  });
  assert.match(h1, /^HTTP\/1.1 400/);
});

test('client-supplied x-forwarded-client-cert and x-trellis-* never reach the app', async () => {
  push(authz([{ name: 'allow-all', spec: { rules: [{}] } }]));
  const forged = { 'x-forwarded-client-cert': 'URI=spiffe://cluster.local/ns/default/sa/admin', 'x-trellis-foo': 'bar', 'x-trellis-route': 'x' };
  const r = await viaA('/h', forged);
  assert.equal(r.status, 200);
  const h = echoed(r).headers;
  assert.equal(h['x-forwarded-client-cert'], 'By=spiffe://cluster.local/ns/default/sa/b;URI=spiffe://cluster.local/ns/default/sa/a');
  assert.equal(h['x-trellis-foo'], undefined);
  const plain = await curl(['-H', 'Host: b', '-H', 'x-forwarded-client-cert: URI=spiffe://evil', '-H', 'x-trellis-foo: bar', `http://127.0.0.1:${mesh.inPort}/h`]);
  assert.equal(plain.status, 200);
  assert.equal(echoed(plain as never).headers['x-forwarded-client-cert'], undefined);
  assert.equal(echoed(plain as never).headers['x-trellis-foo'], undefined);
});

test('RBAC the proxy cannot read or evaluate fails closed (403), so does an unknown HTTP filter', async () => {
  const cases: [string, FilterEntry[]][] = [
    ['undecodable RBAC', [{ name: 'envoy.filters.http.rbac', typed_config: { type_url: RBAC_TYPE, value: Buffer.from([0x0a, 0xff, 0xff, 0xff]) } }]],
    ['matcher tree (unsupported)', [{ name: 'envoy.filters.http.rbac', typed_config: packAny(RBAC_TYPE, { matcher: { on_no_match: { action: { name: 'x', typed_config: packAny(RBAC_TYPE, {}) } } } }) }]],
    ['unknown action', [{ name: 'envoy.filters.http.rbac', typed_config: packAny(RBAC_TYPE, { rules: { action: 'LOG', policies: {} } }) }, { name: 'ext', typed_config: { type_url: 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz', value: Buffer.alloc(0) } }]],
  ];
  for (const [what, filters] of cases) {
    push(filters);
    const seen = mesh.seen.length;
    const r = await viaA('/x');
    assert.equal(r.status, 403, `${what}: ${r.status} ${r.body}`);
    assert.equal(r.headers['x-trellis-error'], 'denied');
    assert.equal(mesh.seen.length, seen);
  }
  // An optional unknown filter is skipped (Envoy's is_optional).
  push([{ name: 'ext', is_optional: true, typed_config: { type_url: 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz', value: Buffer.alloc(0) } }]);
  assert.equal((await viaA('/x')).status, 200);
});

test('source IP reaches authorization over mTLS and plaintext (ipBlocks); a denied gRPC call gets PERMISSION_DENIED', async () => {
  push(authz([{ name: 'no-loopback', spec: { action: 'DENY', rules: [{ from: [{ source: { ipBlocks: ['127.0.0.0/8'] } }] }] } }]));
  assert.equal((await viaA('/ip')).status, 403);
  assert.equal((await curl(['-H', 'Host: b', `http://127.0.0.1:${mesh.inPort}/ip`])).status, 403);
  const c = new EchoClient(`127.0.0.1:${mesh.outPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'b-grpc:9090' });
  const err = await new Promise<grpc.ServiceError | null>((resolve) =>
    (c as unknown as { Echo: Function }).Echo(Buffer.from('hi'), (e: grpc.ServiceError | null) => resolve(e)),
  );
  c.close();
  assert.equal(err?.code, grpc.status.PERMISSION_DENIED);
  assert.match(err?.details ?? '', /denied by authorization policy/);
  push(authz([{ name: 'no-elsewhere', spec: { action: 'DENY', rules: [{ from: [{ source: { notIpBlocks: ['127.0.0.0/8'] } }] }] } }]));
  assert.equal((await viaA('/ip')).status, 200);
});
