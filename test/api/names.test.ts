// Table tests for name resolution, quantities, durations, hints and diagnostic formatting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  hostAliases,
  isRootNamespace,
  namespaceOf,
  resolveHost,
  resourceKey,
  rootNamespaces,
  serviceFqdn,
  spiffeId,
  splitServiceFqdn,
  trustDomainOf,
  EXTERNAL_TLDS,
} from '../../src/api/names.js';
import { parseQuantity, type Resource } from '../../src/api/types.js';
import { parseDuration } from '../../src/api/duration.js';
import { didYouMean, editDistance, formatDiagnostic, mergeDiagnostics } from '../../src/api/diagnostics.js';

test('resolveHost: every Kubernetes spelling of a service is one FQDN', () => {
  const table: [string, string, string][] = [
    ['reviews', 'default', 'reviews.default.svc.cluster.local'],
    ['reviews', 'prod', 'reviews.prod.svc.cluster.local'],
    ['reviews.default', 'prod', 'reviews.default.svc.cluster.local'],
    ['reviews.default.svc', 'prod', 'reviews.default.svc.cluster.local'],
    ['reviews.default.svc.cluster.local', 'prod', 'reviews.default.svc.cluster.local'],
    ['reviews.default.svc.cluster.local.', 'prod', 'reviews.default.svc.cluster.local'],
    ['Reviews.Default', 'x', 'reviews.default.svc.cluster.local'],
    ['reviews:9080', 'default', 'reviews.default.svc.cluster.local'],
    ['reviews.default:9080', 'x', 'reviews.default.svc.cluster.local'],
    ['httpbin.org', 'default', 'httpbin.org'],
    ['HTTPBIN.ORG:443', 'default', 'httpbin.org'],
    ['example.com.', 'default', 'example.com'],
    ['db.legacy.internal', 'default', 'db.legacy.internal'],
    ['api.example.com', 'default', 'api.example.com'],
    ['*.example.com', 'default', '*.example.com'],
    ['*', 'default', '*'],
    ['10.0.0.1', 'default', '10.0.0.1'],
    ['10.0.0.1:80', 'default', '10.0.0.1'],
    ['[::1]:80', 'default', '::1'],
    ['::1', 'default', '::1'],
    ['reviews', '', 'reviews.default.svc.cluster.local'],
  ];
  for (const [host, ns, want] of table) assert.equal(resolveHost(host, ns), want, `${host} in ${ns}`);
  // Likely namespace names are namespaces; a namespace named like a TLD needs the known-namespace set.
  assert.equal(resolveHost('reviews.dev', 'default'), 'reviews.dev.svc.cluster.local');
  assert.equal(resolveHost('reviews.test', 'default'), 'reviews.test.svc.cluster.local');
  assert.equal(resolveHost('reviews.us', 'default'), 'reviews.us');
  assert.equal(resolveHost('reviews.us', 'default', new Set(['us'])), 'reviews.us.svc.cluster.local');
  assert.equal(resolveHost('example.com', 'default', new Set(['default'])), 'example.com');
  assert.equal(resolveHost('reviews.dev', 'default', new Set(['default'])), 'reviews.dev');
});

test('serviceFqdn, hostAliases, splitServiceFqdn', () => {
  assert.equal(serviceFqdn('reviews', 'default'), 'reviews.default.svc.cluster.local');
  assert.equal(serviceFqdn('reviews'), 'reviews.default.svc.cluster.local');
  assert.deepEqual(hostAliases('reviews', 'prod'), ['reviews', 'reviews.prod', 'reviews.prod.svc', 'reviews.prod.svc.cluster.local']);
  for (const a of hostAliases('reviews', 'prod')) assert.equal(resolveHost(a, 'prod'), 'reviews.prod.svc.cluster.local');
  assert.deepEqual(splitServiceFqdn('reviews.prod.svc.cluster.local'), { name: 'reviews', namespace: 'prod' });
  assert.equal(splitServiceFqdn('httpbin.org'), undefined);
});

test('namespaceOf, resourceKey, spiffeId', () => {
  const r = { kind: 'VirtualService', metadata: { name: 'reviews' } } as Resource;
  assert.equal(namespaceOf(r), 'default');
  assert.equal(resourceKey(r), 'VirtualService/default/reviews');
  assert.equal(resourceKey({ kind: 'Service', metadata: { name: 'a', namespace: 'b' } }), 'Service/b/a');
  assert.equal(spiffeId('cluster.local', 'default', 'checkout'), 'spiffe://cluster.local/ns/default/sa/checkout');
});

test('root namespaces: Mesh.spec.rootNamespace (default trellis-system) plus istio-system', () => {
  const mesh = (spec: object): Resource => ({ apiVersion: 'trellis.dev/v1alpha1', kind: 'Mesh', metadata: { name: 'm' }, spec });
  assert.deepEqual(rootNamespaces([]), ['trellis-system', 'istio-system']);
  assert.deepEqual(rootNamespaces([mesh({ rootNamespace: 'mesh-root' })]), ['mesh-root', 'istio-system']);
  assert.deepEqual(rootNamespaces([mesh({ rootNamespace: 'istio-system' })]), ['istio-system']);
  assert.equal(isRootNamespace('istio-system'), true);
  assert.equal(isRootNamespace('trellis-system'), true);
  assert.equal(isRootNamespace('default'), false);
  assert.equal(trustDomainOf([]), 'cluster.local');
  assert.equal(trustDomainOf([mesh({ trustDomain: 'example.org' })]), 'example.org');
});

test('parseQuantity: numbers and Kubernetes quantities', () => {
  const table: [unknown, number][] = [
    [90, 90],
    [0.5, 0.5],
    ['90', 90],
    ['900m', 0.9],
    ['100m', 0.1],
    ['1', 1],
    ['1.5', 1.5],
    ['2k', 2000],
    ['1Ki', 1024],
    ['1Mi', 1048576],
    ['1e3', 1000],
    ['500u', 0.0005],
    ['+3', 3],
    ['-1', -1],
  ];
  for (const [v, want] of table) assert.equal(parseQuantity(v), want, String(v));
  for (const bad of ['', 'ten', '1x', '1.2.3', 'm', null, undefined, {}, Infinity]) assert.ok(Number.isNaN(parseQuantity(bad)), String(bad));
});

test('parseDuration: Istio and Go duration strings in milliseconds', () => {
  const table: [unknown, number | undefined][] = [
    ['1s', 1000],
    ['1.5s', 1500],
    ['100ms', 100],
    ['2m', 120000],
    ['1h', 3600000],
    ['1h30m', 5400000],
    ['0s', 0],
    ['0', 0],
    ['.5s', 500],
    ['250us', 0.25],
    ['7200s', 7200000],
    ['5', undefined],
    ['5 s', undefined],
    ['s', undefined],
    ['1d', undefined],
    ['', undefined],
    ['-1s', undefined],
    [5, undefined],
    [null, undefined],
  ];
  for (const [v, want] of table) assert.equal(parseDuration(v), want, String(v));
});

test('did-you-mean picks the nearest name within a small distance', () => {
  assert.equal(editDistance('hots', 'hosts'), 1);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(didYouMean('hots', ['hosts', 'http', 'tcp']), 'hosts');
  assert.equal(didYouMean('Timeout', ['timeout', 'retries']), 'timeout');
  assert.equal(didYouMean('destinaton', ['destination', 'weight']), 'destination');
  assert.equal(didYouMean('zzzzzz', ['hosts', 'http']), undefined);
});

test('formatDiagnostic: file:line:col severity code subject field: message (hint)', () => {
  assert.equal(
    formatDiagnostic({
      code: 'TRL0203',
      severity: 'error',
      message: 'weights sum to 90, must be 100',
      hint: 'fix it',
      file: 'routes.yaml',
      line: 12,
      column: 9,
      kind: 'VirtualService',
      namespace: 'default',
      name: 'reviews',
      field: 'spec.http[0].route[1].weight',
    }),
    'routes.yaml:12:9: error TRL0203 VirtualService default/reviews spec.http[0].route[1].weight: weights sum to 90, must be 100 (hint: fix it)',
  );
  assert.equal(formatDiagnostic({ code: 'TRL0108', severity: 'error', message: 'cannot read', file: 'x.yaml' }), 'x.yaml: error TRL0108: cannot read');
  assert.equal(formatDiagnostic({ code: 'TRL0401', severity: 'warning', message: 'm' }), 'warning TRL0401: m');
});

test('mergeDiagnostics drops repeats and sorts by file and position', () => {
  const a = { code: 'X', severity: 'error' as const, message: 'a', file: 'f', line: 5, column: 1 };
  const b = { code: 'Y', severity: 'error' as const, message: 'b', file: 'f', line: 2, column: 3 };
  assert.deepEqual(mergeDiagnostics([a, b], [a]), [b, a]);
});

test('resolveHost is idempotent and ignores case, port and trailing dot (property)', async () => {
  const fc = (await import('fast-check')).default;
  const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/);
  const namespace = label.filter((l) => !EXTERNAL_TLDS.has(l));
  fc.assert(
    fc.property(label, namespace, label, fc.integer({ min: 1, max: 65535 }), (name, ns, ctx, port) => {
      const fqdn = resolveHost(`${name}.${ns}`, ctx);
      assert.equal(resolveHost(fqdn, ctx), fqdn);
      assert.equal(resolveHost(`${name.toUpperCase()}.${ns}.svc.cluster.local.:${port}`, ctx), fqdn);
      assert.equal(resolveHost(name, ns), resolveHost(`${name}.${ns}.svc`, ctx));
    }),
    { numRuns: 200 },
  );
});
