// Pre-framed responses: grpc-js sends them without another copy; anything else it frames as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { framedMessage, installFramedSends, messageOf } from '../../src/control/grpc-framing.js';

const require = createRequire(import.meta.url);

test('framedMessage: gRPC prefix (uncompressed, big-endian length) then the parts; messageOf is the message', () => {
  const b = framedMessage([Buffer.from('ab'), new Uint8Array([1, 2, 3])]);
  assert.deepEqual([...b], [0, 0, 0, 0, 5, 97, 98, 1, 2, 3]);
  assert.deepEqual([...messageOf(b)], [97, 98, 1, 2, 3]);
  const plain = Buffer.from('xy');
  assert.equal(messageOf(plain), plain, 'a buffer made elsewhere is taken as the message');
});

test('the installed grpc-js takes the hook: a framed buffer is sent as it is, other values are framed as before', () => {
  // Fails if a grpc-js upgrade moves the method: responses would still work, each copied once per stream again.
  assert.equal(installFramedSends(), true);
  const { BaseServerInterceptingCall } = require('@grpc/grpc-js/build/src/server-interceptors.js');
  const serialize = BaseServerInterceptingCall.prototype.serializeMessage as (this: object, v: unknown) => Buffer;
  const call = { handler: { serialize: (v: Buffer) => v } };
  const framed = framedMessage([Buffer.from('hello')]);
  assert.equal(serialize.call(call, framed), framed, 'no copy');
  const other = Buffer.from('hello');
  assert.deepEqual(serialize.call(call, other), framed, 'framed by grpc-js, same bytes');
  assert.notEqual(serialize.call(call, other), other);
});
