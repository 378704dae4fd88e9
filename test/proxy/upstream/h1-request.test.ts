// Request-head parsing for the metered inbound, from a table; plus the response parser's upgrade and body-only modes it relies on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRequestHead, RequestHeadError } from '../../../src/proxy/upstream/h1-request.js';
import { ResponseParser } from '../../../src/proxy/upstream/h1-parser.js';

/** Parses a whole head given as text ending in the empty line. */
function parse(head: string) {
  const b = Buffer.from(head, 'latin1');
  return parseRequestHead(b, 0, b.indexOf('\r\n\r\n') + 2);
}

test('framing, upgrade and close are read from the head', () => {
  const rows: [string, { framing: string; length: number; upgrade: boolean; close: boolean; method: string }][] = [
    ['GET / HTTP/1.1\r\nHost: a\r\n\r\n', { framing: 'none', length: 0, upgrade: false, close: false, method: 'GET' }],
    ['POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n', { framing: 'length', length: 12, upgrade: false, close: false, method: 'POST' }],
    ['POST /p HTTP/1.1\r\nHost: a\r\ncontent-length: 0\r\n\r\n', { framing: 'none', length: 0, upgrade: false, close: false, method: 'POST' }],
    ['PUT /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n', { framing: 'chunked', length: 0, upgrade: false, close: false, method: 'PUT' }],
    ['GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n', { framing: 'none', length: 0, upgrade: true, close: false, method: 'GET' }],
    ['GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n', { framing: 'none', length: 0, upgrade: false, close: false, method: 'GET' }],
    ['GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', { framing: 'none', length: 0, upgrade: false, close: true, method: 'GET' }],
    ['GET / HTTP/1.0\r\n\r\n', { framing: 'none', length: 0, upgrade: false, close: true, method: 'GET' }],
    ['GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', { framing: 'none', length: 0, upgrade: false, close: false, method: 'GET' }],
    ['OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n', { framing: 'none', length: 0, upgrade: false, close: false, method: 'OPTIONS' }],
    ['GET http://b.default/x HTTP/1.1\r\nHost: b\r\n\r\n', { framing: 'none', length: 0, upgrade: false, close: false, method: 'GET' }],
  ];
  for (const [head, want] of rows) {
    const h = parse(head);
    assert.deepEqual({ framing: h.framing, length: h.length, upgrade: h.upgrade, close: h.close, method: h.method }, want, head);
  }
});

test('heads two parties could frame differently, and malformed ones, are refused with a status and a reason', () => {
  const rows: [string, number, RegExp][] = [
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', 400, /both transfer-encoding and content-length/],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n', 400, /more than one content-length/],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n', 400, /is not a number/],
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', 400, /is not a number/],
    ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501, /only a single "chunked"/],
    ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', 501, /only a single "chunked"/],
    ['POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400, /HTTP\/1\.0 request has transfer-encoding/],
    ['GET / HTTP/1.1\r\n\r\n', 400, /no Host header/],
    ['GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400, /more than one Host/],
    ['GET / HTTP/1.1\r\nHost: a\r\n x: folded\r\n\r\n', 400, /obsolete line folding/],
    ['GET / HTTP/1.1\r\nHost: a\r\nBad Name: v\r\n\r\n', 400, /invalid header name/],
    ['GET / HTTP/1.1\r\nHost: a\r\nx: a\x00b\r\n\r\n', 400, /invalid byte 0x00/],
    ['GET  / HTTP/1.1\r\nHost: a\r\n\r\n', 400, /invalid request line/],
    ['GET / HTTP/2.0\r\nHost: a\r\n\r\n', 400, /unsupported protocol version/],
    ['GET /a b HTTP/1.1\r\nHost: a\r\n\r\n', 400, /invalid request line/],
    ['CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n', 400, /CONNECT tunnels are not supported/],
    ['GET x HTTP/1.1\r\nHost: a\r\n\r\n', 400, /not origin-form/],
    [`GET / HTTP/1.1\r\nHost: a\r\n${'x: 1\r\n'.repeat(101)}\r\n`, 431, /more than 100 header fields/],
  ];
  for (const [head, status, why] of rows) {
    assert.throws(
      () => parse(head),
      (e: unknown) => e instanceof RequestHeadError && e.status === status && why.test(e.message),
      JSON.stringify(head.slice(0, 80)),
    );
  }
});

test('response parser: 101 ends the response only when the request asked to upgrade; the tunnel bytes are left unconsumed', () => {
  const events: string[] = [];
  const p = new ResponseParser({ onInterim: () => events.push('interim'), onHead: (s) => events.push(`head ${s}`), onBody: () => events.push('body'), onComplete: () => events.push('complete') });
  const bytes = Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nTUNNEL', 'latin1');
  p.reset('GET', true);
  const used = p.execute(bytes);
  assert.equal(bytes.length - used, 'TUNNEL'.length);
  assert.equal(p.upgraded, true);
  assert.equal(p.done, true);
  assert.deepEqual(events, ['head 101', 'complete']);
  p.reset('GET');
  assert.throws(() => p.execute(bytes), /101 Switching Protocols to a request that did not ask to upgrade/);
});

test('response parser in body-only mode finds the end of a request body, chunked or by length', () => {
  let body = '';
  const p = new ResponseParser({ onInterim() {}, onHead() {}, onBody: (c) => (body += c.toString('latin1')), onComplete() {} });
  p.beginBody('chunked', 0);
  const chunked = Buffer.from('3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\nNEXT', 'latin1');
  assert.equal(p.execute(chunked), chunked.length - 4);
  assert.equal(p.done, true);
  assert.equal(body, 'abcde');
  body = '';
  p.beginBody('length', 5);
  assert.equal(p.execute(Buffer.from('hel')), 3);
  assert.equal(p.done, false);
  assert.equal(p.execute(Buffer.from('loGET')), 2);
  assert.equal(p.done, true);
  assert.equal(body, 'hello');
});
