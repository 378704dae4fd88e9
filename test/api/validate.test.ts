// Per-resource validation: each invalid fixture yields exactly these diagnostics, positions included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseYamlDocuments } from '../../src/api/load.js';
import { analyzeResources } from '../../src/api/analyze.js';
import { formatDiagnostic, mergeDiagnostics } from '../../src/api/diagnostics.js';
import { validateResources } from '../../src/api/validate.js';
import type { Resource } from '../../src/api/types.js';

const FIXTURES = new URL('../fixtures/api/invalid/', import.meta.url);

function diagnose(name: string): string[] {
  const r = parseYamlDocuments(readFileSync(new URL(name, FIXTURES), 'utf8'), name);
  return mergeDiagnostics(r.diagnostics, analyzeResources(r.resources)).map(formatDiagnostic);
}

test('authz.yaml: exact diagnostics', () => {
  assert.deepEqual(diagnose('authz.yaml'), [
    "authz.yaml:5:3: warning TRL0402 AuthorizationPolicy default/custom spec.action: action CUSTOM is not honoured: external authorizers are not implemented, so this policy is ignored",
    "authz.yaml:6:3: warning TRL0401 AuthorizationPolicy default/custom spec.provider: not honoured by Trellis, ignored: external authorizers (CUSTOM) are not implemented",
    "authz.yaml:8:33: error TRL0217 AuthorizationPolicy default/custom spec.rules[0].from[0].source.ipBlocks[0]: \"10.0.0.0/33\" is not an IP address or CIDR",
    "authz.yaml:9:12: error TRL0213 AuthorizationPolicy default/custom spec.rules[0].when[0]: set values or notValues",
    "authz.yaml:9:13: error TRL0205 AuthorizationPolicy default/custom spec.rules[0].when[0].key: unknown condition key \"request.foo\" (hint: e.g. request.headers[x-user], source.ip, source.namespace, request.auth.claims[iss])",
  ]);
});

test('dr.yaml: exact diagnostics', () => {
  assert.deepEqual(diagnose('dr.yaml'), [
    "dr.yaml:5:3: warning TRL0304 DestinationRule default/d spec.host: host \"a\" (a.default.svc.cluster.local) is not declared by any Service, ServiceEntry or Workload",
    "dr.yaml:8:7: error TRL0205 DestinationRule default/d spec.trafficPolicy.loadBalancer.simple: \"ROUND_ROBBIN\" is not one of UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST (hint: did you mean \"ROUND_ROBIN\"?)",
    "dr.yaml:9:7: error TRL0213 DestinationRule default/d spec.trafficPolicy.loadBalancer.localityLbSetting: distribute and failover exclude each other",
    "dr.yaml:10:36: error TRL0203 DestinationRule default/d spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to: weights sum to 80, must be 100",
    "dr.yaml:12:24: warning TRL0403 DestinationRule default/d spec.trafficPolicy.outlierDetection.consecutiveErrors: deprecated: use consecutive5xxErrors or consecutiveGatewayErrors",
    "dr.yaml:12:46: error TRL0206 DestinationRule default/d spec.trafficPolicy.outlierDetection.interval: invalid duration 10 (hint: add a unit: \"10s\")",
    "dr.yaml:12:60: error TRL0207 DestinationRule default/d spec.trafficPolicy.outlierDetection.maxEjectionPercent: percentage 101 is out of range 0-100",
    "dr.yaml:13:28: error TRL0216 DestinationRule default/d spec.trafficPolicy.connectionPool.tcp.maxConnections: must be at least 1, got 0",
    "dr.yaml:14:11: warning TRL0402 DestinationRule default/d spec.trafficPolicy.tls.mode: SIMPLE is not honoured: TLS origination is not implemented: Trellis uses mesh mTLS to endpoints that run a Trellis proxy and plaintext to all others (hint: let the app speak TLS to the destination itself)",
    "dr.yaml:14:25: warning TRL0401 DestinationRule default/d spec.trafficPolicy.tls.credentialName: not honoured by Trellis, ignored: Kubernetes secrets are not read, and TLS origination is not implemented",
    "dr.yaml:17:5: error TRL0219 DestinationRule default/d spec.subsets[1]: duplicate subset name \"v1\"",
    "dr.yaml:17:25: error TRL0211 DestinationRule default/d spec.subsets[1].labels[\"bad key!\"]: \"bad key!\" is not a valid label key",
    "dr.yaml:23:10: error TRL0205 PeerAuthentication default/pa spec.mtls.mode: \"strict\" is not one of UNSET, DISABLE, PERMISSIVE, STRICT (hint: did you mean \"STRICT\"?)",
    "dr.yaml:24:3: error TRL0204 PeerAuthentication default/pa spec.portLevelMtls: portLevelMtls needs a selector with matchLabels",
    "dr.yaml:24:19: error TRL0209 PeerAuthentication default/pa spec.portLevelMtls.http: port \"http\" is not a port number 1-65535",
  ]);
});

test('httproute.yaml: exact diagnostics', () => {
  assert.deepEqual(diagnose('httproute.yaml'), [
    "httproute.yaml:5:16: warning TRL0402 HTTPRoute default/r spec.parentRefs[0]: parentRef kind \"Gateway\" is not honoured: Trellis has no gateways, so this parent attaches the route to nothing (hint: for mesh routing use kind: Service, group: \"\")",
    "httproute.yaml:7:36: error TRL0216 HTTPRoute default/r spec.rules[0].matches[0].path.value: path \"nope\" must start with \"/\"",
    "httproute.yaml:8:5: error TRL0213 HTTPRoute default/r spec.rules[0].filters: RequestRedirect and URLRewrite cannot be used in the same rule",
    "httproute.yaml:9:7: error TRL0204 HTTPRoute default/r spec.rules[0].filters[0].requestHeaderModifier: filter type RequestHeaderModifier needs requestHeaderModifier",
    "httproute.yaml:10:7: error TRL0213 HTTPRoute default/r spec.rules[0].filters[0].urlRewrite: urlRewrite does not belong to a filter of type RequestHeaderModifier (that is type URLRewrite)",
    "httproute.yaml:12:25: error TRL0204 HTTPRoute default/r spec.rules[0].filters[1].requestRedirect.path.replaceFullPath: path type ReplaceFullPath needs replaceFullPath",
    "httproute.yaml:15:20: warning TRL0304 HTTPRoute default/r spec.rules[0].backendRefs[0].name: backend Service \"reviews\" (reviews.default.svc.cluster.local) is not declared by any Service, ServiceEntry or Workload",
    "httproute.yaml:15:35: error TRL0212 HTTPRoute default/r spec.rules[0].backendRefs[0].weight: weight must be a non-negative integer, got 1.5",
  ]);
});

test('jwt.yaml: exact diagnostics', () => {
  assert.deepEqual(diagnose('jwt.yaml'), [
    "jwt.yaml:6:5: error TRL0218 RequestAuthentication default/jwt spec.jwtRules[0]: jwtRule has no issuer (hint: set issuer to the \"iss\" claim the tokens carry)",
    "jwt.yaml:8:5: error TRL0216 RequestAuthentication default/jwt spec.jwtRules[1].jwks: jwks is not a JSON Web Key Set: Expected property name or '}' in JSON at position 1",
    "jwt.yaml:10:5: error TRL0216 RequestAuthentication default/jwt spec.jwtRules[2].jwksUri: jwksUri must be an http(s) URL, got \"file:///x\"",
  ]);
});

test('trellis.yaml: exact diagnostics', () => {
  assert.deepEqual(diagnose('trellis.yaml'), [
    "trellis.yaml:4:1: error TRL0204 RateLimitPolicy default/rl spec: set selector or targetRef to say which workloads are limited",
    "trellis.yaml:5:3: error TRL0213 RateLimitPolicy default/rl spec.limits: set total, perCaller, or both",
    "trellis.yaml:11:3: error TRL0107 Workload default/w spec.service: \"Reviews\" is not a valid name (hint: use lowercase letters, digits, \"-\" and \".\")",
    "trellis.yaml:12:3: error TRL0217 Workload default/w spec.address: \"localhost\" is not an IP address",
    "trellis.yaml:13:23: error TRL0219 Workload default/w spec.ports[1]: duplicate port 80",
    "trellis.yaml:14:11: error TRL0309 Workload default/w spec.proxy.outboundPort: port 80 is already used by an app port of this workload",
    "trellis.yaml:20:3: warning TRL0304 TrafficSplit default/ts spec.service: service \"a\" (a.default.svc.cluster.local) is not declared by any Service, ServiceEntry or Workload",
    "trellis.yaml:21:15: warning TRL0304 TrafficSplit default/ts spec.backends[0].service: backend service \"a\" (a.default.svc.cluster.local) is not declared by any Service, ServiceEntry or Workload",
    "trellis.yaml:21:27: error TRL0214 TrafficSplit default/ts spec.backends[0].weight: string \"lots\" is not a quantity (hint: write a number such as 90, or a quantity such as \"900m\")",
    "trellis.yaml:21:42: error TRL0219 TrafficSplit default/ts spec.backends[1]: duplicate backend service \"a\"",
    "trellis.yaml:21:43: warning TRL0304 TrafficSplit default/ts spec.backends[1].service: backend service \"a\" (a.default.svc.cluster.local) is not declared by any Service, ServiceEntry or Workload",
    "trellis.yaml:21:55: error TRL0212 TrafficSplit default/ts spec.backends[1].weight: weight must not be negative, got -1",
    "trellis.yaml:29:21: warning TRL0402 RateLimitPolicy default/by-route spec.routes[1]: route \"checkout\" never matches: the limit runs in the destination's proxy, whose only route is \"inbound\" (hint: use spec.paths to limit part of a service)",
  ]);
});

test('vs-structure.yaml: exact diagnostics', () => {
  assert.deepEqual(diagnose('vs-structure.yaml'), [
    "vs-structure.yaml:5:20: error TRL0215 VirtualService default/a spec.hosts[1]: \"bad host\" is not a valid host name",
    "vs-structure.yaml:6:14: warning TRL0402 VirtualService default/a spec.gateways[0]: gateway \"bookinfo-gateway\" is not honoured: Trellis has no gateways, only \"mesh\"",
    "vs-structure.yaml:8:5: error TRL0213 VirtualService default/a spec.http[0]: route and redirect exclude each other: set only one of route, redirect, directResponse, delegate",
    "vs-structure.yaml:9:7: error TRL0213 VirtualService default/a spec.http[0].match[0].uri: set only one of exact, prefix, regex (found exact, prefix)",
    "vs-structure.yaml:10:23: error TRL0208 VirtualService default/a spec.http[0].match[0].headers.x-a.regex: regular expression \"([\" does not compile: /([/: Unterminated character class",
    "vs-structure.yaml:11:7: error TRL0213 VirtualService default/a spec.http[0].match[1].uri: set one of exact, prefix, regex",
    "vs-structure.yaml:13:21: warning TRL0304 VirtualService default/a spec.http[0].route[0].destination.host: destination host \"reviews\" (reviews.default.svc.cluster.local) is not declared by any Service, ServiceEntry or Workload",
    "vs-structure.yaml:14:7: error TRL0212 VirtualService default/a spec.http[0].route[0].weight: weight must be a non-negative integer, got -5",
    "vs-structure.yaml:16:7: error TRL0212 VirtualService default/a spec.http[0].route[1].weight: weight must be a non-negative integer, got 10.5",
    "vs-structure.yaml:16:7: error TRL0203 VirtualService default/a spec.http[0].route[1].weight: weights sum to 5.5, must be 100 (hint: with more than one destination, give each a weight and make them add up to 100)",
    "vs-structure.yaml:17:25: error TRL0210 VirtualService default/a spec.http[0].redirect.redirectCode: redirect status 200 is not a 3xx code",
    "vs-structure.yaml:18:5: error TRL0213 VirtualService default/a spec.http[0].rewrite: rewrite cannot be combined with redirect",
    "vs-structure.yaml:19:5: error TRL0213 VirtualService default/a spec.http[1]: rule has no route, redirect or directResponse",
    "vs-structure.yaml:20:5: error TRL0213 VirtualService default/a spec.http[2]: route and directResponse exclude each other: set only one of route, redirect, directResponse, delegate",
    "vs-structure.yaml:20:50: error TRL0209 VirtualService default/a spec.http[2].route[0].destination.port.number: port 70000 is out of range 1-65535",
    "vs-structure.yaml:22:5: error TRL0213 VirtualService default/a spec.http[2].mirrors: mirror and mirrors exclude each other: use mirrors",
    "vs-structure.yaml:23:5: error TRL0213 VirtualService default/a spec.http[2].fault: set one of delay, abort",
    "vs-structure.yaml:24:22: error TRL0210 VirtualService default/a spec.http[2].directResponse.status: HTTP status 99 is not in 100-599",
    "vs-structure.yaml:25:5: warning TRL0401 VirtualService default/a spec.http[2].corsPolicy: not honoured by Trellis, ignored: CORS is not implemented in the mesh; handle it in the application",
  ]);
});

test('validateResources works on resources without positions (from the API)', () => {
  const r: Resource = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'v', namespace: 'prod' },
    spec: { hosts: ['a'], http: [{ route: [{ destination: { host: 'a' }, weight: 60 }, { destination: { host: 'b' }, weight: 30 }] }] },
  };
  assert.deepEqual(validateResources([r]).map(formatDiagnostic), [
    'error TRL0203 VirtualService prod/v spec.http[0].route[1].weight: weights sum to 90, must be 100 (hint: with more than one destination, give each a weight and make them add up to 100)',
  ]);
  assert.deepEqual(validateResources([{ ...r, kind: 'Nope' }]).map((d) => d.code), ['TRL0104']);
  assert.deepEqual(validateResources([{ ...r, metadata: {} as Resource['metadata'] }]).map((d) => d.code), ['TRL0106']);
});

test('a single destination needs no weight; weights summing to 100 pass', () => {
  const vs = (route: object[]): Resource => ({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'v' }, spec: { hosts: ['a'], http: [{ route }] } });
  assert.deepEqual(validateResources([vs([{ destination: { host: 'a' } }])]), []);
  assert.deepEqual(validateResources([vs([{ destination: { host: 'a' }, weight: 100 }])]), []);
  assert.deepEqual(validateResources([vs([{ destination: { host: 'a' }, weight: 90 }, { destination: { host: 'a' }, weight: 10 }])]), []);
  assert.deepEqual(validateResources([vs([{ destination: { host: 'a' }, weight: 0 }, { destination: { host: 'a' }, weight: 100 }])]), []);
});
