// MeteredPipe over real loopback sockets: bytes pass unchanged, each request takes a token, refusals answer in order.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as http from 'node:http';
import { once } from 'node:events';
import { MeteredPipe, type MeterDecision, type MeterHooks } from '../../src/proxy/listeners/inbound-metered.js';
import { LocalRateLimiter } from '../../src/proxy/resilience/rate-limiter.js';

/** What the app saw: request lines and bodies, in order. */
const seen: string[] = [];
const app = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('latin1');
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    seen.push(`${req.method} ${req.url}${body ? ` [${body}]` : ''}`);
    if (req.url === '/slow') {
      setTimeout(() => res.end('slow'), 200);
      return;
    }
    if (req.url === '/chunked') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('part1-');
      res.end('part2');
      return;
    }
    const text = `hello ${req.url}`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text), 'x-app': 'yes' });
    res.end(text);
  });
});
const tunnels = new Set<net.Socket>();
app.on('upgrade', (req, socket: net.Socket) => {
  tunnels.add(socket);
  socket.on('close', () => tunnels.delete(socket));
  seen.push(`UPGRADE ${req.url}`);
  socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: echo\r\nconnection: upgrade\r\n\r\n');
  socket.on('data', (d) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
});
app.listen(0, '127.0.0.1');
await once(app, 'listening');
const appPort = (app.address() as net.AddressInfo).port;

interface Setup {
  decide: () => MeterDecision;
  refused: string[];
  handoffs: (Buffer | undefined)[];
  pipes: MeteredPipe[];
  /** status, request bytes, response bytes of each request the app answered. */
  observed: string[];
}
const setup: Setup = { decide: () => ({ kind: 'meter', limiter: undefined, route: 'r' }), refused: [], handoffs: [], pipes: [], observed: [] };
const proxy = net.createServer((down) => {
  const up = net.connect(appPort, '127.0.0.1');
  // As the inbound listener does: either side closing closes the other.
  down.on('error', () => up.destroy());
  up.on('error', () => down.destroy());
  down.on('close', () => up.destroy());
  up.on('close', () => down.destroy());
  const hooks: MeterHooks = {
    where: 'inbound test',
    peer: 'spiffe://td/ns/default/sa/a',
    decide: () => setup.decide(),
    observed: (status, seconds, reqBytes, resBytes) => {
      assert.ok(seconds >= 0 && seconds < 5);
      setup.observed.push(`${status} ${reqBytes} ${resBytes}`);
    },
    refused: (code, status, d) => setup.refused.push(`${status} ${code}${d.limit ? ` ${d.limit}` : ''}`),
    handoff: (pending) => {
      setup.handoffs.push(pending);
      down.end('HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nhandoff');
    },
  };
  const p = new MeteredPipe(down, up, hooks);
  setup.pipes.push(p);
  p.start();
});
proxy.listen(0, '127.0.0.1');
await once(proxy, 'listening');
const proxyPort = (proxy.address() as net.AddressInfo).port;
after(() => {
  proxy.close();
  app.close();
  app.closeAllConnections();
  for (const t of tunnels) t.destroy();
});

function reset(decide: Setup['decide']): void {
  seen.length = 0;
  setup.refused.length = 0;
  setup.handoffs.length = 0;
  setup.pipes.length = 0;
  setup.observed.length = 0;
  setup.decide = decide;
}

/** A raw client: writes `chunks` (one write each) and collects everything until `until` matches or the socket closes. */
async function raw(chunks: (string | Buffer)[], until: (got: string) => boolean, timeoutMs = 3000): Promise<{ got: string; closed: boolean; sock: net.Socket }> {
  const sock = net.connect(proxyPort, '127.0.0.1');
  await once(sock, 'connect');
  let got = '';
  let closed = false;
  sock.setEncoding('latin1');
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timeout; got so far: ${JSON.stringify(got)}`)), timeoutMs);
    const finish = () => {
      clearTimeout(t);
      resolve({ got, closed, sock });
    };
    sock.on('data', (d: string) => {
      got += d;
      if (until(got)) finish();
    });
    sock.on('close', () => {
      closed = true;
      finish();
    });
    sock.on('error', () => {});
    (async () => {
      for (const c of chunks) {
        sock.write(c);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
  });
}

const count = (s: string, re: RegExp) => (s.match(re) ?? []).length;
const limiter = (n: number) => new LocalRateLimiter([{ name: 'default/limit', total: { maxTokens: n, tokensPerFill: n, fillIntervalMs: 3_600_000 } }]);

test('requests and responses pass unchanged: keep-alive, content-length and chunked bodies both ways, a head split across writes', async () => {
  reset(() => ({ kind: 'meter', limiter: undefined, route: 'r' }));
  const r = await raw(
    [
      'GET /one HTTP/1.1\r\nHost: b\r\n\r\n',
      'POST /two HTTP/1.1\r\nHost: b\r\ncontent-length: 5\r\n\r\nhel',
      'lo',
      'POST /three HTTP/1.1\r\nHost: b\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
      'GET /chun',
      'ked HTTP/1.1\r\nHost: b\r\n\r\n',
    ],
    (g) => g.includes('part2') && count(g, /HTTP\/1\.1 200/g) === 4,
  );
  r.sock.destroy();
  assert.deepEqual(seen, ['GET /one', 'POST /two [hello]', 'POST /three [abc]', 'GET /chunked']);
  // Each answered request is reported (destination metrics): status, declared request and response bytes.
  assert.deepEqual(setup.observed, ['200 0 10', '200 5 10', '200 0 12', '200 0 0']);
  assert.equal(count(r.got, /x-app: yes/g), 3);
  assert.match(r.got, /hello \/one/);
  assert.match(r.got, /transfer-encoding: chunked[\s\S]*part1-[\s\S]*part2/i);
  assert.match(r.got, /content-length: 10\r\n[\s\S]*hello \/one/i);
  assert.deepEqual(setup.refused, []);
});

test('over the limit: 429 rate_limited with Retry-After, the app never sees the request, the connection stays open', async () => {
  const l = limiter(2);
  reset(() => ({ kind: 'meter', limiter: l, route: 'r' }));
  const r = await raw(
    ['GET /a HTTP/1.1\r\nHost: b\r\n\r\n', 'GET /b HTTP/1.1\r\nHost: b\r\n\r\n', 'GET /c HTTP/1.1\r\nHost: b\r\n\r\n', 'GET /d HTTP/1.1\r\nHost: b\r\n\r\n'],
    (g) => count(g, /HTTP\/1\.1 /g) === 4,
  );
  assert.equal(r.closed, false);
  r.sock.destroy();
  assert.deepEqual(seen, ['GET /a', 'GET /b']);
  assert.equal(count(r.got, /HTTP\/1\.1 429 Too Many Requests/g), 2);
  assert.match(r.got, /x-trellis-error: rate_limited\r\nretry-after: \d+\r\n\r\nrate_limited: request rate limit exceeded \(total limit\)/);
  assert.doesNotMatch(r.got, /connection: close/);
  assert.deepEqual(setup.refused, ['429 rate_limited total', '429 rate_limited total']);
  assert.deepEqual(setup.observed, ['200 0 8', '200 0 8']);
});

test('pipelined requests: a refusal is answered after the responses still owed, in request order', async () => {
  const l = limiter(1);
  reset(() => ({ kind: 'meter', limiter: l, route: 'r' }));
  const r = await raw(['GET /first HTTP/1.1\r\nHost: b\r\n\r\nGET /second HTTP/1.1\r\nHost: b\r\n\r\nGET /third HTTP/1.1\r\nHost: b\r\n\r\n'], (g) => count(g, /HTTP\/1\.1 /g) === 3);
  r.sock.destroy();
  assert.deepEqual(seen, ['GET /first']);
  const statuses = [...r.got.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
  assert.deepEqual(statuses, ['200', '429', '429']);
  assert.ok(r.got.indexOf('hello /first') < r.got.indexOf('429'), 'the 200 and its body come before the first 429');
});

test('a pipelined flood behind a slow response (more answers owed than the pipe holds before it stops reading) is answered in full and in order', async () => {
  const l = limiter(1);
  reset(() => ({ kind: 'meter', limiter: l, route: 'r' }));
  const flood = 'GET /slow HTTP/1.1\r\nHost: b\r\n\r\n' + 'GET /again HTTP/1.1\r\nHost: b\r\n\r\n'.repeat(150);
  const r = await raw([flood], (g) => count(g, /HTTP\/1\.1 /g) === 151, 5000);
  r.sock.destroy();
  const statuses = [...r.got.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
  assert.equal(statuses[0], '200');
  assert.equal(statuses.filter((x) => x === '429').length, 150);
  assert.deepEqual(seen, ['GET /slow']);
});

test('a refused request with a body gets 429 with connection: close; its body never reaches the app', async () => {
  const l = limiter(0);
  reset(() => ({ kind: 'meter', limiter: l, route: 'r' }));
  const r = await raw(['POST /pay HTTP/1.1\r\nHost: b\r\ncontent-length: 6\r\n\r\nsecret'], () => false);
  assert.equal(r.closed, true);
  assert.match(r.got, /^HTTP\/1\.1 429 [\s\S]*connection: close/);
  assert.deepEqual(seen, []);
});

test('framing two parties could read differently is refused with 400 and the connection closed; nothing reaches the app', async () => {
  reset(() => ({ kind: 'meter', limiter: undefined, route: 'r' }));
  const cases = [
    'POST /x HTTP/1.1\r\nHost: b\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
    'POST /x HTTP/1.1\r\nHost: b\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd',
    'POST /x HTTP/1.1\r\nHost: b\r\ntransfer-encoding: chunked, identity\r\n\r\n0\r\n\r\n',
    'GET /x HTTP/1.1\r\nHost: b\r\n folded: yes\r\n\r\n',
    'GET /x HTTP/1.1\nHost: b\r\n\r\n',
    'GET /x HTTP/1.1\r\n\r\n',
    'POST /x HTTP/1.1\r\nHost: b\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
  ];
  for (const c of cases) {
    const r = await raw([c], () => false);
    assert.equal(r.closed, true, c);
    assert.match(r.got, /^HTTP\/1\.1 (400 Bad Request|501 Not Implemented)\r\n[\s\S]*x-trellis-error: bad_request\r\nconnection: close/, c);
  }
  // The chunked-body case forwards its head before the bad chunk is seen; no request completes at the app.
  assert.deepEqual(seen, []);
});

test('an oversized request head is refused with 431', async () => {
  reset(() => ({ kind: 'meter', limiter: undefined, route: 'r' }));
  const r = await raw([`GET /x HTTP/1.1\r\nHost: b\r\nx-big: ${'a'.repeat(70 * 1024)}\r\n\r\n`], () => false);
  assert.match(r.got, /^HTTP\/1\.1 431 /);
  assert.deepEqual(setup.refused, ['431 headers_too_large']);
});

test('an accepted Upgrade turns the connection into a tunnel (bytes after the 101 pass both ways)', async () => {
  reset(() => ({ kind: 'meter', limiter: undefined, route: 'r' }));
  const sock = net.connect(proxyPort, '127.0.0.1');
  await once(sock, 'connect');
  sock.setEncoding('latin1');
  let got = '';
  sock.on('data', (d: string) => (got += d));
  sock.write('GET /ws HTTP/1.1\r\nHost: b\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n');
  while (!got.includes('\r\n\r\n')) await new Promise((r) => setTimeout(r, 5));
  assert.match(got, /^HTTP\/1\.1 101 /);
  // Not an HTTP request any more: passed as is.
  sock.write('not http at all');
  while (!got.includes('echo:not http at all')) await new Promise((r) => setTimeout(r, 5));
  sock.destroy();
  assert.deepEqual(seen, ['UPGRADE /ws']);
});

test('when the chain comes to need the full HTTP stack, the connection is handed over with the unread request', async () => {
  let n = 0;
  reset(() => (n++ === 0 ? { kind: 'meter', limiter: undefined, route: 'r' } : { kind: 'l7' }));
  const r = await raw(['GET /before HTTP/1.1\r\nHost: b\r\n\r\n', 'GET /after HTTP/1.1\r\nHost: b\r\n\r\n'], () => false);
  assert.deepEqual(seen, ['GET /before']);
  assert.equal(setup.handoffs.length, 1);
  assert.equal(setup.handoffs[0]!.toString('latin1'), 'GET /after HTTP/1.1\r\nHost: b\r\n\r\n');
  assert.match(r.got, /hello \/before[\s\S]*handoff$/);
});

test('drain closes an idle keep-alive connection', async () => {
  reset(() => ({ kind: 'meter', limiter: undefined, route: 'r' }));
  const sock = net.connect(proxyPort, '127.0.0.1');
  await once(sock, 'connect');
  let got = '';
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => (got += d));
  sock.write('GET /x HTTP/1.1\r\nHost: b\r\n\r\n');
  while (!got.includes('hello /x')) await new Promise((r) => setTimeout(r, 5));
  setup.pipes[0].drain();
  await once(sock, 'close');
});
