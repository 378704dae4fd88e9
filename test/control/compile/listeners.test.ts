// Listeners: outbound HTTP (RDS), inbound chains per PeerAuthentication mode and port protocol, upstreams, proxyless naming.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileForProxy } from '../../../src/control/compile/index.js';
import { DOWNSTREAM_TLS_TYPE, HCM_TYPE, ROUTER_TYPE, TCP_PROXY_TYPE } from '../../../src/xds/protos.js';
import { BUNDLE, PROXYLESS, bookinfo, input, res, svc, trellisProxy, wl } from './fixtures.js';
import { clusters, endpoints, listeners, outboundRoutes, routeConfigs, secrets, trellisMeta, unpack, vhost } from './helpers.js';

const PA = (spec: unknown) => res('PeerAuthentication', 'pa', spec, { apiVersion: 'security.istio.io/v1' });

function inbound(resources: unknown[], ports = [{ name: 'http', port: 9080 }, { name: 'tcp-db', port: 5432, protocol: 'TCP' as const }]) {
  const w = wl('cart', { labels: { app: 'cart' }, address: '10.0.0.5', proxy: { inboundPort: 15106, outboundPort: 15101 }, ports });
  const snap = compileForProxy(input([svc('cart')], [w], resources as never[]), trellisProxy(w));
  return listeners(snap)['inbound|default/cart'];
}

test('outbound listener: 127.0.0.1:<outboundPort>, HCM with RDS over ADS, router last, metadata', () => {
  const b = bookinfo();
  const l = listeners(compileForProxy(b.input, trellisProxy(b.productpage)))['outbound|default/productpage-v1'];
  assert.deepEqual(l.address, { socket_address: { address: '127.0.0.1', port_value: 15001 } });
  assert.deepEqual(trellisMeta(l), { workload: 'default/productpage-v1', direction: 'outbound' });
  const f = l.filter_chains[0].filters[0];
  assert.equal(f.name, 'envoy.filters.network.http_connection_manager');
  assert.equal(f.typed_config.type_url, HCM_TYPE);
  const hcm = unpack(f.typed_config);
  assert.deepEqual(hcm.rds, { route_config_name: 'outbound|default', config_source: { ads: {} } }, 'shared by callers in the namespace');
  assert.equal(hcm.http_filters.at(-1).name, 'envoy.filters.http.router');
  assert.equal(hcm.http_filters.at(-1).typed_config.type_url, ROUTER_TYPE);
});

test('inbound listener under STRICT: one TLS chain per port, client cert required, SDS names', () => {
  const l = inbound([PA({ mtls: { mode: 'STRICT' } })]);
  assert.deepEqual(l.address, { socket_address: { address: '10.0.0.5', port_value: 15106 } });
  assert.deepEqual(
    l.filter_chains.map((c: any) => [c.filter_chain_match.destination_port.value, c.filter_chain_match.transport_protocol]),
    [[9080, 'tls'], [5432, 'tls']],
  );
  const http = l.filter_chains[0];
  assert.equal(http.transport_socket.name, 'envoy.transport_sockets.tls');
  assert.equal(http.transport_socket.typed_config.type_url, DOWNSTREAM_TLS_TYPE);
  const tls = unpack(http.transport_socket.typed_config);
  assert.deepEqual(tls.require_client_certificate, { value: true });
  assert.equal(tls.common_tls_context.tls_certificate_sds_secret_configs[0].name, 'default');
  assert.equal(tls.common_tls_context.validation_context_sds_secret_config.name, 'ROOTCA');
  assert.deepEqual(tls.common_tls_context.alpn_protocols, ['h2', 'http/1.1']);
  assert.deepEqual(unpack(l.filter_chains[1].transport_socket.typed_config).common_tls_context.alpn_protocols, ['trellis-tcp']);
  assert.deepEqual(trellisMeta(http), { mtls: 'STRICT', decidedBy: 'default/pa', protocol: 'HTTP' });
});

test('inbound listener: PERMISSIVE adds plaintext chains, DISABLE has only plaintext; HCM vs tcp_proxy by protocol', () => {
  const p = inbound([]);
  assert.deepEqual(
    p.filter_chains.map((c: any) => `${c.filter_chain_match.destination_port.value}/${c.filter_chain_match.transport_protocol}`),
    ['9080/tls', '9080/raw_buffer', '5432/tls', '5432/raw_buffer'],
  );
  assert.equal(trellisMeta(p.filter_chains[1]).decidedBy, 'default');
  const hcm = unpack(p.filter_chains[0].filters[0].typed_config);
  assert.deepEqual(hcm.route_config.virtual_hosts[0].domains, ['*']);
  assert.equal(hcm.route_config.virtual_hosts[0].routes[0].route.cluster, 'inbound|9080|default/cart');
  assert.equal(p.filter_chains[2].filters[0].typed_config.type_url, TCP_PROXY_TYPE);
  assert.equal(unpack(p.filter_chains[2].filters[0].typed_config).cluster, 'inbound|5432|default/cart');
  assert.equal(trellisMeta(p.filter_chains[2]).protocol, 'TCP');
  const d = inbound([PA({ mtls: { mode: 'DISABLE' } })]);
  assert.deepEqual(d.filter_chains.map((c: any) => c.filter_chain_match.transport_protocol), ['raw_buffer', 'raw_buffer']);
});

test('Workload.spec.upstreams -> outbound_tcp listeners with tcp_proxy to the outbound cluster', () => {
  const w = wl('app', { proxy: true });
  const db = svc('db', [{ port: 5432, name: 'tcp', protocol: 'TCP' }]);
  const snap = compileForProxy(
    input([db], [w], [res('Workload', 'app', { upstreams: [{ service: 'db', localPort: 15432 }] }, { apiVersion: 'trellis.dev/v1alpha1' })]),
    trellisProxy(w),
  );
  const l = listeners(snap)['outbound_tcp|15432|default/app'];
  assert.deepEqual(l.address.socket_address, { address: '127.0.0.1', port_value: 15432 });
  assert.equal(unpack(l.filter_chains[0].filters[0].typed_config).cluster, 'outbound|5432||db.default.svc.cluster.local');
  assert.ok(clusters(snap)['outbound|5432||db.default.svc.cluster.local']);
});

test('node mode: each hosted workload gets its own listeners; callers alike share one route config', () => {
  const b = bookinfo();
  const snap = compileForProxy(b.input, trellisProxy(b.productpage, b.reviews[0]));
  assert.deepEqual(Object.keys(listeners(snap)).sort(), [
    'inbound|default/productpage-v1',
    'inbound|default/reviews-v1',
    'outbound|default/productpage-v1',
    'outbound|default/reviews-v1',
  ]);
  assert.deepEqual(Object.keys(routeConfigs(snap)).sort(), ['outbound|default']);
});

test('route config domains: every spelling with and without port; short names only from the same namespace', () => {
  const b = bookinfo();
  b.input.registry.services.push(svc('reviews', [{ port: 9080, name: 'http' }], { namespace: 'other' }));
  const rc = outboundRoutes(compileForProxy(b.input, trellisProxy(b.productpage)), 'default/productpage-v1');
  assert.deepEqual(vhost(rc, 'reviews.default.svc.cluster.local:9080').domains, [
    'reviews:9080', 'reviews', 'reviews.default:9080', 'reviews.default', 'reviews.default.svc:9080', 'reviews.default.svc',
    'reviews.default.svc.cluster.local:9080', 'reviews.default.svc.cluster.local',
  ]);
  const other = vhost(rc, 'reviews.other.svc.cluster.local:9080').domains;
  assert.ok(!other.includes('reviews') && other.includes('reviews.other'));
  assert.ok(!rc.virtual_hosts.some((v: any) => v.name.startsWith('db.')), 'TCP ports get no HTTP virtual host');
});

test('ROOTCA carries the trust bundle; no other secret is ever sent', () => {
  const b = bookinfo();
  const s = secrets(compileForProxy(b.input, trellisProxy(b.productpage)));
  assert.deepEqual(Object.keys(s), ['ROOTCA']);
  assert.equal(Buffer.from(s.ROOTCA.validation_context.trusted_ca.inline_bytes).toString(), BUNDLE);
});

const proxylessNames: [string, string | undefined][] = [
  ['reviews', 'grpc|reviews.default.svc.cluster.local:9080'],
  ['reviews.default', 'grpc|reviews.default.svc.cluster.local:9080'],
  ['reviews.default.svc.cluster.local', 'grpc|reviews.default.svc.cluster.local:9080'],
  ['reviews:9080', 'grpc|reviews.default.svc.cluster.local:9080'],
  ['grpcsvc', 'grpc|grpcsvc.default.svc.cluster.local:50051'],
  ['grpcsvc:8080', 'grpc|grpcsvc.default.svc.cluster.local:8080'],
  ['reviews:1234', undefined],
  ['unknown', undefined],
];
for (const [name, rds] of proxylessNames) {
  test(`proxyless listener "${name}" -> ${rds ?? 'absent'}`, () => {
    const b = bookinfo();
    b.input.registry.services.push(svc('grpcsvc', [{ port: 8080, name: 'http' }, { port: 50051, name: 'grpc', protocol: 'GRPC' }]));
    const snap = compileForProxy(b.input, PROXYLESS, { listeners: [name] });
    const l = listeners(snap)[name];
    if (!rds) {
      assert.equal(l, undefined);
      return;
    }
    assert.deepEqual(Object.keys(listeners(snap)), [name], 'only subscribed names are returned');
    const hcm = unpack(l.api_listener.api_listener);
    assert.equal(l.api_listener.api_listener.type_url, HCM_TYPE);
    assert.deepEqual(hcm.rds, { route_config_name: rds, config_source: { ads: {} } });
    assert.deepEqual(hcm.http_filters.map((f: any) => f.name), ['envoy.filters.http.router']);
    const rc = routeConfigs(snap)[rds];
    assert.ok(rc.virtual_hosts[0].domains.includes(name), 'the exact name the client used is a domain');
    const cluster = rc.virtual_hosts[0].routes[0].route.cluster;
    assert.ok(clusters(snap)[cluster] && endpoints(snap)[cluster]);
  });
}

test('proxyless: redirect routes are dropped (gRPC clients reject them) and sourceLabels never match', () => {
  const b = bookinfo([
    res('VirtualService', 'reviews', {
      hosts: ['reviews'],
      http: [
        { match: [{ uri: { prefix: '/r' } }], redirect: { uri: '/x' } },
        { match: [{ sourceLabels: { app: 'productpage' } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
        { route: [{ destination: { host: 'reviews', subset: 'v1' } }], fault: { abort: { grpcStatus: 'UNAVAILABLE' } } },
      ],
    }),
  ]);
  const snap = compileForProxy(b.input, PROXYLESS, { listeners: ['reviews'] });
  const routes = routeConfigs(snap)['grpc|reviews.default.svc.cluster.local:9080'].virtual_hosts[0].routes;
  assert.deepEqual(routes.map((r: any) => r.name), ['default/reviews#2']);
  const hcm = unpack(listeners(snap).reviews.api_listener.api_listener);
  assert.deepEqual(hcm.http_filters.map((f: any) => f.name), ['envoy.filters.http.fault', 'envoy.filters.http.router']);
});

test('inbound HTTP chains carry jwt_authn then RBAC before the router; TCP chains are untouched', () => {
  const l = inbound([
    res('AuthorizationPolicy', 'allow-frontend', { selector: { matchLabels: { app: 'cart' } }, action: 'ALLOW', rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/frontend'] } }] }] }, { apiVersion: 'security.istio.io/v1' }),
    res('RequestAuthentication', 'jwt', { selector: { matchLabels: { app: 'cart' } }, jwtRules: [{ issuer: 'https://issuer.example', jwks: '{"keys":[]}' }] }, { apiVersion: 'security.istio.io/v1' }),
  ]);
  const hcm = unpack(l.filter_chains[0].filters[0].typed_config);
  const names = hcm.http_filters.map((f: any) => f.name);
  assert.equal(names[0], 'envoy.filters.http.jwt_authn');
  assert.ok(names.includes('envoy.filters.http.rbac'));
  assert.equal(names.at(-1), 'envoy.filters.http.router');
  assert.equal(l.filter_chains[2].filters[0].typed_config.type_url, TCP_PROXY_TYPE);
});
