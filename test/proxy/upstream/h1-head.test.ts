// The upstream request head: hop-by-hop removal (RFC 9110 7.6.1), framing recomputed, and refusal of any smuggling-prone head.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildRequestHead, HeadError, type HeadOptions, type OutHeaders } from '../../../src/proxy/upstream/h1-head.js';

function lines(head: string): string[] {
  assert.ok(head.endsWith('\r\n\r\n'));
  return head.slice(0, -4).split('\r\n');
}

const HOP: { name: string; headers: OutHeaders; opts?: Partial<HeadOptions>; want: string[] }[] = [
  { name: 'plain GET keeps end-to-end fields, host first', headers: { accept: '*/*', host: 'a.b', 'x-a': '1' }, want: ['GET / HTTP/1.1', 'host: a.b', 'accept: */*', 'x-a: 1'] },
  { name: 'connection and the fields it names are dropped', headers: { host: 'h', connection: 'x-foo, Keep-Alive', 'x-foo': 'secret', 'keep-alive': 'timeout=5', 'x-bar': 'kept' }, want: ['GET / HTTP/1.1', 'host: h', 'x-bar: kept'] },
  { name: 'connection as a list of lines', headers: { host: 'h', connection: ['x-one', 'x-two'], 'x-one': '1', 'x-two': '2', 'x-three': '3' }, want: ['GET / HTTP/1.1', 'host: h', 'x-three: 3'] },
  { name: 'connection cannot remove host or content-length', headers: { host: 'h', connection: 'host, content-length', 'content-length': '2' }, opts: { body: 2 }, want: ['GET / HTTP/1.1', 'host: h', 'content-length: 2'] },
  { name: 'proxy-connection, proxy-authorization, trailer, http2-settings dropped', headers: { host: 'h', 'proxy-connection': 'keep-alive', 'proxy-authorization': 'Basic x', trailer: 'x-t', 'http2-settings': 'AAA' }, want: ['GET / HTTP/1.1', 'host: h'] },
  { name: 'te: trailers survives alone', headers: { host: 'h', te: 'gzip, trailers' }, want: ['GET / HTTP/1.1', 'host: h', 'te: trailers'] },
  { name: 'te without trailers dropped', headers: { host: 'h', te: 'gzip' }, want: ['GET / HTTP/1.1', 'host: h'] },
  { name: 'upgrade dropped unless asked', headers: { host: 'h', upgrade: 'websocket', connection: 'upgrade' }, want: ['GET / HTTP/1.1', 'host: h'] },
  { name: 'upgrade kept when asked', headers: { host: 'h', upgrade: 'websocket', connection: 'upgrade' }, opts: { upgrade: true }, want: ['GET / HTTP/1.1', 'host: h', 'upgrade: websocket', 'connection: upgrade'] },
  { name: 'incoming transfer-encoding replaced: stream without length is chunked', headers: { host: 'h', 'transfer-encoding': 'chunked' }, opts: { body: 'stream' }, want: ['GET / HTTP/1.1', 'host: h', 'transfer-encoding: chunked'] },
  { name: 'stream with content-length streams as-is', headers: { host: 'h', 'content-length': '10' }, opts: { body: 'stream' }, want: ['GET / HTTP/1.1', 'host: h', 'content-length: 10'] },
  { name: 'buffer body gets its length', headers: { host: 'h' }, opts: { body: 3 }, want: ['GET / HTTP/1.1', 'host: h', 'content-length: 3'] },
  { name: 'no body, no framing fields', headers: { host: 'h' }, opts: { body: 'none' }, want: ['GET / HTTP/1.1', 'host: h'] },
  { name: 'no body with content-length 0 keeps it', headers: { host: 'h', 'content-length': 0 }, want: ['GET / HTTP/1.1', 'host: h', 'content-length: 0'] },
  { name: 'close asked', headers: { host: 'h', connection: 'keep-alive' }, opts: { close: true }, want: ['GET / HTTP/1.1', 'host: h', 'connection: close'] },
  { name: 'pseudo headers and undefined skipped; arrays repeat', headers: { ':path': '/x', host: 'h', 'x-u': undefined, cookie: ['a=1', 'b=2'] }, want: ['GET / HTTP/1.1', 'host: h', 'cookie: a=1', 'cookie: b=2'] },
  { name: 'obs-text values are latin1 bytes', headers: { host: 'h', 'x-v': 'caf\xe9' }, want: ['GET / HTTP/1.1', 'host: h', 'x-v: caf\xe9'] },
];

for (const c of HOP) {
  test(`head: ${c.name}`, () => {
    const r = buildRequestHead('GET', '/', c.headers, { body: 'none', ...c.opts });
    assert.deepEqual(lines(r.head), c.want);
  });
}

test('head: framing and close are reported', () => {
  assert.deepEqual(
    (({ framing, length, close }) => ({ framing, length, close }))(buildRequestHead('POST', '/u?q=1', { host: 'h', 'content-length': '7' }, { body: 'stream', close: true })),
    { framing: 'length', length: 7, close: true },
  );
  assert.equal(buildRequestHead('POST', '/', { host: 'h' }, { body: 'stream' }).framing, 'chunked');
  assert.equal(buildRequestHead('GET', '/', { host: 'h' }, { body: 'none' }).framing, 'none');
});

const REFUSED: { name: string; method?: string; target?: string; headers: OutHeaders; opts?: Partial<HeadOptions>; error: RegExp }[] = [
  { name: 'CR LF in a value', headers: { host: 'h', 'x-a': 'a\r\nx-injected: 1' }, error: /control character/ },
  { name: 'LF in a value', headers: { host: 'h', 'x-a': 'a\nb' }, error: /control character/ },
  { name: 'NUL in a value', headers: { host: 'h', 'x-a': 'a\0b' }, error: /control character/ },
  { name: 'CR LF in one value of a list', headers: { host: 'h', 'x-a': ['ok', 'b\r\n'] }, error: /control character/ },
  { name: 'non-latin1 value', headers: { host: 'h', 'x-a': 'snow \u2603' }, error: /non-latin1/ },
  { name: 'CR LF in host', headers: { host: 'h\r\nx: y' }, error: /host header has a control/ },
  { name: 'CR LF in a name', headers: { host: 'h', 'x-a\r\nx-b': 'v' }, error: /not a valid token/ },
  { name: 'space in a name', headers: { host: 'h', 'x a': 'v' }, error: /not a valid token/ },
  { name: 'colon in a name', headers: { host: 'h', 'x:a': 'v' }, error: /not a valid token/ },
  { name: 'empty name', headers: { host: 'h', '': 'v' }, error: /not a valid token/ },
  { name: 'no host', headers: { accept: '*/*' }, error: /no host/ },
  { name: 'two hosts', headers: { host: ['a', 'b'] }, error: /more than one host/ },
  { name: 'host in two spellings', headers: { host: 'a', Host: 'b' }, error: /more than one host/ },
  { name: 'conflicting content-lengths', headers: { host: 'h', 'content-length': ['1', '2'] }, opts: { body: 'stream' }, error: /conflicting content-length/ },
  { name: 'content-length not a number', headers: { host: 'h', 'content-length': '1e3' }, opts: { body: 'stream' }, error: /not a number/ },
  { name: 'content-length disagrees with the buffer', headers: { host: 'h', 'content-length': '5' }, opts: { body: 3 }, error: /but the body has 3 bytes/ },
  { name: 'content-length without a body', headers: { host: 'h', 'content-length': '5' }, error: /no body/ },
  { name: 'method with a space', method: 'GET /x', headers: { host: 'h' }, error: /method/ },
  { name: 'CONNECT', method: 'CONNECT', headers: { host: 'h' }, error: /CONNECT/ },
  { name: 'target with a space', target: '/a b', headers: { host: 'h' }, error: /request target/ },
  { name: 'target with CR LF', target: '/a\r\nx: y', headers: { host: 'h' }, error: /request target/ },
  { name: 'target not origin-form', target: 'a/b', headers: { host: 'h' }, error: /request target/ },
  { name: 'empty target', target: '', headers: { host: 'h' }, error: /request target/ },
  { name: 'CR LF in upgrade when kept', headers: { host: 'h', upgrade: 'ws\r\nx: 1' }, opts: { upgrade: true }, error: /upgrade header/ },
];

for (const c of REFUSED) {
  test(`head refused: ${c.name}`, () => {
    assert.throws(() => buildRequestHead(c.method ?? 'GET', c.target ?? '/', c.headers, { body: 'none', ...c.opts }), (e: unknown) => e instanceof HeadError && c.error.test(e.message));
  });
}
