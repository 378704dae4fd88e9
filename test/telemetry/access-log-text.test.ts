// The text access log line: the JSON record's fields on one readable line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessLogText, type AccessLogEntry } from '../../src/telemetry/access-log.js';

const entry: AccessLogEntry = {
  start_time: '2026-01-01T00:00:01.000Z',
  direction: 'outbound',
  method: 'GET',
  authority: 'backend',
  path: '/api/items?x=1',
  protocol: 'HTTP/1.1',
  status: 504,
  error_code: 'upstream_timeout',
  decided_by: 'VirtualService default/backend',
  decision_reason: 'route timeout 1s',
  route: 'default/backend#0',
  cluster: 'outbound|80||backend.default.svc.cluster.local',
  endpoint: '127.0.0.1:15006',
  source_workload: 'default/frontend',
  mtls: true,
  request_id: 'rid-1',
  bytes_received: 0,
  bytes_sent: 24,
  duration_ms: 1001.5,
  proxy_ms: 0.5,
};

test('text line: head, then every other field as key=value, quoting values with spaces', () => {
  assert.equal(
    accessLogText(entry),
    '2026-01-01T00:00:01.000Z outbound "GET /api/items?x=1 HTTP/1.1" 504 upstream_timeout authority=backend ' +
      'decided_by="VirtualService default/backend" decision_reason="route timeout 1s" route=default/backend#0 ' +
      'cluster=outbound|80||backend.default.svc.cluster.local endpoint=127.0.0.1:15006 source_workload=default/frontend ' +
      'mtls=true request_id=rid-1 bytes_received=0 bytes_sent=24 duration_ms=1001.5 proxy_ms=0.5',
  );
});

test('text line: no error code is "-", absent fields are left out, quotes and "=" in values are escaped', () => {
  const line = accessLogText({ ...entry, error_code: '', decided_by: undefined, decision_reason: undefined, authority: 'a"b=c', path: '/p"q' });
  assert.match(line, /^\S+ outbound "GET \/p\\"q HTTP\/1\.1" 504 - authority="a\\"b=c" route=/);
  assert.doesNotMatch(line, /decided_by|decision_reason/);
  assert.equal(line.includes('\n'), false);
});
