// The proxy's small gRPC client: message framing, status from headers and trailers, deadlines and unreachable servers.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { GrpcCallError, GrpcChannel, GrpcStatus, MessageReader, callStatus, frame } from '../../src/xds/grpc-h2-client.js';

test('messages are length-prefixed and split back out whatever the chunking; oversized and compressed frames are refused', () => {
  const a = frame(Buffer.from('hello'));
  const b = frame(Buffer.alloc(0));
  const c = frame(Buffer.from('world!'));
  const all = Buffer.concat([a, b, c]);
  for (let cut = 0; cut <= all.length; cut++) {
    const r = new MessageReader(1024);
    const got = [...r.push(all.subarray(0, cut)), ...r.push(all.subarray(cut))].map((m) => m.toString());
    assert.deepEqual(got, ['hello', '', 'world!'], `cut at ${cut}`);
  }
  assert.throws(() => new MessageReader(4).push(frame(Buffer.from('12345'))), (e: unknown) => e instanceof GrpcCallError && e.code === GrpcStatus.RESOURCE_EXHAUSTED);
  const compressed = frame(Buffer.from('x'));
  compressed[0] = 1;
  assert.throws(() => new MessageReader(4).push(compressed), /compressed messages are not supported/);
});

test('call status: OK, trailers, trailers-only, percent-encoded messages, HTTP failures', () => {
  const rows: [Record<string, unknown>, Record<string, unknown> | undefined, number | undefined, string?][] = [
    [{ ':status': 200 }, { 'grpc-status': '0' }, undefined],
    [{ ':status': 200 }, { 'grpc-status': '7', 'grpc-message': 'token%20grants%20sa%2Fweb' }, GrpcStatus.PERMISSION_DENIED, 'token grants sa/web'],
    [{ ':status': 200, 'grpc-status': '16', 'grpc-message': 'missing join token' }, undefined, GrpcStatus.UNAUTHENTICATED, 'missing join token'],
    [{ ':status': 200 }, {}, GrpcStatus.UNKNOWN, 'the server ended the call without a grpc-status'],
    [{ ':status': 404 }, undefined, GrpcStatus.UNIMPLEMENTED, 'HTTP status 404 from the server'],
    [{ ':status': 503 }, undefined, GrpcStatus.UNAVAILABLE, 'HTTP status 503 from the server'],
  ];
  for (const [h, t, code, msg] of rows) {
    const s = callStatus(h as http2.IncomingHttpHeaders, t as http2.IncomingHttpHeaders | undefined);
    assert.equal(s?.code, code, JSON.stringify([h, t]));
    if (msg) assert.equal(s?.details, msg);
  }
});

const server = http2.createServer();
server.on('stream', (stream, headers) => {
  const path = headers[':path'];
  if (path === '/echo/Unary') {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const msg = new MessageReader(1 << 20).push(Buffer.concat(chunks))[0];
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(frame(Buffer.concat([Buffer.from(`${headers.authorization}:`), msg])));
    });
  } else if (path === '/echo/Never') {
    stream.on('data', () => {});
  } else if (path === '/echo/Stream') {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    const reader = new MessageReader(1 << 20);
    stream.on('data', (c: Buffer) => {
      for (const m of reader.push(c)) {
        if (m.toString() === 'bye') {
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '14', 'grpc-message': 'going%20away' }));
          stream.end();
        } else stream.write(frame(Buffer.from(`got ${m}`)));
      }
    });
  }
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
const channel = new GrpcChannel(address, { keepaliveMs: 50, keepaliveTimeoutMs: 1000 });
after(() => {
  channel.close();
  server.close();
});

test('unary: metadata goes out, the reply comes back; a silent server hits the deadline', async () => {
  const r = await channel.unary('/echo/Unary', Buffer.from('ping'), { authorization: 'Bearer t' }, 2000);
  assert.equal(r.toString(), 'Bearer t:ping');
  await assert.rejects(channel.unary('/echo/Never', Buffer.from('x'), {}, 100), (e: unknown) => e instanceof GrpcCallError && e.code === GrpcStatus.DEADLINE_EXCEEDED);
});

test('bidi: headers, messages both ways, then the status from the trailers', async () => {
  const call = channel.bidi('/echo/Stream', {});
  const got: string[] = [];
  let sawHeaders = false;
  call.on('headers', () => (sawHeaders = true));
  call.on('message', (m: Buffer) => {
    got.push(m.toString());
    if (got.length === 2) call.write(Buffer.from('bye'));
  });
  call.write(Buffer.from('one'));
  call.write(Buffer.from('two'));
  const [err] = (await once(call, 'error')) as [GrpcCallError];
  assert.equal(sawHeaders, true);
  assert.deepEqual(got, ['got one', 'got two']);
  assert.equal(err.code, GrpcStatus.UNAVAILABLE);
  assert.equal(err.details, 'going away');
});

test('an unreachable server fails the call with UNAVAILABLE naming the socket error', async () => {
  const dead = new GrpcChannel('127.0.0.1:1');
  await assert.rejects(dead.unary('/x/Y', Buffer.alloc(0), {}, 1000), (e: unknown) => e instanceof GrpcCallError && e.code === GrpcStatus.UNAVAILABLE && /ECONNREFUSED/.test(e.details));
  const call = dead.bidi('/x/Y', {});
  const [err] = (await once(call, 'error')) as [GrpcCallError];
  assert.equal(err.code, GrpcStatus.UNAVAILABLE);
  assert.match(err.details, /ECONNREFUSED 127\.0\.0\.1:1/);
  dead.close();
});
