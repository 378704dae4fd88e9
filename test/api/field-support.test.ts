// Fields and values Trellis accepts but does not honour are reported (TRL0401 / TRL0402) at the field, never ignored silently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KIND_SCHEMAS, type FieldSchema } from '../../src/api/schema.js';
import { validateResource } from '../../src/api/validate.js';
import { parseYamlDocuments } from '../../src/api/load.js';
import { API_VERSIONS, type KindName, type Resource } from '../../src/api/types.js';
import { formatDiagnostic } from '../../src/api/diagnostics.js';

const doc = (kind: KindName, spec: unknown): Resource => ({ apiVersion: API_VERSIONS[kind][0], kind, metadata: { name: 'x', namespace: 'default' }, spec });

/** Every schema path (`a.b[].c`, `m.<key>.d`) marked unsupported, per kind; walking stops at an unsupported field. */
function unsupportedPaths(): { kind: KindName; path: string }[] {
  const out: { kind: KindName; path: string }[] = [];
  const walk = (kind: KindName, f: FieldSchema, path: string): void => {
    if (f.unsupported) {
      out.push({ kind, path });
      return;
    }
    const inner = f.type === 'array' ? f.items : f.type === 'map' ? f.values : f;
    const base = f.type === 'array' ? `${path}[]` : f.type === 'map' ? `${path}.<key>` : path;
    for (const [k, c] of Object.entries(inner?.type === 'object' ? (inner.fields ?? {}) : {})) walk(kind, c, base ? `${base}.${k}` : k);
  };
  for (const [kind, s] of Object.entries(KIND_SCHEMAS)) walk(kind as KindName, s.spec, '');
  return out;
}

/** A spec that sets exactly the field at `path` (arrays get one item, maps one key `k`); the field itself holds `v`. */
function specSetting(path: string, v: unknown): { spec: Record<string, unknown>; field: string } {
  const parts = path.split('.');
  const root: Record<string, unknown> = {};
  let cur: Record<string, unknown> = root;
  const field: string[] = [];
  parts.forEach((p, i) => {
    const last = i === parts.length - 1;
    if (p === '<key>') {
      // the previous step made a map holder: descend into key `k`
      field[field.length - 1] += '.k';
      return;
    }
    const isArr = p.endsWith('[]');
    const name = isArr ? p.slice(0, -2) : p;
    const nextIsKey = parts[i + 1] === '<key>';
    field.push(name);
    if (last) {
      cur[name] = v;
      return;
    }
    const child: Record<string, unknown> = {};
    if (isArr) {
      cur[name] = [child];
      field[field.length - 1] += '[0]';
    } else if (nextIsKey) {
      const holder: Record<string, unknown> = { k: child };
      cur[name] = holder;
    } else cur[name] = child;
    cur = child;
  });
  return { spec: root, field: `spec.${field.join('.')}` };
}

test('every field marked unsupported in the schema warns TRL0401 at that field when set', () => {
  const paths = unsupportedPaths();
  assert.ok(paths.length >= 60, `expected the audit's unsupported fields, found ${paths.length}`);
  for (const { kind, path } of paths) {
    const { spec, field } = specSetting(path, 'x');
    const ds = validateResource(doc(kind, spec));
    const hit = ds.find((d) => d.code === 'TRL0401' && d.field === field);
    assert.ok(hit, `${kind} ${field}: no TRL0401 among ${ds.map((d) => `${d.code} ${d.field}`).join('; ')}`);
  }
});

// The fields this audit found accepted but ignored (kind, field as reported).
const AUDITED_UNSUPPORTED: [KindName, string, unknown][] = [
  ['VirtualService', 'spec.tcp', [{ route: [{ destination: { host: 'a' } }] }]],
  ['DestinationRule', 'spec.workloadSelector', { matchLabels: { app: 'a' } }],
  ['DestinationRule', 'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.ttl', '1h'],
  ['DestinationRule', 'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.path', '/'],
  ['DestinationRule', 'spec.trafficPolicy.loadBalancer.consistentHash.ringHash.minimumRingSize', 1024],
  ['DestinationRule', 'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize', 65537],
  ['DestinationRule', 'spec.trafficPolicy.loadBalancer.localityLbSetting.failoverPriority', ['topology.kubernetes.io/region']],
  ['DestinationRule', 'spec.trafficPolicy.connectionPool.tcp.tcpKeepalive', { time: '7200s' }],
  ['DestinationRule', 'spec.trafficPolicy.connectionPool.tcp.maxConnectionDuration', '1h'],
  ['DestinationRule', 'spec.trafficPolicy.connectionPool.tcp.idleTimeout', '1h'],
  ['DestinationRule', 'spec.trafficPolicy.connectionPool.http.maxConcurrentStreams', 100],
  ['DestinationRule', 'spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures', 3],
  ['DestinationRule', 'spec.trafficPolicy.tls.clientCertificate', '/c.pem'],
  ['DestinationRule', 'spec.trafficPolicy.tls.privateKey', '/k.pem'],
  ['DestinationRule', 'spec.trafficPolicy.tls.caCertificates', '/ca.pem'],
  ['DestinationRule', 'spec.trafficPolicy.tls.subjectAltNames', ['a']],
  ['DestinationRule', 'spec.trafficPolicy.tls.sni', 'a.example'],
  ['DestinationRule', 'spec.trafficPolicy.tls.insecureSkipVerify', true],
  ['ServiceEntry', 'spec.addresses', ['10.0.0.1']],
  ['ServiceEntry', 'spec.endpoints[0].weight', 2],
  ['WorkloadEntry', 'spec.weight', 2],
  ['HTTPRoute', 'spec.hostnames', ['a.example']],
  ['GRPCRoute', 'spec.hostnames', ['a.example']],
];

test('the fields found ignored by the audit each warn TRL0401 at their own path', () => {
  for (const [kind, field, value] of AUDITED_UNSUPPORTED) {
    const { spec } = specSetting(field.replace(/^spec\./, '').replace(/\[0\]/g, '[]'), value);
    const ds = validateResource(doc(kind, spec)).filter((d) => d.code === 'TRL0401');
    assert.deepEqual(ds.map((d) => d.field), [field], `${kind} ${field}`);
  }
});

// Values that do not work although the field does: [kind, spec, field, message start].
const VALUE_CASES: [KindName, Record<string, unknown>, string, string][] = [
  ['VirtualService', { hosts: ['a'], http: [{ route: [{ destination: { host: 'a' } }], retries: { attempts: 1, retryIgnorePreviousHosts: false } }] }, 'spec.http[0].retries.retryIgnorePreviousHosts', 'false is not honoured'],
  ['VirtualService', { hosts: ['a'], http: [{ route: [{ destination: { host: 'a' } }], retries: { attempts: 1, retryRemoteLocalities: true } }] }, 'spec.http[0].retries.retryRemoteLocalities', 'true is not honoured'],
  ['DestinationRule', { host: 'a', trafficPolicy: { loadBalancer: { simple: 'PASSTHROUGH' } } }, 'spec.trafficPolicy.loadBalancer.simple', 'PASSTHROUGH is not honoured'],
  ['DestinationRule', { host: 'a', trafficPolicy: { connectionPool: { http: { h2UpgradePolicy: 'UPGRADE' } } } }, 'spec.trafficPolicy.connectionPool.http.h2UpgradePolicy', 'UPGRADE is not honoured'],
  ['DestinationRule', { host: 'a', trafficPolicy: { connectionPool: { http: { useClientProtocol: true } } } }, 'spec.trafficPolicy.connectionPool.http.useClientProtocol', 'true is not honoured'],
  ['DestinationRule', { host: 'a', trafficPolicy: { outlierDetection: { splitExternalLocalOriginErrors: true } } }, 'spec.trafficPolicy.outlierDetection.splitExternalLocalOriginErrors', 'true is not honoured'],
  ['DestinationRule', { host: 'a', trafficPolicy: { outlierDetection: { minHealthPercent: 50 } } }, 'spec.trafficPolicy.outlierDetection.minHealthPercent', '50 is not honoured'],
  ['DestinationRule', { host: 'a', trafficPolicy: { tls: { mode: 'SIMPLE' } } }, 'spec.trafficPolicy.tls.mode', 'SIMPLE is not honoured'],
  ['DestinationRule', { host: 'a', trafficPolicy: { tls: { mode: 'MUTUAL' } } }, 'spec.trafficPolicy.tls.mode', 'MUTUAL is not honoured'],
  ['DestinationRule', { host: 'a', trafficPolicy: { tls: { mode: 'DISABLE' } } }, 'spec.trafficPolicy.tls.mode', 'DISABLE is not honoured'],
  ['DestinationRule', { host: 'a', trafficPolicy: { portLevelSettings: [{ port: { number: 443 }, tls: { mode: 'SIMPLE' } }] } }, 'spec.trafficPolicy.portLevelSettings[0].tls.mode', 'SIMPLE is not honoured'],
  ['DestinationRule', { host: 'a', subsets: [{ name: 'v1', trafficPolicy: { loadBalancer: { simple: 'PASSTHROUGH' } } }] }, 'spec.subsets[0].trafficPolicy.loadBalancer.simple', 'PASSTHROUGH is not honoured'],
  ['ServiceEntry', { hosts: ['a.example'], resolution: 'DNS', ports: [{ number: 80, name: 'http' }] }, 'spec.resolution', 'DNS is not honoured'],
  ['ServiceEntry', { hosts: ['a.example'], resolution: 'DNS_ROUND_ROBIN', ports: [{ number: 80, name: 'http' }] }, 'spec.resolution', 'DNS_ROUND_ROBIN is not honoured'],
  ['ServiceEntry', { hosts: ['a.example'], resolution: 'NONE', ports: [{ number: 80, name: 'http' }] }, 'spec.resolution', 'NONE is not honoured'],
  ['ServiceEntry', { hosts: ['a.example'], resolution: 'STATIC', location: 'MESH_INTERNAL', endpoints: [{ address: '10.0.0.1' }] }, 'spec.location', 'MESH_INTERNAL is not honoured'],
  ['ServiceEntry', { hosts: ['a.example'], ports: [{ number: 53, name: 'dns', protocol: 'UDP' }], resolution: 'STATIC', endpoints: [{ address: '10.0.0.1' }] }, 'spec.ports[0].protocol', 'UDP is not honoured'],
  ['ServiceEntry', { hosts: ['a.example'], resolution: 'STATIC', endpoints: [{ address: 'db.example.com' }] }, 'spec.endpoints[0].address', '"db.example.com" is not honoured'],
  ['WorkloadEntry', { address: 'vm1.example.com' }, 'spec.address', '"vm1.example.com" is not honoured'],
  ['Service', { ports: [{ port: 53, protocol: 'UDP' }] }, 'spec.ports[0].protocol', 'UDP is not honoured'],
  ['Service', { ports: [{ port: 80 }], internalTrafficPolicy: 'Local' }, 'spec.internalTrafficPolicy', 'Local is not honoured'],
  ['RequestAuthentication', { targetRef: { kind: 'Gateway', group: 'gateway.networking.k8s.io', name: 'g' } }, 'spec.targetRef.kind', 'targetRef kind "Gateway" is not honoured'],
  [
    'HTTPRoute',
    { parentRefs: [{ group: '', kind: 'Service', name: 'a' }], rules: [{ backendRefs: [{ name: 'a', filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'b' } }] }] }] },
    'spec.rules[0].backendRefs[0].filters[0].type',
    'filter type URLRewrite on a backendRef is not honoured',
  ],
  [
    'GRPCRoute',
    { parentRefs: [{ group: '', kind: 'Service', name: 'a' }], rules: [{ filters: [{ type: 'RequestMirror', requestMirror: { backendRef: { kind: 'Backend', name: 'm' } } }] }] },
    'spec.rules[0].filters[0].requestMirror.backendRef.kind',
    'backendRef kind "Backend" is not honoured',
  ],
];

test('values Trellis does not honour warn TRL0402 at the field; the honoured values do not', () => {
  for (const [kind, spec, field, message] of VALUE_CASES) {
    const ds = validateResource(doc(kind, spec)).filter((d) => d.code === 'TRL0402');
    assert.deepEqual(ds.map((d) => d.field), [field], `${kind} ${field}`);
    assert.ok(ds[0].message.startsWith(message), `${kind} ${field}: ${ds[0].message}`);
  }
  const quiet: [KindName, Record<string, unknown>][] = [
    [
      'DestinationRule',
      {
        host: 'a',
        trafficPolicy: {
          tls: { mode: 'ISTIO_MUTUAL' },
          loadBalancer: { simple: 'LEAST_REQUEST' },
          connectionPool: { http: { h2UpgradePolicy: 'DEFAULT', useClientProtocol: false } },
          outlierDetection: { splitExternalLocalOriginErrors: false, minHealthPercent: 0 },
        },
      },
    ],
    ['ServiceEntry', { hosts: ['a.example'], resolution: 'STATIC', location: 'MESH_EXTERNAL', endpoints: [{ address: '10.0.0.1' }] }],
    ['ServiceEntry', { hosts: ['a.example'], resolution: 'NONE', workloadSelector: { labels: { app: 'a' } } }],
    ['ServiceEntry', { hosts: ['a.example'], location: 'MESH_INTERNAL', workloadSelector: { labels: { app: 'a' } } }],
    ['WorkloadEntry', { address: '10.0.0.7' }],
    ['Service', { ports: [{ port: 80, protocol: 'TCP' }], internalTrafficPolicy: 'Cluster', ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack' }],
    ['VirtualService', { hosts: ['a'], http: [{ route: [{ destination: { host: 'a' } }], retries: { attempts: 1, retryIgnorePreviousHosts: true, retryRemoteLocalities: false } }] }],
    ['HTTPRoute', { parentRefs: [{ group: '', kind: 'Service', name: 'a' }], rules: [{ backendRefs: [{ name: 'a', filters: [{ type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x', value: '1' }] } }] }] }] }],
  ];
  for (const [kind, spec] of quiet) assert.deepEqual(validateResource(doc(kind, spec)).map(formatDiagnostic), [], kind);
});

test('the warning points at the field\'s line and column in the file', () => {
  const yaml = [
    'apiVersion: networking.istio.io/v1',
    'kind: DestinationRule',
    'metadata: {name: r}',
    'spec:',
    '  host: a',
    '  trafficPolicy:',
    '    connectionPool:',
    '      http: {maxConcurrentStreams: 10}',
    '    tls:',
    '      mode: SIMPLE',
    '',
  ].join('\n');
  const { resources } = parseYamlDocuments(yaml, 'dr.yaml');
  assert.deepEqual(validateResource(resources[0]).map(formatDiagnostic), [
    'dr.yaml:8:14: warning TRL0401 DestinationRule default/r spec.trafficPolicy.connectionPool.http.maxConcurrentStreams: not honoured by Trellis, ignored: use http2MaxRequests to bound concurrent requests',
    'dr.yaml:10:7: warning TRL0402 DestinationRule default/r spec.trafficPolicy.tls.mode: SIMPLE is not honoured: TLS origination is not implemented: Trellis uses mesh mTLS to endpoints that run a Trellis proxy and plaintext to all others (hint: let the app speak TLS to the destination itself)',
  ]);
});
