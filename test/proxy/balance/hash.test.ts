import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fnv1a32, hashKey, mix32 } from '../../../src/proxy/balance/hash.js';
import type { HashPolicy } from '../../../src/proxy/route/types.js';

test('fnv1a32 known vectors', () => {
  assert.equal(fnv1a32(''), 0x811c9dc5);
  assert.equal(fnv1a32('a'), 0xe40c292c);
  assert.equal(fnv1a32('foobar'), 0xbf9cf968);
});

const header: HashPolicy = { kind: 'header', name: 'x-user', terminal: false };
const cookie: HashPolicy = { kind: 'cookie', name: 'sid', terminal: false };
const ip: HashPolicy = { kind: 'source_ip', terminal: false };
const qp: HashPolicy = { kind: 'query_parameter', name: 'u', terminal: false };

test('hashKey: each policy kind yields the hash of its value', () => {
  const h = (s: string) => mix32(fnv1a32(s));
  const cases: [HashPolicy[], Parameters<typeof hashKey>[1], number | undefined][] = [
    [[header], { headers: { 'x-user': 'alice' }, sourceIp: '1.1.1.1' }, h('alice')],
    [[header], { headers: { 'x-user': ['a', 'b'] }, sourceIp: '' }, h('a,b')],
    [[header], { headers: {}, sourceIp: '1.1.1.1' }, undefined],
    [[cookie], { headers: { cookie: 'a=1; sid=xyz; b=2' }, sourceIp: '' }, h('xyz')],
    [[cookie], { headers: {}, cookies: 'sid="q"', sourceIp: '' }, h('q')],
    [[cookie], { headers: { cookie: 'xsid=1' }, sourceIp: '' }, undefined],
    [[ip], { headers: {}, sourceIp: '10.0.0.9' }, h('10.0.0.9')],
    [[qp], { headers: {}, sourceIp: '', query: 'a=1&u=bob' }, h('bob')],
    [[qp], { headers: {}, sourceIp: '' }, undefined],
    [[header, ip], { headers: {}, sourceIp: '10.0.0.9' }, h('10.0.0.9')], // a policy that yields nothing is skipped
    [[{ ...header, terminal: true }, ip], { headers: { 'x-user': 'alice' }, sourceIp: '10.0.0.9' }, h('alice')], // terminal stops
    [[], { headers: {}, sourceIp: '1.1.1.1' }, undefined],
    [[{ kind: 'header', name: ':authority', terminal: false }], { headers: { host: 'a:80' }, sourceIp: '' }, h('a:80')],
  ];
  for (const [policies, req, want] of cases) assert.equal(hashKey(policies, req), want, JSON.stringify([policies, req]));
});

test('hashKey: non-terminal policies combine (order matters)', () => {
  const req = { headers: { 'x-user': 'alice' }, sourceIp: '10.0.0.9' };
  const both = hashKey([header, ip], req);
  assert.notEqual(both, hashKey([header], req));
  assert.notEqual(both, hashKey([ip], req));
  assert.notEqual(both, hashKey([ip, header], req));
  assert.equal(both, hashKey([header, ip], { ...req }));
});

test('hashKey: header regex rewrite applies before hashing', () => {
  const p: HashPolicy = { kind: 'header', name: ':path', terminal: false, rewrite: { re: /\/\d+$/g, substitution: '' } };
  assert.equal(hashKey([p], { headers: { ':path': '/users/1' }, sourceIp: '' }), hashKey([p], { headers: { ':path': '/users/2' }, sourceIp: '' }));
});
