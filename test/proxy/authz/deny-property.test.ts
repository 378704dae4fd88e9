// Property: once a DENY policy denies path /admin, no request for /admin is ever allowed, whatever else it carries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { PolicyInput } from './helpers.js';
import { pipeline } from './helpers.js';

const value = fc.constantFrom('*', 'GET', 'POST', '/admin', '/admin*', '*min', 'cluster.local/ns/default/sa/sleep', 'foo', '10.0.0.0/8');
const source = fc.record(
  { principals: fc.array(value, { maxLength: 2 }), namespaces: fc.array(value, { maxLength: 2 }), notIpBlocks: fc.constant(['192.168.0.0/16']) },
  { requiredKeys: [] },
);
const operation = fc.record(
  { paths: fc.array(value, { maxLength: 2 }), methods: fc.array(value, { maxLength: 2 }), notPaths: fc.array(value, { maxLength: 1 }) },
  { requiredKeys: [] },
);
const rule = fc.record(
  { from: fc.array(source.map((s) => ({ source: s })), { maxLength: 2 }), to: fc.array(operation.map((o) => ({ operation: o })), { maxLength: 2 }) },
  { requiredKeys: [] },
);
const otherPolicy = fc.record({
  action: fc.constantFrom('ALLOW', 'AUDIT', 'DENY'),
  rules: fc.array(rule, { maxLength: 2 }),
});

const request = fc.record({
  principal: fc.option(fc.constantFrom('spiffe://cluster.local/ns/default/sa/sleep', 'spiffe://cluster.local/ns/foo/sa/admin'), { nil: undefined }),
  directRemoteIp: fc.constantFrom('10.0.0.1', '192.168.1.1', '::ffff:10.1.1.1', '2001:db8::1'),
  sourceIp: fc.constantFrom('10.0.0.1', '203.0.113.5'),
  method: fc.constantFrom('GET', 'POST', 'DELETE', 'get'),
  host: fc.constantFrom('httpbin', 'HTTPBIN.default:8000', 'evil.example'),
  destinationPort: fc.integer({ min: 1, max: 65535 }),
  headers: fc.dictionary(fc.constantFrom('x-a', 'x-b', 'authorization'), fc.string({ maxLength: 5 }), { maxKeys: 2 }),
});

test('a DENY of /admin holds against any other policies and any request fields', () => {
  fc.assert(
    fc.property(fc.array(otherPolicy, { maxLength: 3 }), request, (others, req) => {
      const policies: PolicyInput[] = [
        { name: 'deny-admin', spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] } },
        ...others.map((spec, i) => ({ name: `other-${i}`, spec })),
      ];
      const { decide } = pipeline(policies);
      const d = decide({ ...req, path: '/admin' });
      assert.equal(d.allowed, false);
    }),
    { numRuns: 150 },
  );
});
