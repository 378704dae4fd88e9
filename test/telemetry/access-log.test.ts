// Access log lines and tap filters from finished-request events; the hook publishes only with subscribers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accessLogEntry, startAccessLog } from '../../src/telemetry/access-log.js';
import { tapMatches, parseTapFilter } from '../../src/telemetry/tap.js';
import { requestChannel, type RequestEvent } from '../../src/telemetry/request-events.js';
import { ProxyMetrics, type RequestLabels } from '../../src/telemetry/proxy-metrics.js';

const labels: RequestLabels = {
  reporter: 'source',
  source_workload: 'frontend',
  source_namespace: 'default',
  source_principal: 'spiffe://cluster.local/ns/default/sa/frontend',
  destination_workload: 'backend',
  destination_namespace: 'default',
  destination_service: 'backend.default.svc.cluster.local',
  destination_principal: 'spiffe://cluster.local/ns/default/sa/backend',
  route: 'default/backend#0',
  response_code: '200',
  grpc_status: '',
  error_code: '',
  connection_security_policy: 'mutual_tls',
};

function event(over: Partial<RequestEvent['ex']> = {}, l: Partial<RequestLabels> = {}, owner: object = {}): RequestEvent {
  return {
    owner,
    direction: 'outbound',
    labels: { ...labels, ...l },
    endMs: 1010,
    endEpochMs: Date.parse('2026-01-01T00:00:01.010Z'),
    ex: {
      startMs: 1000,
      dispatchMs: 1000.5,
      method: 'GET',
      authority: 'backend',
      path: '/api/items',
      query: 'x=1',
      requestId: 'rid-1',
      routeName: 'default/backend#0',
      errorCode: '',
      listener: { name: 'outbound', workload: 'default/frontend' },
      cluster: { config: { name: 'outbound|80||backend.default.svc.cluster.local', service: 'backend.default.svc.cluster.local' } },
      endpoint: { address: '127.0.0.1', port: 15006 },
      req: { headers: { 'content-length': '12' }, httpVersion: '1.1' },
      res: { statusCode: 200, getHeader: (n: string) => (n === 'content-length' ? '34' : undefined) },
      headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      ...over,
    },
  };
}

test('a forwarded request: identities, route, cluster, endpoint, bytes, proxy and upstream time', () => {
  const e = accessLogEntry(event());
  assert.equal(e.start_time, '2026-01-01T00:00:01.000Z');
  assert.equal(e.path, '/api/items?x=1');
  assert.equal(e.status, 200);
  assert.equal(e.source_workload, 'default/frontend');
  assert.equal(e.destination_principal, 'spiffe://cluster.local/ns/default/sa/backend');
  assert.equal(e.cluster, 'outbound|80||backend.default.svc.cluster.local');
  assert.equal(e.endpoint, '127.0.0.1:15006');
  assert.equal(e.mtls, true);
  assert.equal(e.bytes_received, 12);
  assert.equal(e.bytes_sent, 34);
  assert.equal(e.duration_ms, 10);
  assert.equal(e.proxy_ms, 0.5);
  assert.equal(e.upstream_ms, 9.5);
  assert.equal(e.request_id, 'rid-1');
  assert.match(e.traceparent!, /^00-0af7/);
});

test('a proxy-generated answer: error code and deciding rule; all its time is proxy time', () => {
  const e = accessLogEntry(
    event(
      { dispatchMs: undefined, errorCode: 'denied', decidedBy: 'AuthorizationPolicy default/backend-callers', decisionReason: 'no ALLOW rule matched', endpoint: undefined },
      { reporter: 'destination', response_code: '403', error_code: 'denied' },
    ),
  );
  assert.equal(e.status, 403);
  assert.equal(e.error_code, 'denied');
  assert.equal(e.decided_by, 'AuthorizationPolicy default/backend-callers');
  assert.equal(e.proxy_ms, 10);
  assert.equal(e.upstream_ms, undefined);
  assert.equal(e.endpoint, undefined);
});

test('tap filters: workload, method, path prefix, destination by short name, FQDN or workload', () => {
  const e = event();
  const cases: [string, boolean][] = [
    ['', true],
    ['workload=default/frontend', true],
    ['workload=default/backend', false],
    ['method=get', true],
    ['method=POST', false],
    ['path=/api', true],
    ['path=/other', false],
    ['to=backend', true],
    ['to=backend.default', true],
    ['to=backend.default.svc.cluster.local', true],
    ['to=back', false],
    ['to=default/backend', true],
    ['to=default/frontend', false],
  ];
  for (const [q, want] of cases) assert.equal(tapMatches(parseTapFilter(new URLSearchParams(q)), e), want, q);
});

test('finished() publishes only while someone listens, and the access log writes one JSON line per request', async () => {
  const m = new ProxyMetrics();
  let seen = 0;
  const spy = () => seen++;
  const ex = event().ex;
  m.requestKey(labels);
  m.finished('outbound', ex);
  assert.equal(requestChannel.hasSubscribers, false);
  const dir = mkdtempSync(join(tmpdir(), 'trellis-al-'));
  const log = startAccessLog(m, join(dir, 'access.log'));
  requestChannel.subscribe(spy);
  m.requestKey(labels);
  m.finished('outbound', ex);
  // Another proxy's events do not land in this proxy's log.
  const other = new ProxyMetrics();
  other.requestKey(labels);
  other.finished('outbound', ex);
  requestChannel.unsubscribe(spy);
  await log.close();
  assert.equal(seen, 2);
  const lines = readFileSync(join(dir, 'access.log'), 'utf8').trim().split('\n');
  assert.equal(lines.length, 1);
  assert.equal(JSON.parse(lines[0]).route, 'default/backend#0');
  // The time in the proxy went into this proxy's overhead histogram (dispatch - start = 0.5 ms), once per request.
  assert.match(m.render(), /trellis_proxy_overhead_seconds_count\{direction="outbound"\} 2/);
  rmSync(dir, { recursive: true, force: true });
});
