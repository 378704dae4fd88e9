// The HTTP/1.1 upstream client against real loopback sockets: framings, typed errors, keep-alive reuse rules, bodies, mTLS.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { H1Pool, type H1PoolOptions } from '../../../src/proxy/upstream/h1-pool.js';
import { h1Request, H1Error, type H1Request, type ResponseHeaders } from '../../../src/proxy/upstream/h1-client.js';
import { openUpstream } from '../../../src/proxy/upstream/connect.js';
import { StaticCertificateSource, WorkloadTls } from '../../../src/proxy/tls/identity.js';
import type { ClusterConfig } from '../../../src/proxy/config/types.js';
import type { EndpointInfo } from '../../../src/proxy/policy-api.js';
import { createTestCa } from '../helpers/ca.js';

/** One request as the raw upstream saw it. */
interface SeenRequest {
  head: string;
  body: Buffer;
  conn: number;
}

type Responder = (r: SeenRequest, socket: net.Socket) => void;

/**
 * A raw HTTP/1.1 upstream: parses request heads and bodies (content-length or chunked) and lets each
 * test answer with exact bytes. Counts connections so reuse can be asserted.
 */
function rawUpstream(respond: Responder, wrap?: (s: net.Socket) => net.Socket): { server: net.Server; seen: SeenRequest[]; conns: net.Socket[]; listen(srv?: net.Server): Promise<number> } {
  const seen: SeenRequest[] = [];
  const conns: net.Socket[] = [];
  const handle = (socket: net.Socket) => {
    const id = conns.push(socket);
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const e = buf.indexOf('\r\n\r\n');
        if (e < 0) return;
        const head = buf.subarray(0, e).toString('latin1');
        let rest = buf.subarray(e + 4);
        const cl = /\r\ncontent-length: (\d+)/i.exec(head);
        let body: Buffer;
        if (cl) {
          const n = Number(cl[1]);
          if (rest.length < n) return;
          body = rest.subarray(0, n);
          rest = rest.subarray(n);
        } else if (/\r\ntransfer-encoding: chunked/i.test(head)) {
          const parts: Buffer[] = [];
          let p = 0;
          for (;;) {
            const le = rest.indexOf('\r\n', p);
            if (le < 0) return;
            const size = parseInt(rest.subarray(p, le).toString('latin1'), 16);
            if (rest.length < le + 2 + size + 2) return;
            if (size === 0) {
              p = le + 4;
              break;
            }
            parts.push(rest.subarray(le + 2, le + 2 + size));
            p = le + 2 + size + 2;
          }
          body = Buffer.concat(parts);
          rest = rest.subarray(p);
        } else body = Buffer.alloc(0);
        buf = rest;
        const r = { head, body, conn: id };
        seen.push(r);
        respond(r, socket);
      }
    });
  };
  const server = wrap ? (undefined as unknown as net.Server) : net.createServer(handle);
  return {
    server,
    seen,
    conns,
    async listen(srv?: net.Server) {
      const s = srv ?? server;
      if (srv) srv.on('secureConnection', handle);
      s.listen(0, '127.0.0.1');
      await once(s, 'listening');
      servers.push(s);
      return (s.address() as net.AddressInfo).port;
    },
  };
}

const servers: net.Server[] = [];
const pools: H1Pool[] = [];
after(() => {
  for (const p of pools) p.retire();
  for (const s of servers) s.close();
});

function poolFor(port: number, o: Partial<H1PoolOptions> = {}): H1Pool {
  const p = new H1Pool({ connect: () => net.connect(port, '127.0.0.1'), readyEvent: 'connect', ...o });
  pools.push(p);
  return p;
}

interface Got {
  status: number;
  headers: ResponseHeaders;
  body: string;
  trailers?: ResponseHeaders;
  interim: number[];
  reused: boolean;
}

/** Runs one request to completion; rejects with the H1Error. */
function send(pool: H1Pool, req: Partial<H1Request> = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let headers: ResponseHeaders = {};
    const parts: Buffer[] = [];
    const interim: number[] = [];
    const x = h1Request(pool, { method: 'GET', path: '/', headers: { host: 'up' }, ...req }, {
      onInterim: (s) => interim.push(s),
      onResponse: (s, h) => {
        status = s;
        headers = h;
      },
      onData: (c) => void parts.push(Buffer.from(c)),
      onEnd: (t) => resolve({ status, headers: { ...headers }, body: Buffer.concat(parts).toString('latin1'), trailers: t && { ...t }, interim, reused: x.reusedSocket }),
      onError: reject,
    });
  });
}

function fails(p: Promise<unknown>, check: (e: H1Error) => void): Promise<void> {
  return p.then(
    () => assert.fail('expected an error'),
    (e: unknown) => {
      assert.ok(e instanceof H1Error, String(e));
      check(e);
    },
  );
}

/** Resolves when the pool's connection count reaches n (no sleeps: polled on socket events' turns). */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

const FRAMED: { name: string; method?: string; reply: string; status: number; body: string; trailers?: ResponseHeaders; interim?: number[]; reusable: boolean }[] = [
  { name: 'content-length', reply: 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello', status: 200, body: 'hello', reusable: true },
  { name: 'chunked with extensions and trailers', reply: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n2\r\nde\r\n0\r\nx-t: 1\r\n\r\n', status: 200, body: 'abcde', trailers: { 'x-t': '1' }, reusable: true },
  { name: 'close-delimited', reply: 'HTTP/1.1 200 OK\r\n\r\nto the end', status: 200, body: 'to the end', reusable: false },
  { name: 'HEAD', method: 'HEAD', reply: 'HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n', status: 200, body: '', reusable: true },
  { name: '204', reply: 'HTTP/1.1 204 No Content\r\n\r\n', status: 204, body: '', reusable: true },
  { name: '304', reply: 'HTTP/1.1 304 Not Modified\r\netag: "x"\r\n\r\n', status: 304, body: '', reusable: true },
  { name: '100 then 200', reply: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok', status: 200, body: 'ok', interim: [100], reusable: true },
  { name: 'connection: close', reply: 'HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok', status: 200, body: 'ok', reusable: false },
  { name: 'pipelined garbage after the response', reply: 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n', status: 200, body: 'ok', reusable: false },
];

for (const c of FRAMED) {
  test(`response ${c.name}: delivered, and the connection reused only when clean`, async () => {
    const up = rawUpstream((r, s) => {
      s.write(c.reply);
      if (!/\r\ncontent-length|\r\ntransfer-encoding|^HEAD|^HTTP\/1.1 (204|304)/i.test(c.reply) || c.name === 'close-delimited') s.end();
    });
    const pool = poolFor(await up.listen());
    const got = await send(pool, { method: c.method ?? 'GET' });
    assert.equal(got.status, c.status);
    assert.equal(got.body, c.body);
    assert.deepEqual(got.trailers, c.trailers);
    assert.deepEqual(got.interim, c.interim ?? []);
    assert.equal(got.reused, false);
    assert.equal(pool.idleCount, c.reusable ? 1 : 0, 'idle connections after the response');
    if (!c.reusable) {
      await until(() => pool.open === 0, 'the connection to close');
      return;
    }
    // The second request goes out on the same connection.
    const again = await send(pool, { method: c.method ?? 'GET' });
    assert.equal(again.reused, true);
    assert.equal(again.body, c.body);
    assert.equal(up.conns.length, 1);
  });
}

const BAD: { name: string; reply: string; error: RegExp }[] = [
  { name: 'garbage status line', reply: 'NOT HTTP\r\n\r\n', error: /invalid status line/ },
  { name: 'obs-fold', reply: 'HTTP/1.1 200 OK\r\nx: a\r\n b\r\n\r\n', error: /folding/ },
  { name: 'NUL in a value', reply: 'HTTP/1.1 200 OK\r\nx: \0\r\n\r\n', error: /invalid byte/ },
  { name: 'CL and TE', reply: 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n', error: /both/ },
  { name: 'differing content-lengths', reply: 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n', error: /conflicting/ },
  { name: 'bad chunk size', reply: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nxyz\r\n', error: /chunk size/ },
  { name: 'too many headers', reply: `HTTP/1.1 200 OK\r\n${'a: b\r\n'.repeat(101)}\r\n`, error: /more than 100/ },
  { name: 'head too large', reply: `HTTP/1.1 200 OK\r\nx: ${'y'.repeat(61 * 1024)}\r\n\r\n`, error: /larger than/ },
];

for (const c of BAD) {
  test(`bad response (${c.name}) -> protocol error (upstream_reset), connection closed`, async () => {
    const up = rawUpstream((_r, s) => s.write(c.reply));
    const pool = poolFor(await up.listen());
    await fails(send(pool), (e) => {
      assert.equal(e.kind, 'protocol');
      assert.equal(e.trellisCode, 'upstream_reset');
      assert.match(e.message, c.error);
      assert.equal(e.retryable, false);
    });
    await until(() => pool.open === 0, 'the connection to close');
    assert.equal(pool.idleCount, 0);
  });
}

test('connect failure -> connect error (upstream_connect_failure)', async () => {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  s.close();
  await once(s, 'close');
  const pool = poolFor(port);
  await fails(send(pool), (e) => {
    assert.equal(e.kind, 'connect');
    assert.equal(e.trellisCode, 'upstream_connect_failure');
  });
  assert.equal(pool.open, 0);
});

test('a connector failing with trellisCode overflow keeps that code', async () => {
  const pool = new H1Pool({
    connect: () => {
      const s = new net.Socket();
      const err = Object.assign(new Error('circuit breaker max_connections reached'), { trellisCode: 'overflow' });
      process.nextTick(() => s.destroy(err));
      return s;
    },
  });
  await fails(send(pool), (e) => {
    assert.equal(e.kind, 'connect');
    assert.equal(e.trellisCode, 'overflow');
  });
});

test('reset before any response on a fresh connection: reset, not retryable', async () => {
  const up = rawUpstream((_r, s) => s.destroy());
  const pool = poolFor(await up.listen());
  await fails(send(pool), (e) => {
    assert.equal(e.kind, 'reset');
    assert.equal(e.trellisCode, 'upstream_reset');
    assert.equal(e.responseStarted, false);
    assert.equal(e.retryable, false);
  });
});

test('keep-alive race: a reused connection that dies before any response byte is retryable', async () => {
  const up = rawUpstream((r, s) => {
    if (up.seen.length === 1) s.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na');
    else s.destroy();
  });
  const pool = poolFor(await up.listen());
  await send(pool);
  await fails(send(pool), (e) => {
    assert.equal(e.kind, 'reset');
    assert.equal(e.reusedSocket, true);
    assert.equal(e.retryable, true);
  });
});

test('reset mid-response: reset, responseStarted, not retryable', async () => {
  const up = rawUpstream((_r, s) => {
    s.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
    setImmediate(() => s.destroy());
  });
  const pool = poolFor(await up.listen());
  let head = false;
  await fails(
    new Promise((resolve, reject) => {
      h1Request(pool, { method: 'GET', path: '/', headers: { host: 'h' } }, { onResponse: () => (head = true), onData: () => {}, onEnd: resolve, onError: reject });
    }),
    (e) => {
      assert.equal(e.kind, 'reset');
      assert.equal(e.responseStarted, true);
      assert.equal(e.retryable, false);
      assert.match(e.message, /mid-response/);
    },
  );
  assert.equal(head, true);
});

test('no response head in time -> timeout (upstream_timeout), connection destroyed', async () => {
  const up = rawUpstream(() => {});
  const pool = poolFor(await up.listen());
  await fails(send(pool, { headTimeoutMs: 50 }), (e) => {
    assert.equal(e.kind, 'timeout');
    assert.equal(e.trellisCode, 'upstream_timeout');
  });
  await until(() => pool.open === 0, 'the connection to close');
});

test('an idle connection the upstream closes is dropped; the next request opens a new one', async () => {
  const up = rawUpstream((_r, s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na'));
  const pool = poolFor(await up.listen());
  await send(pool);
  assert.equal(pool.idleCount, 1);
  up.conns[0].end();
  await until(() => pool.idleCount === 0 && pool.open === 0, 'the idle connection to be dropped');
  const got = await send(pool);
  assert.equal(got.reused, false);
  assert.equal(up.conns.length, 2);
});

test('bytes from the upstream on an idle connection: dropped', async () => {
  const up = rawUpstream((_r, s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na'));
  const pool = poolFor(await up.listen());
  await send(pool);
  up.conns[0].write('HTTP/1.1 200 OK\r\n\r\n');
  await until(() => pool.open === 0, 'the confused connection to close');
});

test('request connection: close -> the upstream is told and the connection is not reused', async () => {
  const up = rawUpstream((_r, s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na'));
  const pool = poolFor(await up.listen());
  await send(pool, { close: true });
  assert.match(up.seen[0].head, /\r\nconnection: close$/);
  assert.equal(pool.idleCount, 0);
});

test('after an error the connection is not reused', async () => {
  const up = rawUpstream((r, s) => s.write(up.seen.length === 1 ? 'HTTP/1.1 200 OK\r\nx: \x01\r\n\r\n' : 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na'));
  const pool = poolFor(await up.listen());
  await fails(send(pool), (e) => assert.equal(e.kind, 'protocol'));
  const got = await send(pool);
  assert.equal(got.reused, false);
  assert.equal(up.conns.length, 2);
});

test('abort mid-response destroys the connection and calls nothing more', async () => {
  const up = rawUpstream((_r, s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc'));
  const pool = poolFor(await up.listen());
  const calls: string[] = [];
  await new Promise<void>((resolve) => {
    const x = h1Request(pool, { method: 'GET', path: '/', headers: { host: 'h' } }, {
      onResponse: () => calls.push('head'),
      onData: () => {
        calls.push('data');
        x.abort();
        resolve();
      },
      onEnd: () => calls.push('end'),
      onError: () => calls.push('error'),
    });
  });
  up.conns[0].write('more bytes');
  await until(() => pool.open === 0, 'the aborted connection to close');
  assert.deepEqual(calls, ['head', 'data']);
  assert.equal(pool.idleCount, 0);
});

test('abort while waiting for a connection: the request is never sent', async () => {
  const up = rawUpstream((_r, s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na'));
  const pool = poolFor(await up.listen(), { maxSockets: 1 });
  const first = send(pool);
  const x = h1Request(pool, { method: 'GET', path: '/second', headers: { host: 'h' } }, { onResponse() {}, onData() {}, onEnd: () => assert.fail('aborted'), onError: () => assert.fail('aborted') });
  assert.equal(pool.pending, 1);
  x.abort();
  await first;
  assert.equal(up.seen.length, 1);
  assert.equal(pool.idleCount, 1);
});

test('past maxSockets requests queue and reuse the connection in turn', async () => {
  const up = rawUpstream((r, s) => s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${r.head.split(' ')[1].length}\r\n\r\n${r.head.split(' ')[1]}`));
  const pool = poolFor(await up.listen(), { maxSockets: 1 });
  const ps = [send(pool, { path: '/a' }), send(pool, { path: '/bb' }), send(pool, { path: '/ccc' })];
  assert.equal(pool.wouldQueue(), true);
  const got = await Promise.all(ps);
  assert.deepEqual(got.map((g) => g.body), ['/a', '/bb', '/ccc']);
  assert.equal(up.conns.length, 1);
});

test('onSocket tells when a request got its connection (queued ones only after the connection is free)', async () => {
  const up = rawUpstream((_r, s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na'));
  const pool = poolFor(await up.listen(), { maxSockets: 1 });
  const events: string[] = [];
  const one = (name: string) =>
    new Promise<void>((resolve, reject) => {
      h1Request(pool, { method: 'GET', path: '/', headers: { host: 'h' } }, {
        onSocket: (reused) => events.push(`${name} socket${reused ? ' (reused)' : ''}`),
        onResponse() {},
        onData() {},
        onEnd: () => {
          events.push(`${name} end`);
          resolve();
        },
        onError: reject,
      });
    });
  await Promise.all([one('a'), one('b')]);
  // The connection is handed on before a's onEnd runs (released first, so a request started from onEnd could reuse it).
  assert.deepEqual(events, ['a socket', 'b socket (reused)', 'a end', 'b end']);
});

test('a retired pool fails new requests on a later tick with a connect error', async () => {
  const pool = poolFor(1);
  pool.retire();
  let x: ReturnType<typeof h1Request> | undefined;
  const err = await new Promise<H1Error>((resolve) => {
    x = h1Request(pool, { method: 'GET', path: '/', headers: { host: 'h' } }, {
      onResponse() {},
      onData() {},
      onEnd() {},
      onError: (e) => {
        assert.ok(x !== undefined, 'onError ran after h1Request returned');
        resolve(e);
      },
    });
  });
  assert.equal(err.kind, 'connect');
  assert.match(err.message, /pool closed/);
});

test('maxRequestsPerSocket retires a connection', async () => {
  const up = rawUpstream((_r, s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na'));
  const pool = poolFor(await up.listen(), { maxRequestsPerSocket: 2 });
  await send(pool);
  await send(pool);
  await send(pool);
  assert.equal(up.conns.length, 2);
});

test('idle connections close after idleMs', async () => {
  const up = rawUpstream((_r, s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na'));
  const pool = poolFor(await up.listen(), { idleMs: 80 });
  await send(pool);
  assert.equal(pool.idleCount, 1);
  await once(up.conns[0], 'close');
  assert.equal(pool.idleCount, 0);
});

test('request bodies: buffer, content-length stream, chunked stream, prefix chunks', async () => {
  const up = rawUpstream((r, s) => s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${r.body.length}\r\n\r\n${r.body.toString('latin1')}`));
  const pool = poolFor(await up.listen());
  const small = await send(pool, { method: 'POST', body: Buffer.from('small body') });
  assert.equal(small.body, 'small body');
  assert.match(up.seen[0].head, /\r\ncontent-length: 10$/);
  const big = Buffer.alloc(100_000, 'z');
  assert.equal((await send(pool, { method: 'POST', body: big })).body.length, 100_000);
  const cl = new PassThrough();
  const p1 = send(pool, { method: 'PUT', headers: { host: 'h', 'content-length': '6' }, body: cl });
  cl.write('abc');
  setImmediate(() => cl.end('def'));
  assert.equal((await p1).body, 'abcdef');
  assert.match(up.seen[2].head, /\r\ncontent-length: 6$/);
  const ch = Readable.from([Buffer.from('one,'), Buffer.alloc(0), Buffer.from('two')]);
  const p2 = send(pool, { method: 'POST', headers: { host: 'h', 'transfer-encoding': 'chunked' }, body: ch, bodyPrefix: [Buffer.from('zero,')] });
  assert.equal((await p2).body, 'zero,one,two');
  assert.match(up.seen[3].head, /\r\ntransfer-encoding: chunked$/);
  assert.equal(up.conns.length, 1, 'all on one keep-alive connection');
});

test('a body longer than its content-length is refused and the connection dropped', async () => {
  const up = rawUpstream(() => {});
  const pool = poolFor(await up.listen());
  const src = new PassThrough();
  const p = send(pool, { method: 'POST', headers: { host: 'h', 'content-length': '2' }, body: src });
  src.end('abc');
  await fails(p, (e) => {
    assert.equal(e.kind, 'request_body');
    assert.match(e.message, /longer than its content-length 2/);
  });
  await until(() => pool.open === 0, 'the connection to close');
});

test('a body that ends short of its content-length is refused', async () => {
  const up = rawUpstream(() => {});
  const pool = poolFor(await up.listen());
  const src = new PassThrough();
  const p = send(pool, { method: 'POST', headers: { host: 'h', 'content-length': '5' }, body: src });
  src.end('ab');
  await fails(p, (e) => assert.match(e.message, /ended after 2 of 5 bytes/));
});

test('a response that completes before the request body was sent: delivered, connection not reused', async () => {
  const up = rawUpstream(() => {});
  const pool = poolFor(await up.listen());
  const src = new PassThrough();
  const p = send(pool, { method: 'POST', headers: { host: 'h', 'content-length': '100' }, body: src });
  src.write('partial');
  await until(() => up.conns.length === 1, 'the connection');
  up.conns[0].write('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n');
  assert.equal((await p).status, 413);
  assert.equal(pool.idleCount, 0);
  await until(() => pool.open === 0, 'the connection to close');
});

test('discard() drops the rest of the body and keeps the connection', async () => {
  const up = rawUpstream((_r, s) => s.write('HTTP/1.1 503 Unavailable\r\ncontent-length: 5\r\n\r\nbusy!'));
  const pool = poolFor(await up.listen());
  const data: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    const x = h1Request(pool, { method: 'GET', path: '/', headers: { host: 'h' } }, { onResponse: () => x.discard(), onData: (c) => void data.push(c), onEnd: () => resolve(), onError: reject });
  });
  assert.equal(data.length, 0);
  assert.equal(pool.idleCount, 1);
});

test('backpressure: onData returning false pauses until resume()', async () => {
  const body = 'x'.repeat(200_000);
  const up = rawUpstream((_r, s) => s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`));
  const pool = poolFor(await up.listen());
  let got = 0;
  let pauses = 0;
  await new Promise<void>((resolve, reject) => {
    const x = h1Request(pool, { method: 'GET', path: '/', headers: { host: 'h' } }, {
      onResponse() {},
      onData: (c) => {
        got += c.length;
        pauses++;
        setImmediate(() => x.resume());
        return false;
      },
      onEnd: () => resolve(),
      onError: reject,
    });
  });
  assert.equal(got, body.length);
  assert.ok(pauses > 0);
  assert.equal(pool.idleCount, 1);
});

test('an invalid head is refused before anything is sent (no connection opened)', async () => {
  const up = rawUpstream(() => {});
  const pool = poolFor(await up.listen());
  for (const req of [{ headers: { host: 'h', 'x-a': 'v\r\nx-smuggled: 1' } }, { path: '/a b' }, { headers: { 'x-no-host': '1' } }, { headers: { host: 'h', 'bad name': 'v' } }]) {
    assert.throws(
      () => h1Request(pool, { method: 'GET', path: '/', headers: { host: 'h' }, ...req }, { onResponse() {}, onData() {}, onEnd() {}, onError() {} }),
      (e: unknown) => e instanceof H1Error && e.kind === 'invalid_request' && e.trellisCode === 'bad_request',
    );
  }
  assert.equal(pool.open, 0);
});

test('hop-by-hop request headers never reach the upstream; response hop-by-hop never reach the caller', async () => {
  const up = rawUpstream((_r, s) => s.write('HTTP/1.1 200 OK\r\nconnection: x-secret\r\nx-secret: 1\r\nkeep-alive: timeout=5\r\nx-kept: yes\r\ncontent-length: 0\r\n\r\n'));
  const pool = poolFor(await up.listen());
  const got = await send(pool, { headers: { host: 'h', connection: 'x-drop', 'x-drop': '1', 'keep-alive': '5', te: 'trailers', upgrade: 'websocket', 'x-ok': '1' } });
  assert.deepEqual(up.seen[0].head.split('\r\n').slice(1), ['host: h', 'x-ok: 1', 'te: trailers']);
  assert.deepEqual(got.headers, { 'x-kept': 'yes', 'content-length': '0' });
});

test('over mTLS through openUpstream: SPIFFE-checked connection, keep-alive reuse, and a wrong identity refused', async (t) => {
  const ca = await createTestCa();
  t.after(() => ca.cleanup());
  const serverId = await ca.issue('default', 'server');
  const clientId = await ca.issue('default', 'client');
  const serverTls = new WorkloadTls(serverId.spiffeId, ca.trustDomain, new StaticCertificateSource(serverId));
  const clientTls = new WorkloadTls(clientId.spiffeId, ca.trustDomain, new StaticCertificateSource(clientId));
  const up = rawUpstream((r, s) => s.write(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n${String(r.conn).padStart(2, '0')}`), () => new net.Socket());
  const srv = tls.createServer({
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ['http/1.1'],
    SNICallback: (_name, cb) => cb(null, serverTls.server),
  });
  const port = await up.listen(srv);
  const cluster = { name: 'c', connectTimeoutMs: 2000, service: 'svc', port: 80, protocol: 'HTTP' } as ClusterConfig;
  const ep = (identity: string): EndpointInfo => ({ id: `127.0.0.1:${port}`, address: '127.0.0.1', port, weight: 1, healthy: true, locality: {} as EndpointInfo['locality'], metadata: { tls: 'mutual', identity } });
  const good = new H1Pool({ connect: () => openUpstream(cluster, ep(serverId.spiffeId), clientTls, ['http/1.1']), readyEvent: 'trellis:ready' });
  pools.push(good);
  const a = await send(good);
  const b = await send(good, { method: 'POST', body: Buffer.from('x') });
  assert.equal(a.body, '01');
  assert.equal(b.body, '01');
  assert.equal(b.reused, true);
  const wrong = new H1Pool({ connect: () => openUpstream(cluster, ep('spiffe://cluster.local/ns/default/sa/other'), clientTls, ['http/1.1']), readyEvent: 'trellis:ready' });
  pools.push(wrong);
  await fails(send(wrong), (e) => {
    assert.equal(e.kind, 'connect');
    assert.equal(e.trellisCode, 'upstream_connect_failure');
    assert.match(e.message, /expected spiffe:\/\/cluster.local\/ns\/default\/sa\/other/);
  });
  assert.equal(up.seen.length, 2, 'nothing was sent to the wrong identity');
  serverTls.close();
  clientTls.close();
});
