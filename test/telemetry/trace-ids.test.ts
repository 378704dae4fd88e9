// Trace and span ids: well-formed W3C ids (lowercase hex, never all zero), unique across many pool refills.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newIds, newSpanId, newTraceId, parseTraceparent } from '../../src/telemetry/trace-context.js';

test('ids are 32 / 16 lowercase hex digits, not all zero, and a traceparent built from them parses', () => {
  for (let i = 0; i < 1000; i++) {
    const [t, s] = newIds();
    assert.match(t, /^[0-9a-f]{32}$/);
    assert.match(s, /^[0-9a-f]{16}$/);
    assert.notEqual(t, '0'.repeat(32));
    assert.notEqual(s, '0'.repeat(16));
    assert.match(newTraceId(), /^[0-9a-f]{32}$/);
    assert.match(newSpanId(), /^[0-9a-f]{16}$/);
    assert.deepEqual(parseTraceparent(`00-${t}-${s}-01`), { traceId: t, spanId: s, sampled: true });
  }
});

test('no repeats over 20,000 trace ids and 20,000 span ids (the random pool refills ~120 times)', () => {
  const traces = new Set<string>();
  const spans = new Set<string>();
  for (let i = 0; i < 10_000; i++) {
    const [t, s] = newIds();
    traces.add(t).add(newTraceId());
    spans.add(s).add(newSpanId());
  }
  assert.equal(traces.size, 20_000);
  assert.equal(spans.size, 20_000);
});
