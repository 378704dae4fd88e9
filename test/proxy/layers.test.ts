// Each outbound layer alone, with a stub inner handler and a fake response (no sockets), plus header hygiene tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { deadline, fault, requestId, balance, route } from '../../src/proxy/http/layers.js';
import type { Exchange, Handler } from '../../src/proxy/http/exchange.js';
import { parseGrpcTimeout, sanitizeRequestHeaders, sanitizeResponseHeaders } from '../../src/proxy/http/headers.js';
import { compileState, emptyRaw } from '../../src/proxy/state.js';
import * as x from './helpers/xds.js';

class FakeRes extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  writableEnded = false;
  destroyed = false;
  headers: Record<string, unknown> = {};
  body = '';
  setHeader(k: string, v: unknown) {
    this.headers[k] = v;
  }
  writeHead(status: number, h: Record<string, unknown>) {
    this.statusCode = status;
    Object.assign(this.headers, h);
    this.headersSent = true;
  }
  end(b?: string) {
    this.body += b ?? '';
    this.writableEnded = true;
  }
}

function exchange(over: Partial<Exchange> = {}): Exchange & { res: FakeRes } {
  const res = new FakeRes();
  return {
    req: { socket: { remoteAddress: '127.0.0.1' } } as never,
    res: res as never,
    listener: { name: 'outbound|default/a', address: '127.0.0.1', port: 0, direction: 'outbound', workload: 'default/a', kind: 'http', routeConfigName: 'outbound|default/a', chains: [] },
    state: compileState(emptyRaw(), 1),
    caller: undefined,
    method: 'GET',
    authority: 'b',
    path: '/',
    query: '',
    headers: {},
    grpc: false,
    downstreamH2: false,
    closing: () => false,
    requestId: 'rid',
    startMs: 0,
    deadline: 0,
    deadlineSource: '',
    routeName: 'ns/r#0',
    errorCode: '',
    grpcStatus: '',
    ...over,
  } as Exchange & { res: FakeRes };
}

const forwardDecision = (over: Record<string, unknown> = {}) =>
  ({ kind: 'forward', routeName: 'ns/r#0', virtualHost: 'vh', cluster: 'c', timeoutMs: 0, requestHeaders: { set: [], add: [], remove: [], setIfAbsent: [], setIfPresent: [] }, responseHeaders: { set: [], add: [], remove: [], setIfAbsent: [], setIfPresent: [] }, mirrors: [], hashPolicies: [], filterConfig: {}, ...over }) as never;

function spy(): Handler & { calls: Exchange[] } {
  const calls: Exchange[] = [];
  const h = ((ex: Exchange) => void calls.push(ex)) as Handler & { calls: Exchange[] };
  h.calls = calls;
  return h;
}

test('requestId: adds a UUID when absent, keeps a sane one, replaces an oversized one', () => {
  const inner = spy();
  const h = requestId(inner);
  const a = exchange({ headers: {} });
  h(a);
  assert.match(String(a.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  const b = exchange({ headers: { 'x-request-id': 'keep-me' } });
  h(b);
  assert.equal(b.requestId, 'keep-me');
  const c = exchange({ headers: { 'x-request-id': 'x'.repeat(500) } });
  h(c);
  assert.notEqual(c.headers['x-request-id'], 'x'.repeat(500));
  assert.equal(inner.calls.length, 3);
});

test('fault: an abort with probability 1 answers fault_injected with the route name; HTTP status from the policy', () => {
  const inner = spy();
  const ex = exchange({ decision: forwardDecision({ fault: { abort: { httpStatus: 418, probability: 1 } } }) });
  fault(inner)(ex);
  assert.equal(inner.calls.length, 0);
  assert.equal(ex.res.statusCode, 418);
  assert.equal(ex.res.headers['x-trellis-error'], 'fault_injected');
  assert.equal(ex.res.body, 'fault_injected: route ns/r#0 injected a fault (HTTP 418)\n');
  assert.equal(ex.errorCode, 'fault_injected');
});

test('fault: probability 0 passes through; a gRPC abort answers trailers-only with its grpc status', () => {
  const inner = spy();
  fault(inner)(exchange({ decision: forwardDecision({ fault: { abort: { httpStatus: 500, probability: 0 } } }) }));
  assert.equal(inner.calls.length, 1);
  const g = exchange({ grpc: true, decision: forwardDecision({ fault: { abort: { grpcStatus: 8, probability: 1 } } }) });
  fault(inner)(g);
  assert.equal(g.res.statusCode, 200);
  assert.equal(g.res.headers['grpc-status'], '8');
  assert.equal(g.res.headers['x-trellis-error'], 'fault_injected');
});

test('fault: a delay holds the request, then continues', async () => {
  const inner = spy();
  const t0 = Date.now();
  fault(inner)(exchange({ decision: forwardDecision({ fault: { delay: { ms: 60, probability: 1 } } }) }));
  assert.equal(inner.calls.length, 0);
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(inner.calls.length, 1);
  assert.ok(Date.now() - t0 >= 55);
});

test('deadline: the smaller of route timeout and grpc-timeout wins, and answers upstream_timeout', async () => {
  const inner = spy();
  const ex = exchange({ grpc: true, headers: { 'grpc-timeout': '30m' }, decision: forwardDecision({ timeoutMs: 5000 }) });
  let aborted = false;
  ex.abortUpstream = () => (aborted = true);
  deadline(inner)(ex);
  assert.equal(inner.calls.length, 1);
  assert.equal(ex.deadlineSource, 'grpc-timeout 30ms');
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(aborted, true);
  assert.equal(ex.res.headers['x-trellis-error'], 'upstream_timeout');
  assert.equal(ex.res.headers['grpc-status'], '4');
  const r = exchange({ decision: forwardDecision({ timeoutMs: 0 }) });
  deadline(inner)(r);
  assert.equal(r.timer, undefined, 'timeout 0 means none');
});

test('route: no route table yet is no_route naming the listener; bad paths are bad_request', () => {
  const inner = spy();
  const ex = exchange();
  route(inner)(ex);
  assert.equal(ex.res.statusCode, 404);
  assert.match(ex.res.body, /^no_route: listener outbound\|default\/a: route configuration outbound\|default\/a not received/);
  const raw = emptyRaw();
  raw.routes.set('outbound|default/a', x.routeConfiguration('outbound|default/a', [{ name: 'b', domains: ['b'], routes: [{ name: 'ns/b#0', cluster: 'c' }] }]));
  const state = compileState(raw, 2);
  const bad = exchange({ state, path: '/a/%2F/b' });
  route(inner)(bad);
  assert.equal(bad.res.headers['x-trellis-error'], 'bad_request');
  const ok = exchange({ state, path: '/a/./b/../c?q=1' });
  route(inner)(ok);
  assert.equal(inner.calls.length, 1);
  assert.equal(ok.path, '/a/c');
  assert.equal(ok.query, 'q=1');
  assert.equal(ok.routeName, 'ns/b#0');
});

test('balance: unknown cluster and empty cluster name the route and cluster', () => {
  const inner = spy();
  const ex = exchange({ decision: forwardDecision({ cluster: 'nope' }) });
  balance(inner)(ex);
  assert.match(ex.res.body, /^no_healthy_upstream: route ns\/r#0: cluster nope is not known to this proxy/);
});

test('request header hygiene (table)', () => {
  const out = sanitizeRequestHeaders(
    {
      host: 'b',
      connection: 'keep-alive, x-hop',
      'x-hop': '1',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      'transfer-encoding': 'chunked',
      te: 'trailers, deflate',
      upgrade: 'websocket',
      'x-trellis-error': 'forged',
      'x-trellis-anything': 'n/a',
      'x-forwarded-client-cert': 'By=evil',
      ':authority': 'b',
      accept: '*/*',
    } as never,
    false,
  );
  // (Node lowercases header names, so only lowercase input exists.)
  assert.deepEqual(out, { te: 'trailers', accept: '*/*' });
  assert.equal(sanitizeRequestHeaders({ upgrade: 'websocket', connection: 'upgrade' }, true).upgrade, 'websocket');
  assert.deepEqual(sanitizeResponseHeaders({ ':status': '200', connection: 'close', 'keep-alive': 'x', 'content-type': 't' } as never), { 'content-type': 't' });
});

test('grpc-timeout parsing (table)', () => {
  const rows: [string | undefined, number | undefined][] = [
    ['1H', 3_600_000],
    ['2M', 120_000],
    ['3S', 3000],
    ['250m', 250],
    ['1500u', 2],
    ['5n', 1],
    ['10', undefined],
    ['123456789S', undefined],
    [undefined, undefined],
  ];
  for (const [v, want] of rows) assert.equal(parseGrpcTimeout(v), want, String(v));
});
