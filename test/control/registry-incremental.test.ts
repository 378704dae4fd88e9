// The registry's incremental snapshot equals a full rebuild after any sequence of config changes, registrations and disconnects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Resource } from '../../src/api/types.js';
import { Registry } from '../../src/control/registry.js';
import { forgetBuiltAssignments, loadAssignment } from '../../src/control/compile/endpoints.js';

const res = (kind: string, name: string, spec: unknown, labels?: Record<string, string>): Resource => ({
  apiVersion: kind === 'Service' ? 'v1' : kind === 'Workload' ? 'trellis.dev/v1alpha1' : 'networking.istio.io/v1',
  kind,
  metadata: { name, namespace: 'default', ...(labels ? { labels } : {}) },
  spec,
});

const app = fc.constantFrom('a', 'b', 'c');
const version = fc.constantFrom(undefined, 'v1', 'v2');
const labels = (a: string, v: string | undefined) => ({ app: a, ...(v ? { version: v } : {}) });
const config = fc.record({
  services: fc.uniqueArray(fc.record({ app, version, named: fc.boolean(), versionFirst: fc.boolean() }), { selector: (s) => s.app, maxLength: 3 }),
  entries: fc.array(fc.record({ app, version, port: fc.integer({ min: 1000, max: 1003 }) }), { maxLength: 4 }),
  workloads: fc.uniqueArray(fc.record({ n: fc.integer({ min: 0, max: 3 }), app }), { selector: (w) => w.n, maxLength: 3 }),
  trustDomain: fc.constantFrom(undefined, 'example.org'),
});

type Config = typeof config extends fc.Arbitrary<infer T> ? T : never;

function resources(c: Config): Resource[] {
  const out: Resource[] = [];
  for (const s of c.services) {
    // Selector order varies: the lookup index keys on the first label.
    const selector = s.versionFirst && s.version ? { version: s.version, app: s.app } : labels(s.app, s.version);
    out.push(res('Service', `svc-${s.app}`, { selector, ports: [{ name: 'http', port: 80, targetPort: s.named ? 'web' : 8080 }] }));
  }
  c.entries.forEach((e, i) => out.push(res('WorkloadEntry', `we-${i}`, { address: `10.1.0.${i + 1}`, ports: { web: e.port }, labels: labels(e.app, e.version) })));
  for (const w of c.workloads) out.push(res('Workload', `w-${w.n}`, { service: `svc-${w.app}`, ports: [{ name: 'web', port: 9000 + w.n }] }, { app: w.app }));
  if (c.trustDomain) out.push(res('Mesh', 'default', { trustDomain: c.trustDomain }));
  return out;
}

const op = fc.oneof(
  config.map((c) => ({ kind: 'config' as const, c })),
  fc.record({
    kind: fc.constant('register' as const),
    proxy: fc.integer({ min: 0, max: 3 }),
    metas: fc.array(fc.record({ n: fc.integer({ min: 0, max: 5 }), app, version, port: fc.integer({ min: 7000, max: 7002 }) }), { minLength: 1, maxLength: 2 }),
  }),
  fc.record({ kind: fc.constant('disconnect' as const), proxy: fc.integer({ min: 0, max: 3 }) }),
);

test('incremental registry snapshots equal a full rebuild (property)', () => {
  fc.assert(
    fc.property(fc.array(op, { minLength: 1, maxLength: 25 }), (ops) => {
      const r = new Registry({ graceMs: 3_600_000 });
      try {
        for (const o of ops) {
          if (o.kind === 'config') r.setResources(resources(o.c));
          else if (o.kind === 'register') {
            const metas = o.metas.map((m) => ({ name: `w-${m.n}`, labels: labels(m.app, m.version), service: `svc-${m.app}`, ports: [{ name: 'web', port: m.port }], address: `10.2.0.${m.n + 1}` }));
            r.registerProxy(`p-${o.proxy}`, metas, 'any');
          } else r.proxyDisconnected(`p-${o.proxy}`);
          const snap = r.snapshot();
          assert.deepEqual(snap, r.fullRebuild());
          // Selector membership as the definition says (every service checked), independent of the lookup index.
          for (const w of snap.workloads) {
            for (const svc of snap.services) {
              const sel = svc.selector;
              const matches = !!sel && Object.keys(sel).length > 0 && svc.namespace === w.namespace && Object.entries(sel).every(([k, v]) => w.labels[k] === v);
              if (matches) assert.ok(w.services.includes(svc.fqdn), `${w.name} in ${svc.fqdn}`);
            }
          }
          // Load assignments reused across snapshots equal ones built anew (and report the same notes).
          const reused = snap.services.map((svc) => {
            const notes: string[] = [];
            return { cla: JSON.stringify(loadAssignment(`c|${svc.fqdn}`, snap, svc, svc.ports[0] ?? { port: 80, targetPort: 80, protocol: 'HTTP' }, undefined, notes)), notes };
          });
          forgetBuiltAssignments();
          const fresh = snap.services.map((svc) => {
            const notes: string[] = [];
            return { cla: JSON.stringify(loadAssignment(`c|${svc.fqdn}`, snap, svc, svc.ports[0] ?? { port: 80, targetPort: 80, protocol: 'HTTP' }, undefined, notes)), notes };
          });
          assert.deepEqual(reused, fresh);
          for (let p = 0; p < 4; p++) {
            const full = r.fullRebuild().workloads.filter((w) => w.proxy?.id === `p-${p}`);
            assert.deepEqual(r.proxyWorkloads(`p-${p}`), full);
          }
        }
      } finally {
        r.close();
      }
    }),
    { numRuns: 300 },
  );
});

test('a registration reuses the other proxies’ instances (no rebuild of what did not change)', () => {
  const r = new Registry({ graceMs: 3_600_000 });
  r.setResources([res('Service', 'svc-a', { selector: { app: 'a' }, ports: [{ name: 'http', port: 80 }] }), res('WorkloadEntry', 'we-0', { address: '10.1.0.1', ports: { http: 80 }, labels: { app: 'a' } })]);
  r.registerProxy('p-0', [{ name: 'w-0', labels: { app: 'a' }, address: '10.2.0.1' }], 'any');
  const before = r.snapshot();
  r.registerProxy('p-1', [{ name: 'w-1', labels: { app: 'a' }, address: '10.2.0.2' }], 'any');
  const after = r.snapshot();
  assert.notEqual(after, before);
  const same = (s: typeof before, name: string) => s.workloads.find((w) => w.name === name);
  assert.equal(same(after, 'w-0'), same(before, 'w-0'));
  assert.equal(same(after, 'we-0'), same(before, 'we-0'));
  assert.deepEqual(after, r.fullRebuild());
  r.close();
});

test('config-only instances: an unchanged entry object keeps its instance; an edit or a membership change makes new ones', () => {
  const r = new Registry({ graceMs: 3_600_000 });
  const svc = res('Service', 'svc-a', { selector: { app: 'a' }, ports: [{ name: 'http', port: 80 }] });
  const we0 = res('WorkloadEntry', 'we-0', { address: '10.1.0.1', ports: { http: 80 }, labels: { app: 'a' } });
  const we1 = res('WorkloadEntry', 'we-1', { address: '10.1.0.2', ports: { http: 80 }, labels: { app: 'a' } });
  const se = res('ServiceEntry', 'ext', { hosts: ['ext.example.com'], ports: [{ number: 443, name: 'https', protocol: 'HTTPS' }], endpoints: [{ address: '192.0.2.1' }] });
  const find = (name: string) => r.snapshot().workloads.find((w) => w.name === name)!;
  r.setResources([svc, we0, we1, se]);
  const [a0, a1, ext] = [find('we-0'), find('we-1'), find('ext-0')];
  assert.deepEqual(a0.services, ['svc-a.default.svc.cluster.local']);
  assert.deepEqual(ext.services, ['ext.example.com']);

  const we1b = res('WorkloadEntry', 'we-1', { address: '10.1.0.2', ports: { http: 81 }, labels: { app: 'a' } });
  r.setResources([svc, we0, we1b, se]);
  assert.equal(find('we-0'), a0, 'same object, same membership: same instance');
  assert.equal(find('ext-0'), ext);
  assert.notEqual(find('we-1'), a1);
  assert.equal(find('we-1').ports[0].port, 81);
  assert.deepEqual(r.snapshot(), r.fullRebuild());

  const svcB = res('Service', 'svc-b', { selector: { app: 'a' }, ports: [{ name: 'http', port: 80 }] });
  r.setResources([svc, svcB, we0, we1b, se]);
  assert.notEqual(find('we-0'), a0, 'a new selector changes membership: instances are made again');
  assert.deepEqual(find('we-0').services, ['svc-a.default.svc.cluster.local', 'svc-b.default.svc.cluster.local']);
  assert.deepEqual(r.snapshot(), r.fullRebuild());
  r.setResources([svc, we0, we1b, se]);
  assert.deepEqual(find('we-0').services, ['svc-a.default.svc.cluster.local'], 'and back: no service is kept from before');
  assert.deepEqual(r.snapshot(), r.fullRebuild());
  r.close();
});
