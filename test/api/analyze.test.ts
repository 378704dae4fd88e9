// Cross-resource analysis: conflicts, dangling subsets, overlapping policies, empty selectors; clean fixtures stay clean.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadFiles, parseYamlDocuments } from '../../src/api/load.js';
import { analyzeResources } from '../../src/api/analyze.js';
import { formatDiagnostic, mergeDiagnostics } from '../../src/api/diagnostics.js';
import { KIND_NAMES, type Resource } from '../../src/api/types.js';

const fixture = (p: string): string => fileURLToPath(new URL(`../fixtures/api/${p}`, import.meta.url));

function analyzeText(text: string, file = 'x.yaml'): string[] {
  const r = parseYamlDocuments(text, file);
  return mergeDiagnostics(r.diagnostics, analyzeResources(r.resources)).map(formatDiagnostic);
}

test('cross-resource problems, each reported once at the offending field', () => {
  assert.deepEqual(analyzeText(readFileSync(fixture('invalid/cross.yaml'), 'utf8'), 'cross.yaml'), [
    'cross.yaml:16:35: error TRL0309 Workload default/reviews-v2 spec.ports[0].port: port 9180 is also the app port of Workload default/reviews-v1 (cross.yaml:8:1)',
    'cross.yaml:16:57: error TRL0309 Workload default/reviews-v2 spec.proxy.adminPort: port 15000 is also the proxy adminPort of Workload default/reviews-v1 (cross.yaml:8:1)',
    'cross.yaml:25:16: warning TRL0306 DestinationRule default/reviews spec.subsets[1].labels: subset "v9" selects no workload of reviews.default.svc.cluster.local (labels {version: v9})',
    'cross.yaml:31:3: error TRL0307 DestinationRule default/reviews-again spec.host: host "reviews.default.svc.cluster.local" already has a DestinationRule in this namespace: DestinationRule default/reviews (cross.yaml:18:1) (hint: merge the subsets and policies into one DestinationRule)',
    'cross.yaml:42:36: error TRL0303 VirtualService default/reviews spec.http[0].route[1].destination.subset: subset "v2" of host "reviews" is not defined by DestinationRule default/reviews, DestinationRule default/reviews-again (hint: defined subsets: v1, v9)',
    'cross.yaml:49:11: error TRL0302 VirtualService default/reviews-canary spec.hosts[0]: host "reviews.default.svc.cluster.local" is also routed by VirtualService default/reviews (cross.yaml:33:1); Trellis does not merge VirtualServices (hint: put all rules for a host in one VirtualService)',
    'cross.yaml:52:21: warning TRL0304 VirtualService default/reviews-canary spec.http[0].route[0].destination.host: destination host "ratings" (ratings.default.svc.cluster.local) is not declared by any Service, ServiceEntry or Workload',
    'cross.yaml:52:36: error TRL0303 VirtualService default/reviews-canary spec.http[0].route[0].destination.subset: subset "v1" of host "ratings" is not defined: no DestinationRule for ratings.default.svc.cluster.local',
    'cross.yaml:56:12: error TRL0301 VirtualService default/reviews metadata.name: duplicate VirtualService default/reviews: first defined as VirtualService default/reviews (cross.yaml:33:1)',
    'cross.yaml:68:12: error TRL0305 PeerAuthentication default/permissive metadata.name: PeerAuthentication overlaps: it is namespace-wide in default like PeerAuthentication default/default (cross.yaml:61:1) (hint: keep one policy per scope)',
    'cross.yaml:78:12: error TRL0305 PeerAuthentication istio-system/default metadata.name: PeerAuthentication overlaps: it is mesh-wide like PeerAuthentication trellis-system/mesh (cross.yaml:71:1) (hint: keep one policy per scope)',
    'cross.yaml:89:8: error TRL0305 PeerAuthentication default/reviews-b spec.selector: PeerAuthentication overlaps: it is the same selector ({version: v1, app: reviews}) as PeerAuthentication default/reviews-a (cross.yaml:81:1) (hint: keep one policy per scope)',
    'cross.yaml:95:14: warning TRL0306 AuthorizationPolicy default/nobody spec.selector.matchLabels: selector {app: ratings} matches no workload in namespace default',
    'cross.yaml:103:14: error TRL0218 RequestAuthentication default/jwt spec.jwtRules[0]: jwtRule has no issuer (hint: set issuer to the "iss" claim the tokens carry)',
    'cross.yaml:112:12: error TRL0308 Mesh default/two metadata.name: more than one Mesh resource: Mesh default/one (cross.yaml:105:1) already sets mesh-wide settings',
  ]);
});

test('the valid fixture set covers every kind and yields no diagnostics at all', async () => {
  const { resources, diagnostics } = await loadFiles([fixture('valid')]);
  assert.deepEqual(diagnostics, []);
  assert.deepEqual([...new Set(resources.map((r) => r.kind))].sort(), [...KIND_NAMES].sort());
  assert.deepEqual(analyzeResources(resources).map(formatDiagnostic), []);
});

test('the demo mesh analyzes clean', async () => {
  const demo = fileURLToPath(new URL('../../examples/demo/mesh.yaml', import.meta.url));
  const { resources, diagnostics } = await loadFiles([demo]);
  assert.deepEqual(mergeDiagnostics(diagnostics, analyzeResources(resources)).filter((d) => d.severity === 'error').map(formatDiagnostic), []);
});

const policy = (ns: string, labels: Record<string, string>): Resource => ({
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'p', namespace: ns },
  spec: { selector: { matchLabels: labels } },
});

test('selectors: no warning when no workload is known; registry workloads count; root namespace sees all', () => {
  assert.deepEqual(analyzeResources([policy('prod', { app: 'a' })]), []);
  const registryWorkloads = [{ name: 'a-1', namespace: 'prod', labels: { app: 'a' } }];
  assert.deepEqual(analyzeResources([policy('prod', { app: 'a' })], { registryWorkloads }), []);
  assert.deepEqual(
    analyzeResources([policy('dev', { app: 'a' })], { registryWorkloads }).map(formatDiagnostic),
    ['warning TRL0306 AuthorizationPolicy dev/p spec.selector.matchLabels: selector {app: a} matches no workload in namespace dev'],
  );
  assert.deepEqual(analyzeResources([policy('istio-system', { app: 'a' })], { registryWorkloads }), []);
  assert.deepEqual(
    analyzeResources([policy('trellis-system', { app: 'b' })], { registryWorkloads }).map(formatDiagnostic),
    ['warning TRL0306 AuthorizationPolicy trellis-system/p spec.selector.matchLabels: selector {app: b} matches no workload in the mesh'],
  );
});

test('VirtualServices bound only to gateways do not conflict with mesh ones; ServiceEntry wildcards declare hosts', () => {
  const text = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge}
spec:
  hosts: [api.example.com]
  gateways: [edge-gateway]
  http: [{route: [{destination: {host: api.example.com}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mesh}
spec:
  hosts: [api.example.com]
  http: [{route: [{destination: {host: api.example.com}}]}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext}
spec: {hosts: ["*.example.com"], ports: [{number: 443, name: https, protocol: TLS}]}
`;
  assert.deepEqual(analyzeText(text), [
    'x.yaml:7:14: warning TRL0402 VirtualService default/edge spec.gateways[0]: gateway "edge-gateway" is not honoured: Trellis has no gateways, only "mesh"',
  ]);
});

test('HTTPRoute weights are relative: no sum check; TrafficSplit next to a VirtualService warns', () => {
  const text = `
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{kind: Service, group: "", name: web}]
  rules: [{backendRefs: [{name: web, port: 80, weight: 3}, {name: web, port: 80, weight: 1}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web]
  http: [{route: [{destination: {host: web}}]}]
`;
  assert.deepEqual(analyzeText(text), [
    'x.yaml:11:16: warning TRL0310 HTTPRoute default/web spec.parentRefs[0]: web.default.svc.cluster.local is also routed by VirtualService default/web (x.yaml:14:1) (hint: route each host with one kind of resource)',
  ]);
});

test('the Workload example from the user-facing spec loads verbatim', () => {
  const text = `apiVersion: trellis.dev/v1alpha1
kind: Workload
metadata: {name: reviews-v2, namespace: default, labels: {app: reviews, version: v2}}
spec:
  service: reviews              # member of Service "reviews" (created if not declared)
  serviceAccount: reviews       # default: the service name
  ports: [{name: http, port: 9082, protocol: HTTP}]   # where the app listens on 127.0.0.1
  command: ["node", "reviews.js"]                     # optional: trellis up runs it
  env: {COLOR: black}
  proxy: {outboundPort: 15101, inboundPort: 15102, adminPort: 15103}   # optional, else allocated
`;
  const r = parseYamlDocuments(text, 'w.yaml');
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(analyzeResources(r.resources), []);
  assert.equal(r.resources[0].spec.proxy.adminPort, 15103);
});

test('a wildcard DestinationRule host is not reported as undeclared', () => {
  const text = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: mtls, namespace: istio-system}
spec:
  host: "*.local"
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
`;
  assert.deepEqual(analyzeText(text), []);
});
