// YAML loading: exact diagnostics with file:line:column for syntax, structure, type and field errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFiles, parseYamlDocuments, positionOf } from '../../src/api/load.js';
import { formatDiagnostic, mergeDiagnostics } from '../../src/api/diagnostics.js';

const lines = (text: string, file = 'bad.yaml'): string[] =>
  mergeDiagnostics(parseYamlDocuments(text, file).diagnostics).map(formatDiagnostic);

test('YAML syntax error names the position', () => {
  assert.deepEqual(lines('apiVersion: v1\nkind: Service\nmetadata: {name: a\n'), [
    'bad.yaml:4:1: error TRL0101: YAML syntax error: Flow map in block collection must be sufficiently indented and end with a }',
  ]);
  assert.deepEqual(lines('a: 1\na: 2\n'), ['bad.yaml:2:1: error TRL0101: YAML syntax error: Map keys must be unique']);
});

test('a syntax error in one document does not hide the others', () => {
  const r = parseYamlDocuments('kind: [\n---\napiVersion: v1\nkind: Service\nmetadata: {name: ok}\n', 'f.yaml');
  assert.equal(r.resources.length, 1);
  assert.equal(r.resources[0].metadata.name, 'ok');
  assert.equal(r.diagnostics.length, 1);
  assert.equal(r.diagnostics[0].code, 'TRL0101');
});

test('document that is not a mapping, missing kind / apiVersion', () => {
  assert.deepEqual(lines('- a\n- b\n'), ['bad.yaml:1:1: error TRL0102: document is not a mapping (got a list)']);
  assert.deepEqual(lines('apiVersion: v1\nmetadata: {name: a}\n'), ['bad.yaml:1:1: error TRL0103 kind: missing "kind"']);
  assert.deepEqual(lines('kind: Service\nmetadata: {name: a}\n'), ['bad.yaml:1:1: error TRL0103 Service default/a apiVersion: missing "apiVersion"']);
});

test('unknown kind with did-you-mean, unknown apiVersion', () => {
  assert.deepEqual(lines('apiVersion: networking.istio.io/v1\nkind: VirtualServce\nmetadata: {name: reviews}\nspec: {}\n'), [
    'bad.yaml:2:1: error TRL0104 VirtualServce default/reviews kind: unknown kind "VirtualServce" (hint: did you mean "VirtualService"?)',
  ]);
  assert.deepEqual(lines('apiVersion: v1\nkind: Deployment\nmetadata: {name: x}\n'), [
    'bad.yaml:2:1: error TRL0104 Deployment default/x kind: unknown kind "Deployment" (hint: accepted kinds: VirtualService, DestinationRule, ServiceEntry, WorkloadEntry, PeerAuthentication, AuthorizationPolicy, RequestAuthentication, HTTPRoute, GRPCRoute, TrafficSplit, Service, Mesh, Workload, RateLimitPolicy)',
  ]);
  assert.deepEqual(lines('apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: reviews}\nspec: {hosts: [reviews]}\n'), [
    'bad.yaml:1:1: error TRL0105 VirtualService default/reviews apiVersion: apiVersion "networking.istio.io/v2" is not accepted for VirtualService (hint: use networking.istio.io/v1 or networking.istio.io/v1beta1 or networking.istio.io/v1alpha3)',
  ]);
});

test('missing metadata.name, non-string name', () => {
  assert.deepEqual(lines('apiVersion: v1\nkind: Service\nmetadata:\n  namespace: prod\n'), [
    'bad.yaml:3:1: error TRL0106 Service metadata: missing metadata.name',
  ]);
  assert.deepEqual(lines('apiVersion: v1\nkind: Service\n'), ['bad.yaml:1:1: error TRL0106 Service metadata: missing metadata.name']);
  assert.deepEqual(lines('apiVersion: v1\nkind: Service\nmetadata: {name: 42}\n'), [
    'bad.yaml:3:12: error TRL0202 Service metadata.name: expected string, got integer 42 (hint: quote it: "42")',
  ]);
});

test('wrong types, unknown fields with did-you-mean, missing spec, invalid names', () => {
  const text = [
    'apiVersion: networking.istio.io/v1', // 1
    'kind: VirtualService', // 2
    'metadata:', // 3
    '  name: reviews', // 4
    '  namespace: prod', // 5
    '  labels: {version: 2}', // 6
    'spec:', // 7
    '  hosts: reviews', // 8
    '  http:', // 9
    '  - route:', // 10
    '    - destinaton: {host: reviews}', // 11
    '    timeout: 10', // 12
    '    retries: {attempts: "3", perTryTimeout: 2 seconds}', // 13
  ].join('\n');
  assert.deepEqual(lines(text), [
    'bad.yaml:6:12: error TRL0202 VirtualService prod/reviews metadata.labels.version: expected string, got integer 2 (hint: quote it: "2")',
    'bad.yaml:8:3: error TRL0202 VirtualService prod/reviews spec.hosts: expected a list ([]string), got string "reviews" (hint: wrap the value in a list: [ ... ])',
    'bad.yaml:11:7: error TRL0201 VirtualService prod/reviews spec.http[0].route[0].destinaton: unknown field "destinaton" (hint: did you mean "destination"?)',
    'bad.yaml:12:5: error TRL0206 VirtualService prod/reviews spec.http[0].timeout: invalid duration 10 (hint: add a unit: "10s")',
    'bad.yaml:13:15: error TRL0202 VirtualService prod/reviews spec.http[0].retries.attempts: expected integer, got string "3" (hint: write the number without quotes)',
    'bad.yaml:13:30: error TRL0206 VirtualService prod/reviews spec.http[0].retries.perTryTimeout: invalid duration "2 seconds" (hint: write e.g. "1.5s", "100ms", "2m" or "1h")',
  ]);
  assert.deepEqual(lines('apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: Bad_Name}\n'), [
    'bad.yaml:1:1: error TRL0109 DestinationRule default/Bad_Name spec: missing spec',
    'bad.yaml:3:12: error TRL0107 DestinationRule default/Bad_Name metadata.name: "Bad_Name" is not a valid name (hint: use lowercase letters, digits, "-" and ".")',
  ]);
  assert.deepEqual(lines('apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspek: {}\n'), [
    'bad.yaml:4:1: error TRL0201 Service default/a spek: unknown field "spek" (hint: did you mean "spec"?)',
  ]);
});

test('resources keep their source and every field position; positionOf falls back to the parent', () => {
  const text = '# comment\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  ports:\n  - name: http\n    port: 80\n';
  const { resources, diagnostics } = parseYamlDocuments(text, 'svc.yaml');
  assert.deepEqual(diagnostics, []);
  const r = resources[0];
  assert.deepEqual(r.source, { file: 'svc.yaml', line: 3, column: 1 });
  assert.deepEqual(positionOf(r, 'spec.ports[0].port'), { line: 9, column: 5 });
  assert.deepEqual(positionOf(r, 'spec.ports[0]'), { line: 8, column: 5 });
  assert.deepEqual(positionOf(r, 'spec.ports[0].targetPort'), { line: 8, column: 5 });
  assert.deepEqual(positionOf(r, 'metadata.labels["app.kubernetes.io/name"]'), { line: 5, column: 1 });
  assert.deepEqual(Object.keys(r), ['apiVersion', 'kind', 'metadata', 'spec', 'source']);
  assert.equal(JSON.stringify(r).includes('positions'), false);
  // A copy keeps the document start but not the field positions.
  assert.deepEqual(positionOf({ ...r }, 'spec.ports'), { line: 3, column: 1 });
  assert.equal(positionOf({ ...r, source: undefined }, 'spec.ports'), undefined);
});

test('empty documents and specless policies load; status is accepted', () => {
  const r = parseYamlDocuments('---\n---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny-all, namespace: x}\nstatus: {}\n', 'f');
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.resources[0].spec, {});
});

test('loadFiles: directories recurse over .yaml/.yml, a missing path is a diagnostic', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-api-'));
  try {
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'a.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: a}\n');
    writeFileSync(join(dir, 'sub', 'b.yml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: b}\n');
    writeFileSync(join(dir, 'notes.txt'), 'not yaml: [');
    const r = await loadFiles([dir, join(dir, 'missing.yaml')]);
    assert.deepEqual(r.resources.map((x) => x.metadata.name), ['a', 'b']);
    assert.deepEqual(r.diagnostics.map(formatDiagnostic), [`${join(dir, 'missing.yaml')}: error TRL0108: cannot read: no such file or directory`]);
    assert.equal(r.resources[1].source?.file, join(dir, 'sub', 'b.yml'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('anchors, aliases and merge keys resolve', () => {
  const text = `apiVersion: v1
kind: Service
metadata: {name: a, labels: &l {app: a}}
spec:
  selector: *l
  ports:
  - &p {name: http, port: 80}
  - <<: *p
    name: admin
    port: 81
`;
  const r = parseYamlDocuments(text, 'a.yaml');
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.resources[0].spec, { selector: { app: 'a' }, ports: [{ name: 'http', port: 80 }, { name: 'admin', port: 81 }] });
});
