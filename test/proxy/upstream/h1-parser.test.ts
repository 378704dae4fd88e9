// The upstream HTTP/1.1 response parser: every framing, split at any byte boundary, and each malformed class refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_HEAD_BYTES, ResponseError, ResponseParser, type ResponseHeaders } from '../../../src/proxy/upstream/h1-parser.js';

interface Outcome {
  interim: number[];
  status?: number;
  reason?: string;
  headers?: ResponseHeaders;
  body: string;
  trailers?: ResponseHeaders;
  complete: boolean;
  keepAlive?: boolean;
  /** Bytes of the input not consumed (after the message). */
  rest: number;
}

/** Feeds `chunks` in order, then EOF when `eof`; returns what the parser reported. */
function run(method: string, chunks: Buffer[], eof = true): Outcome {
  const o: Outcome = { interim: [], body: '', complete: false, rest: 0 };
  const p = new ResponseParser({
    onInterim: (s) => o.interim.push(s),
    onHead: (s, r, h) => {
      o.status = s;
      o.reason = r;
      o.headers = { ...h };
    },
    onBody: (c) => (o.body += c.toString('latin1')),
    onComplete: (t) => {
      o.complete = true;
      o.trailers = t && { ...t };
    },
  });
  p.reset(method);
  for (let i = 0; i < chunks.length; i++) {
    const used = p.execute(chunks[i]);
    if (p.done) {
      o.rest = chunks[i].length - used + chunks.slice(i + 1).reduce((n, c) => n + c.length, 0);
      break;
    }
  }
  if (eof && !p.done) p.finish();
  if (o.status !== undefined) o.keepAlive = p.framing.keepAlive;
  return o;
}

function whole(s: string): Buffer[] {
  return [Buffer.from(s, 'latin1')];
}

function splitAt(s: string, cuts: number[]): Buffer[] {
  const b = Buffer.from(s, 'latin1');
  const points = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    out.push(b.subarray(last, p));
    last = p;
  }
  out.push(b.subarray(last));
  return out;
}

function bytewise(s: string): Buffer[] {
  const b = Buffer.from(s, 'latin1');
  return [...b].map((x) => Buffer.from([x]));
}

const FRAMINGS: { name: string; method?: string; raw: string; want: Partial<Outcome> }[] = [
  { name: 'content-length', raw: 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: 1\r\n\r\nhello', want: { status: 200, reason: 'OK', body: 'hello', keepAlive: true, headers: { 'content-length': '5', 'x-a': '1' } } },
  { name: 'content-length 0', raw: 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', want: { status: 200, body: '', keepAlive: true } },
  { name: 'repeated identical content-length', raw: 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 3, 3\r\n\r\nabc', want: { body: 'abc' } },
  { name: 'empty reason phrase', raw: 'HTTP/1.1 404 \r\ncontent-length: 1\r\n\r\nx', want: { status: 404, reason: '', body: 'x' } },
  { name: 'no reason phrase at all', raw: 'HTTP/1.1 500\r\ncontent-length: 1\r\n\r\nx', want: { status: 500, reason: '', body: 'x' } },
  { name: 'obs-text in a value and a reason', raw: 'HTTP/1.1 200 \xe9t\xe9\r\nx-v: caf\xe9\r\ncontent-length: 0\r\n\r\n', want: { reason: '\xe9t\xe9', headers: { 'x-v': 'caf\xe9', 'content-length': '0' } } },
  { name: 'OWS around the value is trimmed', raw: 'HTTP/1.1 200 OK\r\nx-a:   spaced \t\r\ncontent-length: 0\r\n\r\n', want: { headers: { 'x-a': 'spaced', 'content-length': '0' } } },
  { name: 'duplicate headers become a list', raw: 'HTTP/1.1 200 OK\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\ncontent-length: 0\r\n\r\n', want: { headers: { 'set-cookie': ['a=1', 'b=2'], 'content-length': '0' } } },
  { name: 'chunked', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n', want: { body: 'hello!', keepAlive: true, headers: {}, trailers: undefined } },
  { name: 'chunked, uppercase hex and leading zeros', raw: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n00A\r\n0123456789\r\n000\r\n\r\n', want: { body: '0123456789' } },
  {
    name: 'chunked with extensions and trailers',
    raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-sum\r\n\r\n3;name=val;q="a \\"b\\"";flag\r\nabc\r\n2 ; x = y\r\nde\r\n0;last\r\nx-sum: 5\r\nx-other: ok\r\n\r\n',
    want: { body: 'abcde', trailers: { 'x-sum': '5', 'x-other': 'ok' }, headers: {} },
  },
  { name: 'close-delimited', raw: 'HTTP/1.1 200 OK\r\nx: y\r\n\r\nuntil the end', want: { body: 'until the end', keepAlive: false, complete: true } },
  { name: 'HTTP/1.0 close-delimited', raw: 'HTTP/1.0 200 OK\r\n\r\nold', want: { body: 'old', keepAlive: false } },
  { name: 'HTTP/1.0 keep-alive with length', raw: 'HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok', want: { body: 'ok', keepAlive: true, headers: { 'content-length': '2' } } },
  { name: 'HTTP/1.0 with length, no keep-alive', raw: 'HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok', want: { body: 'ok', keepAlive: false } },
  { name: 'connection: close', raw: 'HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\ncontent-length: 2\r\n\r\nok', want: { body: 'ok', keepAlive: false, headers: { 'content-length': '2' } } },
  { name: 'HEAD ignores content-length', method: 'HEAD', raw: 'HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n', want: { body: '', keepAlive: true, headers: { 'content-length': '1000' } } },
  { name: 'HEAD ignores chunked', method: 'HEAD', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n', want: { body: '', keepAlive: true } },
  { name: '204 has no body', raw: 'HTTP/1.1 204 No Content\r\n\r\n', want: { status: 204, body: '', keepAlive: true } },
  { name: '304 has no body despite content-length', raw: 'HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\n\r\n', want: { status: 304, body: '' } },
  { name: '100 Continue then 200', raw: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok', want: { interim: [100], status: 200, body: 'ok' } },
  { name: '103 Early Hints with headers, 102, then 201', raw: 'HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n', want: { interim: [103, 102], status: 201, body: '' } },
  { name: 'hop-by-hop and Connection-named fields removed', raw: 'HTTP/1.1 200 OK\r\nconnection: x-private, keep-alive\r\nkeep-alive: timeout=5\r\nx-private: secret\r\nx-kept: 1\r\ncontent-length: 0\r\n\r\n', want: { headers: { 'x-kept': '1', 'content-length': '0' } } },
  { name: 'bytes after a content-length response are left over', raw: 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokGARBAGE', want: { body: 'ok', rest: 7 } },
  { name: 'bytes after a chunked response are left over', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n', want: { body: '', rest: 19 } },
];

for (const c of FRAMINGS) {
  test(`framing: ${c.name}`, () => {
    const o = run(c.method ?? 'GET', whole(c.raw));
    assert.equal(o.complete, true, 'message completes');
    for (const [k, v] of Object.entries(c.want)) assert.deepEqual(o[k as keyof Outcome], v, k);
  });
}

test('framing: every split of every case gives the same result (property; one byte at a time included)', () => {
  for (const c of FRAMINGS) {
    const ref = run(c.method ?? 'GET', whole(c.raw));
    assert.deepEqual(run(c.method ?? 'GET', bytewise(c.raw)), ref, `${c.name}: one byte at a time`);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 12 }), (cuts) => {
        assert.deepEqual(run(c.method ?? 'GET', splitAt(c.raw, cuts)), ref, c.name);
      }),
      { numRuns: 60 },
    );
  }
});

test('body slices are views into the read buffer, not copies', () => {
  const buf = Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello', 'latin1');
  const seen: Buffer[] = [];
  const p = new ResponseParser({ onInterim() {}, onHead() {}, onBody: (c) => seen.push(c), onComplete() {} });
  p.reset('GET');
  p.execute(buf);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].buffer, buf.buffer);
  assert.equal(seen[0].byteOffset, buf.byteOffset + buf.length - 5);
});

test('an unfinished message at EOF is not complete (the client reports a reset)', () => {
  for (const raw of ['HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhel', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel', 'HTTP/1.1 200 OK\r\ncontent-le']) {
    assert.equal(run('GET', whole(raw)).complete, false, raw);
  }
});

const big = 'x'.repeat(MAX_HEAD_BYTES);
const many = Array.from({ length: 101 }, (_, i) => `h${i}: v\r\n`).join('');

const MALFORMED: { name: string; raw: string; error: RegExp }[] = [
  { name: 'not HTTP', raw: 'SSH-2.0-OpenSSH\r\n\r\n', error: /invalid status line/ },
  { name: 'HTTP/2 version', raw: 'HTTP/2.0 200 OK\r\n\r\n', error: /invalid status line/ },
  { name: 'two-digit status', raw: 'HTTP/1.1 20 OK\r\n\r\n', error: /invalid status/ },
  { name: 'status out of range', raw: 'HTTP/1.1 999 Odd\r\n\r\n', error: /out of range/ },
  { name: 'status glued to reason', raw: 'HTTP/1.1 200OK\r\n\r\n', error: /not followed by a space/ },
  { name: 'control byte in reason', raw: 'HTTP/1.1 200 O\x01K\r\n\r\n', error: /reason phrase/ },
  { name: 'bare LF in the head', raw: 'HTTP/1.1 200 OK\r\nx: y\ncontent-length: 0\r\n\r\n', error: /invalid byte|bare LF/ },
  { name: 'bare LF status line', raw: 'HTTP/1.1 200 OK\nx: y\r\n\r\n', error: /status line/ },
  { name: 'bare CR in a value', raw: 'HTTP/1.1 200 OK\r\nx: a\rb\r\n\r\n', error: /invalid byte 0x0d/ },
  { name: 'NUL in a value', raw: 'HTTP/1.1 200 OK\r\nx: a\x00b\r\ncontent-length: 0\r\n\r\n', error: /invalid byte 0x00/ },
  { name: 'DEL in a value', raw: 'HTTP/1.1 200 OK\r\nx: a\x7fb\r\ncontent-length: 0\r\n\r\n', error: /invalid byte 0x7f/ },
  { name: 'obs-fold', raw: 'HTTP/1.1 200 OK\r\nx: a\r\n  folded\r\ncontent-length: 0\r\n\r\n', error: /obsolete line folding/ },
  { name: 'space before the colon', raw: 'HTTP/1.1 200 OK\r\ncontent-length : 0\r\n\r\n', error: /invalid header name/ },
  { name: 'no colon', raw: 'HTTP/1.1 200 OK\r\njunk\r\n\r\n', error: /invalid header name/ },
  { name: 'empty name', raw: 'HTTP/1.1 200 OK\r\n: v\r\n\r\n', error: /invalid header name/ },
  { name: 'non-token name', raw: 'HTTP/1.1 200 OK\r\nx(y): v\r\n\r\n', error: /invalid header name/ },
  { name: 'head too large', raw: `HTTP/1.1 200 OK\r\nx: ${big}\r\n\r\n`, error: /larger than/ },
  { name: 'head too large, never ended', raw: `HTTP/1.1 200 OK\r\nx: ${big}${big}`, error: /larger than/ },
  { name: 'too many headers', raw: `HTTP/1.1 200 OK\r\n${many}\r\n`, error: /more than 100 header/ },
  { name: 'both content-length and transfer-encoding', raw: 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n', error: /both transfer-encoding and content-length/ },
  { name: 'differing content-lengths', raw: 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd', error: /conflicting content-length/ },
  { name: 'differing content-lengths in one line', raw: 'HTTP/1.1 200 OK\r\ncontent-length: 3, 4\r\n\r\nabcd', error: /conflicting content-length/ },
  { name: 'negative content-length', raw: 'HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n', error: /not a number/ },
  { name: 'hex content-length', raw: 'HTTP/1.1 200 OK\r\ncontent-length: 0x10\r\n\r\n', error: /not a number/ },
  { name: 'huge content-length', raw: 'HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n', error: /not a number/ },
  { name: 'gzip transfer-coding', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n', error: /unsupported response transfer-encoding/ },
  { name: 'two transfer-encoding lines', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n', error: /unsupported response transfer-encoding/ },
  { name: 'transfer-encoding on HTTP/1.0', raw: 'HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n', error: /HTTP\/1.0 response has transfer-encoding/ },
  { name: 'unrequested 101', raw: 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n', error: /101/ },
  { name: 'endless interim responses', raw: 'HTTP/1.1 100 Continue\r\n\r\n'.repeat(40), error: /interim/ },
  { name: 'chunk size not hex', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n', error: /chunk size expected/ },
  { name: 'chunk size with 0x', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n', error: /after the chunk size/ },
  { name: 'chunk size with leading space', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n', error: /chunk size expected/ },
  { name: 'chunk size with sign', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n', error: /chunk size expected/ },
  { name: 'chunk size overflow', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10000000000000000\r\n', error: /hex digits/ },
  { name: 'chunk longer than its size', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n', error: /longer than its size|CRLF/ },
  { name: 'chunk size line ended by bare LF', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n', error: /after the chunk size/ },
  { name: 'chunk extension ended by bare LF', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2;a=b\nab\r\n0\r\n\r\n', error: /bare LF/ },
  { name: 'invalid chunk extension', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2;a=b c\r\nab\r\n0\r\n\r\n', error: /invalid chunk extension/ },
  { name: 'control byte in a chunk extension', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2;a=\x01\r\nab\r\n0\r\n\r\n', error: /invalid chunk extension/ },
  { name: 'chunk extension too long', raw: `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2;a=${'b'.repeat(5000)}\r\nab\r\n0\r\n\r\n`, error: /longer than 4096/ },
  { name: 'trailer with obs-fold', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nx: a\r\n b\r\n\r\n', error: /obsolete line folding/ },
  { name: 'trailer with NUL', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nx: a\x00\r\n\r\n', error: /invalid byte/ },
  { name: 'trailers too large', raw: `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nx: ${big}\r\n\r\n`, error: /trailers larger than/ },
  { name: 'chunk-size line with CR CR', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\r\n', error: /chunk-size line not ended by CRLF/ },
  { name: 'last chunk not ended by CRLF', raw: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\rX', error: /last chunk/ },
];

for (const c of MALFORMED) {
  test(`malformed: ${c.name}`, () => {
    assert.throws(() => run('GET', whole(c.raw), false), (e: unknown) => e instanceof ResponseError && c.error.test(e.message));
    // The same error when the bytes arrive one at a time (no state leaks across reads).
    if (c.raw.length < 2000) assert.throws(() => run('GET', bytewise(c.raw), false), (e: unknown) => e instanceof ResponseError && c.error.test(e.message));
  });
}
