// Trace context parsing and writing (W3C traceparent, B3 single and multi-header), and Mesh tracing over xDS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseB3, parseTraceparent, writeContext } from '../../src/telemetry/trace-context.js';
import { tracingFromListeners } from '../../src/telemetry/tracing-config.js';
import { Tracer } from '../../src/telemetry/tracing.js';
import { meshSettings } from '../../src/control/mesh.js';
import { outboundListener } from '../../src/control/compile/listeners.js';
import { HCM_TYPE, unpackAny } from '../../src/xds/protos.js';
import type { Resource } from '../../src/api/types.js';
import type { WorkloadInstance } from '../../src/control/model.js';

test('traceparent: valid, sampled flag, and the malformed or all-zero forms that start a new trace', () => {
  const cases: [string, object | undefined][] = [
    ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', sampled: true }],
    ['00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-00', { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', sampled: false }],
    ['01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra', { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', sampled: true }],
    ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra', undefined],
    ['ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', undefined],
    ['00-00000000000000000000000000000000-00f067aa0ba902b7-01', undefined],
    ['00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', undefined],
    ['00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01', undefined],
    ['garbage', undefined],
  ];
  for (const [v, want] of cases) assert.deepEqual(parseTraceparent(v), want, v);
});

test('B3: multi-header, single header, 64-bit trace ids padded, unsampled', () => {
  assert.deepEqual(parseB3({ 'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7', 'x-b3-spanid': 'e457b5a2e4d86bd1', 'x-b3-sampled': '1' }), {
    traceId: '80f198ee56343ba864fe8b2a57d3eff7',
    spanId: 'e457b5a2e4d86bd1',
    sampled: true,
  });
  assert.deepEqual(parseB3({ b3: '64fe8b2a57d3eff7-e457b5a2e4d86bd1-0' }), { traceId: '000000000000000064fe8b2a57d3eff7', spanId: 'e457b5a2e4d86bd1', sampled: false });
  assert.equal(parseB3({ b3: '0' }), undefined);
  assert.equal(parseB3({}), undefined);
});

test('writeContext sets traceparent and B3 in the form the request used', () => {
  const w3c: Record<string, string | string[] | undefined> = {};
  writeContext(w3c, 'a'.repeat(32), 'b'.repeat(16), 'c'.repeat(16), true);
  assert.equal(w3c.traceparent, `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`);
  assert.equal(w3c['x-b3-traceid'], undefined, 'no B3 added to a request that had none');
  const h: Record<string, string | string[] | undefined> = { 'x-b3-traceid': 'x', 'x-b3-spanid': 'y' };
  writeContext(h, 'a'.repeat(32), 'b'.repeat(16), 'c'.repeat(16), true);
  assert.equal(h['x-b3-traceid'], 'a'.repeat(32));
  assert.equal(h['x-b3-spanid'], 'b'.repeat(16));
  assert.equal(h['x-b3-parentspanid'], 'c'.repeat(16));
  assert.equal(h['x-b3-sampled'], '1');
  const single: Record<string, string | string[] | undefined> = { b3: 'x' };
  writeContext(single, 'a'.repeat(32), 'b'.repeat(16), undefined, false);
  assert.equal(single.b3, `${'a'.repeat(32)}-${'b'.repeat(16)}-0`);
  assert.equal(single['x-b3-traceid'], undefined);
});

test('Mesh spec.tracing reaches the proxy through the outbound listener HCM (OpenTelemetry provider, random_sampling)', () => {
  const mesh = meshSettings([{ apiVersion: 'trellis.dev/v1alpha1', kind: 'Mesh', metadata: { name: 'm' }, spec: { tracing: { endpoint: 'http://otel:4318/v1/traces', sampling: 2.5 } } } as Resource]);
  assert.deepEqual(mesh.tracing, { endpoint: 'http://otel:4318/v1/traces', samplingPercent: 2.5 });
  assert.equal(meshSettings([]).tracing, undefined);
  const w = { name: 'a', namespace: 'default', labels: {}, serviceAccount: 'a', identity: '', services: [], address: '127.0.0.1', ports: [], health: 'HEALTHY', source: 'proxy' } as WorkloadInstance;
  const l = outboundListener(w, 'r', mesh) as Record<string, any>;
  assert.deepEqual(tracingFromListeners([l], (a) => unpackAny(a as never), HCM_TYPE), { endpoint: 'http://otel:4318/v1/traces', samplingPercent: 2.5 });
  assert.equal(tracingFromListeners([outboundListener(w, 'r', meshSettings([])) as Record<string, any>], (a) => unpackAny(a as never), HCM_TYPE), undefined);
});

test('sampling: new traces at the configured rate, an incoming decision is kept either way', () => {
  let r = 0.5;
  const t = new Tracer({ owner: {}, workloads: ['x/y'], random: () => r });
  t.configure({ endpoint: 'http://127.0.0.1:1/v1/traces', samplingPercent: 10 });
  try {
    const ex = (headers: Record<string, string>) => ({ listener: { workload: 'x/y' }, headers: { ...headers } as Record<string, string | string[] | undefined>, trace: undefined as unknown });
    const a = ex({});
    t.onDispatch(a);
    assert.equal((a.trace as { sampled: boolean }).sampled, false);
    assert.match(String(a.headers.traceparent), /-00$/);
    r = 0.05;
    const b = ex({});
    t.onDispatch(b);
    assert.equal((b.trace as { sampled: boolean }).sampled, true);
    r = 0.99;
    const c = ex({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
    t.onDispatch(c);
    assert.equal((c.trace as { sampled: boolean; parentSpanId: string }).sampled, true);
    assert.equal((c.trace as { parentSpanId: string }).parentSpanId, '00f067aa0ba902b7');
    assert.notEqual(String(c.headers.traceparent).split('-')[2], '00f067aa0ba902b7');
  } finally {
    void t.close();
  }
});
