import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as der from '../../src/identity/der.js';

test('DER writer encodings', () => {
  const hex = (b: Buffer) => b.toString('hex');
  const cases: [Buffer, string][] = [
    [der.uint(0), '020100'],
    [der.uint(127), '02017f'],
    [der.uint(128), '02020080'],
    [der.uint(Buffer.from([0, 0, 1])), '020101'],
    [der.uint(Buffer.from([0xff])), '020200ff'],
    [der.oid('1.2.840.10045.4.3.2'), '06082a8648ce3d040302'],
    [der.oid('2.5.29.17'), '0603551d11'],
    [der.bool(true), '0101ff'],
    [der.seq(), '3000'],
    [der.octets(Buffer.alloc(200)).subarray(0, 3), '0481c8'],
    [der.octets(Buffer.alloc(300)).subarray(0, 4), '0482012c'],
    [der.time(new Date(Date.UTC(2049, 11, 31, 23, 59, 59))), '170d3439313233313233353935395a'],
    [der.time(new Date(Date.UTC(2050, 0, 1, 0, 0, 0))), '180f32303530303130313030303030305a'],
  ];
  for (const [got, want] of cases) assert.equal(hex(got), want);
});

test('DER reader round-trips and refuses malformed input', () => {
  const t = der.seq(der.oid('2.5.29.17'), der.time(new Date(Date.UTC(2030, 5, 1, 12, 0, 0))));
  const root = der.readRoot(t);
  const [o, tm] = der.children(t, root);
  assert.equal(der.decodeOid(der.bytes(t, o)), '2.5.29.17');
  assert.equal(der.decodeTime(t, tm).toISOString(), '2030-06-01T12:00:00.000Z');
  const bad: [string, RegExp][] = [
    ['30', /truncated/],
    ['3005020101', /runs past/],
    ['30800000', /bad DER length/],
    ['300002', /trailing/],
    ['3f0100', /multi-byte/],
    ['3085ffffffffff', /bad DER length/],
  ];
  for (const [h, re] of bad) assert.throws(() => der.readRoot(Buffer.from(h, 'hex')), re, h);
  assert.throws(() => der.decodeTime(Buffer.from('170131', 'hex'), der.readRoot(Buffer.from('170131', 'hex'))), /bad time/);
});
