import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyHeaderOps, compileHeaderOps, type HeaderLevel } from '../../../src/proxy/route/headers.js';
import { compileRouteTable } from '../../../src/proxy/route/table.js';
import { selectRoute } from '../../../src/proxy/route/select.js';
import { req } from './helpers.js';

type H = Record<string, string | string[] | undefined>;
const hv = (key: string, value: string, opt: object = {}) => ({ header: { key, value }, ...opt });

/** Compile levels (evaluation order) and apply them to `start`. */
function run(levels: HeaderLevel[], start: H): { out: H; warnings: string[] } {
  const warnings: string[] = [];
  const ops = compileHeaderOps(levels, warnings, 'test');
  const out = { ...start };
  applyHeaderOps(out, ops);
  return { out, warnings };
}

const cases: [string, HeaderLevel[], H, H][] = [
  ['default append adds', [{ toAdd: [hv('x', '1')] }], {}, { x: '1' }],
  ['default append appends', [{ toAdd: [hv('x', '1')] }], { x: '0' }, { x: ['0', '1'] }],
  ['APPEND_IF_EXISTS_OR_ADD', [{ toAdd: [hv('x', '1', { append_action: 'APPEND_IF_EXISTS_OR_ADD' })] }], { x: ['a', 'b'] }, { x: ['a', 'b', '1'] }],
  ['OVERWRITE_IF_EXISTS_OR_ADD', [{ toAdd: [hv('x', '1', { append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })] }], { x: '0' }, { x: '1' }],
  ['OVERWRITE_IF_EXISTS_OR_ADD adds', [{ toAdd: [hv('x', '1', { append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })] }], {}, { x: '1' }],
  ['ADD_IF_ABSENT present', [{ toAdd: [hv('x', '1', { append_action: 'ADD_IF_ABSENT' })] }], { x: '0' }, { x: '0' }],
  ['ADD_IF_ABSENT absent', [{ toAdd: [hv('x', '1', { append_action: 'ADD_IF_ABSENT' })] }], {}, { x: '1' }],
  ['OVERWRITE_IF_EXISTS present', [{ toAdd: [hv('x', '1', { append_action: 'OVERWRITE_IF_EXISTS' })] }], { x: ['0', '2'] }, { x: '1' }],
  ['OVERWRITE_IF_EXISTS absent', [{ toAdd: [hv('x', '1', { append_action: 'OVERWRITE_IF_EXISTS' })] }], {}, {}],
  ['legacy append false overwrites', [{ toAdd: [hv('x', '1', { append: { value: false } })] }], { x: '0' }, { x: '1' }],
  ['legacy append true appends', [{ toAdd: [hv('x', '1', { append: { value: true } })] }], { x: '0' }, { x: ['0', '1'] }],
  ['legacy append wins over append_action', [{ toAdd: [hv('x', '1', { append: { value: true }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })] }], { x: '0' }, { x: ['0', '1'] }],
  ['names are lowercased', [{ toAdd: [hv('X-A', '1')], toRemove: ['X-B'] }], { 'x-b': '2' }, { 'x-a': '1' }],
  ['remove', [{ toRemove: ['x'] }], { x: '0', y: '1' }, { y: '1' }],
  ['remove then add in one level', [{ toRemove: ['x'], toAdd: [hv('x', '1')] }], { x: '0' }, { x: '1' }],
  ['empty values dropped', [{ toAdd: [hv('x', '')] }], {}, {}],
  ['keep_empty_value', [{ toAdd: [hv('x', '', { keep_empty_value: true })] }], {}, { x: '' }],
  ['two overwrites in one level: last wins', [{ toAdd: [hv('x', '1', { append: { value: false } }), hv('x', '2', { append: { value: false } })] }], {}, { x: '2' }],
  ['overwrite then append in one level', [{ toAdd: [hv('x', '1', { append: { value: false } }), hv('x', '2')] }], { x: '0' }, { x: ['1', '2'] }],
  // across levels: later in evaluation order wins
  ['later overwrite beats earlier overwrite', [{ toAdd: [hv('x', 'route', { append: { value: false } })] }, { toAdd: [hv('x', 'rc', { append: { value: false } })] }], {}, { x: 'rc' }],
  ['later remove beats earlier add', [{ toAdd: [hv('x', 'route')] }, { toRemove: ['x'] }], {}, {}],
  ['later overwrite wipes earlier appends', [{ toAdd: [hv('x', 'a')] }, { toAdd: [hv('x', 'b', { append: { value: false } })] }], { x: '0' }, { x: 'b' }],
  ['appends accumulate in evaluation order', [{ toAdd: [hv('x', 'a')] }, { toAdd: [hv('x', 'b')] }], {}, { x: ['a', 'b'] }],
  ['earlier overwrite then later append', [{ toAdd: [hv('x', 'a', { append: { value: false } })] }, { toAdd: [hv('x', 'b')] }], { x: '0' }, { x: ['a', 'b'] }],
  ['earlier remove then later add', [{ toRemove: ['x'] }, { toAdd: [hv('x', 'b')] }], { x: '0' }, { x: 'b' }],
  ['add-if-absent after an overwrite does nothing', [{ toAdd: [hv('x', 'a', { append: { value: false } })] }, { toAdd: [hv('x', 'b', { append_action: 'ADD_IF_ABSENT' })] }], {}, { x: 'a' }],
];

for (const [name, levels, start, want] of cases) {
  test(`header ops: ${name}`, () => assert.deepEqual(run(levels, start).out, want));
}

test('substitution variables are kept literally and warned', () => {
  const { out, warnings } = run([{ toAdd: [hv('x-ip', '%DOWNSTREAM_REMOTE_ADDRESS%')] }], {});
  assert.equal(out['x-ip'], '%DOWNSTREAM_REMOTE_ADDRESS%');
  assert.match(warnings.join(), /substitution variables/);
});

function rcWith(flag: boolean | undefined) {
  const ow = (v: string) => hv('x-level', v, { append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
  return compileRouteTable({
    ...(flag === undefined ? {} : { most_specific_header_mutations_wins: flag }),
    request_headers_to_add: [ow('rc'), hv('x-rc', '1')],
    response_headers_to_add: [ow('rc')],
    virtual_hosts: [
      {
        name: 'h',
        domains: ['*'],
        request_headers_to_add: [ow('vh'), hv('x-vh', '1')],
        request_headers_to_remove: ['x-secret'],
        routes: [
          {
            name: 'r',
            match: { prefix: '/' },
            request_headers_to_add: [ow('route')],
            response_headers_to_add: [ow('route')],
            response_headers_to_remove: ['server'],
            route: { cluster: 'c' },
          },
        ],
      },
    ],
  });
}

test('levels merge: Envoy default evaluates route, vhost, route config (the least specific overwrite wins)', () => {
  const d = selectRoute(rcWith(undefined), req('h'));
  assert.equal(d.kind, 'forward');
  if (d.kind !== 'forward') return;
  const h: H = { 'x-secret': 's', 'x-level': 'client' };
  applyHeaderOps(h, d.requestHeaders);
  assert.deepEqual(h, { 'x-level': 'rc', 'x-rc': '1', 'x-vh': '1' });
  const resp: H = { server: 'app' };
  applyHeaderOps(resp, d.responseHeaders);
  assert.deepEqual(resp, { 'x-level': 'rc' });
});

test('levels merge: most_specific_header_mutations_wins makes route > virtual host > route config', () => {
  const d = selectRoute(rcWith(true), req('h'));
  assert.equal(d.kind, 'forward');
  if (d.kind !== 'forward') return;
  const h: H = { 'x-secret': 's' };
  applyHeaderOps(h, d.requestHeaders);
  assert.deepEqual(h, { 'x-level': 'route', 'x-rc': '1', 'x-vh': '1' });
  const resp: H = { server: 'app' };
  applyHeaderOps(resp, d.responseHeaders);
  assert.deepEqual(resp, { 'x-level': 'route' });
});

test('weighted cluster headers are the most specific level', () => {
  const t = compileRouteTable({
    most_specific_header_mutations_wins: true,
    virtual_hosts: [
      {
        name: 'h',
        domains: ['*'],
        routes: [
          {
            name: 'r',
            match: { prefix: '/' },
            request_headers_to_add: [hv('x-v', 'route', { append: { value: false } })],
            route: {
              weighted_clusters: {
                clusters: [{ name: 'a', weight: { value: 1 }, request_headers_to_add: [hv('x-v', 'a', { append: { value: false } })] }],
              },
            },
          },
        ],
      },
    ],
  });
  const d = selectRoute(t, req('h'));
  const h: H = {};
  if (d.kind === 'forward') applyHeaderOps(h, d.requestHeaders);
  assert.deepEqual(h, { 'x-v': 'a' });
});
