// Root rotation with a fake ADS and a real CA: steps in order, each waiting for the mesh; timeouts leave every root trusted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/identity/ca.js';
import { pemToDers } from '../../src/identity/pem.js';
import { fingerprintOf } from '../../src/identity/ca.js';
import { CertTracker } from '../../src/control/cert-tracker.js';
import { RootRotator, RotationBusyError, RotationRefusedError, rotateRoot, type RotationDeps } from '../../src/control/ca-rotation.js';

const ID = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`;

/**
 * A mesh of fake proxies: after each push a proxy ACKs after `ackMs` (unless it is stuck), and when the bundle's
 * first root is not the root of its certificate it re-issues after `reissueMs` (unless it never renews).
 */
class FakeMesh {
  events: string[] = [];
  acks = new Map<string, number>();
  stuckAck = new Set<string>();
  neverRenew = new Set<string>();
  timers = new Set<NodeJS.Timeout>();
  constructor(
    readonly ca: CertificateAuthority,
    readonly tracker: CertTracker,
    readonly proxies: { id: string; sa: string }[],
    readonly ackMs = 30,
    readonly reissueMs = 60,
  ) {
    for (const p of proxies) this.sign(p);
  }
  private later(ms: number, fn: () => void) {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }
  sign(p: { id: string; sa: string }) {
    const signing = this.ca.roots().find((r) => r.signing)!.fingerprint;
    this.tracker.record(ID(p.sa), { proxyId: p.id, serial: String(Math.random()), notBefore: new Date(), notAfter: new Date(Date.now() + 3600_000), rootFingerprint: signing });
  }
  firstRoot(): string {
    return fingerprintOf(pemToDers(this.ca.trustBundlePem())[0]);
  }
  readonly ads: RotationDeps['ads'] = {
    pushAll: async () => {
      this.events.push(`push roots=${this.ca.roots().length}`);
      const first = this.firstRoot();
      for (const p of this.proxies) {
        if (!this.stuckAck.has(p.id)) this.later(this.ackMs, () => this.acks.set(p.id, Date.now()));
        const held = this.tracker.forProxy(p.id)[0]?.rootFingerprint;
        if (held !== first && !this.neverRenew.has(p.id)) this.later(this.reissueMs, () => (this.events.push(`reissue ${p.id}`), this.sign(p)));
      }
    },
    ackedSince: (_type, since) => ({ acked: this.proxies.filter((p) => (this.acks.get(p.id) ?? 0) >= since).length, total: this.proxies.length }),
    proxies: () => this.proxies.map((p) => ({ id: p.id, kind: 'trellis' as const, workloads: [{ identity: ID(p.sa) } as never] })),
  };
  close() {
    for (const t of this.timers) clearTimeout(t);
  }
}

async function setup(proxies = [{ id: 'p1', sa: 'a' }, { id: 'p2', sa: 'b' }]) {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-rot-'));
  const ca = await CertificateAuthority.loadOrCreate({ stateDir: dir, trustDomain: 'cluster.local' });
  const tracker = new CertTracker();
  const mesh = new FakeMesh(ca, tracker, proxies);
  // Record CA calls in the same event list as pushes, to check the order.
  for (const m of ['addRoot', 'setSigningRoot', 'retireRoot'] as const) {
    const orig = ca[m].bind(ca) as (...a: unknown[]) => Promise<unknown>;
    (ca as unknown as Record<string, unknown>)[m] = async (...a: unknown[]) => {
      mesh.events.push(m);
      return orig(...a);
    };
  }
  const lines: string[] = [];
  const deps: RotationDeps = { ca, tracker, ads: mesh.ads, log: (l) => lines.push(l) };
  return { dir, ca, tracker, mesh, deps, lines, done: () => (mesh.close(), rmSync(dir, { recursive: true, force: true })) };
}

test('the trust bundle lists the signing root first', async () => {
  const { ca, done } = await setup([]);
  try {
    const old = ca.roots()[0].fingerprint;
    const added = await ca.addRoot();
    assert.equal(fingerprintOf(pemToDers(ca.trustBundlePem())[0]), old, 'old root still signs: first');
    await ca.setSigningRoot(added.fingerprint);
    assert.equal(fingerprintOf(pemToDers(ca.trustBundlePem())[0]), added.fingerprint, 'new signing root first');
    assert.equal(pemToDers(ca.trustBundlePem()).length, 2);
  } finally {
    done();
  }
});

test('rotation: add root, wait for ACKs, switch signing, wait for re-issue, retire; progress lines', async () => {
  const { ca, tracker, mesh, deps, lines, done } = await setup();
  try {
    const old = ca.roots()[0].fingerprint;
    const report = await rotateRoot(deps, { timeoutMs: 5000, pollMs: 10 });
    assert.equal(report.ok, true, report.error);
    assert.equal(report.oldRoot, old);
    assert.deepEqual(report.retired, [old]);
    assert.deepEqual(report.steps.map((s) => `${s.step} ${s.ok}`), ['trust true', 'switch true', 'retire true']);
    // Order: the switch waited for the ACKs, retiring waited for both re-issues.
    const ev = mesh.events;
    const i = (e: string) => ev.indexOf(e);
    assert.ok(i('addRoot') < i('setSigningRoot') && i('setSigningRoot') < i('retireRoot'), ev.join(' | '));
    assert.ok(i('reissue p1') > i('setSigningRoot') && i('reissue p1') < i('retireRoot'), ev.join(' | '));
    assert.ok(i('reissue p2') < i('retireRoot'), ev.join(' | '));
    assert.ok(report.steps[0].ms >= 25, 'step 1 waited for the ACKs');
    assert.deepEqual(ca.roots().map((r) => r.fingerprint), [report.newRoot]);
    assert.equal(ca.roots()[0].signing, true);
    assert.deepEqual(tracker.pendingFor(report.newRoot!, mesh.ads.proxies().map((p) => ({ id: p.id, identities: [p.workloads[0].identity] }))), []);
    assert.ok(lines.some((l) => /^step 1\/3/.test(l)) && lines.some((l) => /^step 3\/3/.test(l)) && lines.some((l) => /rotation done/.test(l)), lines.join('\n'));
  } finally {
    done();
  }
});

test('timeout in step 2 (a proxy never re-issues): stops with the proxy named, every root still trusted', async () => {
  const { ca, mesh, deps, done } = await setup();
  try {
    mesh.neverRenew.add('p2');
    const old = ca.roots()[0].fingerprint;
    const report = await rotateRoot(deps, { timeoutMs: 600, pollMs: 10 });
    assert.equal(report.ok, false);
    assert.match(report.error!, /timed out in step 2: 1 certificate\(s\) still not from the new root: p2 \(spiffe:\/\/cluster\.local\/ns\/default\/sa\/b: certificate from root [0-9a-f]{16}\)/);
    assert.ok(!mesh.events.includes('retireRoot'));
    assert.deepEqual(ca.roots().map((r) => r.fingerprint).sort(), [old, report.newRoot].sort());
    assert.equal(ca.roots().find((r) => r.signing)!.fingerprint, report.newRoot);
  } finally {
    done();
  }
});

test('timeout in step 1 (a proxy never ACKs): the old root keeps signing, both trusted', async () => {
  const { ca, mesh, deps, done } = await setup();
  try {
    mesh.stuckAck.add('p1');
    const old = ca.roots()[0].fingerprint;
    const report = await rotateRoot(deps, { timeoutMs: 300, pollMs: 10 });
    assert.equal(report.ok, false);
    assert.match(report.error!, /timed out in step 1: 1 of 2 proxies have not acknowledged/);
    assert.ok(!mesh.events.includes('setSigningRoot'));
    assert.equal(ca.roots().find((r) => r.signing)!.fingerprint, old);
    assert.equal(ca.roots().length, 2);
  } finally {
    done();
  }
});

test('a second run finishes what a timed-out one left: every other root is retired', async () => {
  const { ca, mesh, deps, done } = await setup();
  try {
    mesh.neverRenew.add('p2');
    const first = await rotateRoot(deps, { timeoutMs: 300, pollMs: 10 });
    assert.equal(first.ok, false);
    mesh.neverRenew.clear();
    const second = await rotateRoot(deps, { timeoutMs: 5000, pollMs: 10 });
    assert.equal(second.ok, true, second.error);
    assert.equal(second.retired.length, 2, 'the original root and the first run\'s root');
    assert.deepEqual(ca.roots().map((r) => r.fingerprint), [second.newRoot]);
  } finally {
    done();
  }
});

test('RootRotator runs one rotation at a time; refuses an operator-provided CA', async () => {
  const { deps, done } = await setup();
  try {
    const rotator = new RootRotator(deps);
    const seen: string[] = [];
    const running = rotator.rotate({ timeoutMs: 5000, pollMs: 10 }, (l) => seen.push(l));
    assert.equal(rotator.busy, true);
    assert.throws(() => rotator.rotate(), RotationBusyError);
    assert.equal((await running).ok, true);
    assert.ok(seen.some((l) => /step 2\/3/.test(l)), 'per-run progress listener');
    assert.equal(rotator.busy, false);
    const again = await rotator.rotate({ timeoutMs: 5000, pollMs: 10 });
    assert.equal(again.ok, true);
    const refused = new RootRotator({ ...deps, ca: { ...deps.ca, roots: deps.ca.roots, operatorProvided: true } as RotationDeps['ca'] });
    assert.throws(() => refused.rotate(), RotationRefusedError);
  } finally {
    done();
  }
});
