// Zero-downtime root rotation: trust a new root everywhere, re-issue every certificate from it, then retire the old roots.
import { SECRET_TYPE } from '../xds/protos.js';
import type { CertificateAuthority } from '../identity/ca.js';
import type { CertTracker, HolderProxy, PendingHolder } from './cert-tracker.js';
import type { ProxyStatus } from './ads-server.js';

export type RotationStep = 'trust' | 'switch' | 'retire';

export interface RotationStepReport {
  step: RotationStep;
  ok: boolean;
  message: string;
  ms: number;
}

export interface RotationReport {
  ok: boolean;
  /** The root that signed before (short fingerprints are the first 16 hex characters). */
  oldRoot: string;
  newRoot?: string;
  /** Roots no longer trusted at the end. */
  retired: string[];
  steps: RotationStepReport[];
  /** Why it stopped, when ok is false; both roots are then still trusted. */
  error?: string;
  warnings: string[];
  ms: number;
}

export interface RotationDeps {
  ca: Pick<CertificateAuthority, 'addRoot' | 'setSigningRoot' | 'retireRoot' | 'roots' | 'operatorProvided'>;
  tracker: Pick<CertTracker, 'pendingFor' | 'unaccountedFrom'>;
  ads: { pushAll(): Promise<void>; ackedSince(typeUrl: string, since: number): { acked: number; total: number }; proxies(): Pick<ProxyStatus, 'id' | 'kind' | 'workloads'>[] };
  /** Progress lines (the CLI prints them as they come). */
  log?: (line: string) => void;
}

export interface RotationOptions {
  /** For the whole rotation (default 5 minutes). */
  timeoutMs?: number;
  /** How often progress is polled (default 200 ms). */
  pollMs?: number;
}

/** A rotation is already running: the HTTP API answers 409. */
export class RotationBusyError extends Error {}
/** The rotation cannot start (operator-provided CA): the HTTP API answers 400. */
export class RotationRefusedError extends Error {}

export const DEFAULT_ROTATION_TIMEOUT_MS = 5 * 60_000;
const RETIRE_ACK_WAIT_MS = 10_000;

const short = (fp: string) => fp.slice(0, 16);

function holders(ads: RotationDeps['ads']): HolderProxy[] {
  return ads
    .proxies()
    .filter((p) => p.kind === 'trellis')
    .map((p) => ({ id: p.id, identities: p.workloads.map((w) => w.identity).filter((i): i is string => !!i) }));
}

function describePending(pending: PendingHolder[]): string {
  const shown = pending
    .slice(0, 5)
    .map((p) => `${p.proxyId} (${p.spiffeId}: ${p.rootFingerprint ? `certificate from root ${short(p.rootFingerprint)}` : 'no certificate signed by this control plane'})`)
    .join(', ');
  return pending.length > 5 ? `${shown} and ${pending.length - 5} more` : shown;
}

/** One rotation at a time per control plane. */
export class RootRotator {
  private running: Promise<RotationReport> | undefined;

  constructor(private readonly deps: RotationDeps) {}

  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Runs a rotation; throws RotationBusyError while another runs. `log` adds a listener for this run's progress. */
  rotate(opts: RotationOptions = {}, log?: (line: string) => void): Promise<RotationReport> {
    if (this.running) throw new RotationBusyError('a root rotation is already running; wait for it to finish (see `trellis ca status`)');
    if (this.deps.ca.operatorProvided) {
      throw new RotationRefusedError('cannot rotate: the CA was provided by the operator; replace its certificate and key files and restart the control plane instead');
    }
    const deps = log ? { ...this.deps, log: (l: string) => (this.deps.log?.(l), log(l)) } : this.deps;
    this.running = rotateRoot(deps, opts).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }
}

/**
 * The three steps, each waiting for the mesh before the next: (1) add a root, push the bundle (old root still
 * signing and listed first), wait until every connected proxy acknowledged it; (2) make the new root sign and push
 * (new root first: proxies re-issue), wait until every identity of every connected proxy holds a certificate from
 * it; (3) retire every other root and push. On timeout it stops where it is: every root stays trusted, nothing breaks.
 */
export async function rotateRoot(deps: RotationDeps, opts: RotationOptions = {}): Promise<RotationReport> {
  const { ca, tracker, ads } = deps;
  const log = deps.log ?? (() => undefined);
  const pollMs = opts.pollMs ?? 200;
  const started = Date.now();
  const deadline = started + (opts.timeoutMs ?? DEFAULT_ROTATION_TIMEOUT_MS);
  const oldRoot = ca.roots().find((r) => r.signing)!.fingerprint;
  const report: RotationReport = { ok: false, oldRoot, retired: [], steps: [], warnings: [], ms: 0 };
  const finish = (error?: string): RotationReport => {
    report.ok = !error;
    report.error = error;
    report.ms = Date.now() - started;
    if (error) log(`rotation stopped: ${error}`);
    else log(`rotation done in ${(report.ms / 1000).toFixed(1)}s: root ${short(report.newRoot!)} signs, ${report.retired.map(short).join(', ')} retired`);
    return report;
  };
  /** Polls `done` until it returns a message, or the deadline passes (undefined). */
  const waitUntil = async (done: () => string | undefined, progress: () => string, until = deadline): Promise<string | undefined> => {
    let lastProgress = '';
    let lastLogAt = Date.now();
    for (;;) {
      const msg = done();
      if (msg !== undefined) return msg;
      if (Date.now() >= until) return undefined;
      const p = progress();
      if (p !== lastProgress || Date.now() - lastLogAt > 5000) {
        log(`  ${p}`);
        lastProgress = p;
        lastLogAt = Date.now();
      }
      await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(1, until - Date.now()))));
    }
  };
  const stepDone = (step: RotationStep, t0: number, ok: boolean, message: string) => {
    report.steps.push({ step, ok, message, ms: Date.now() - t0 });
    log(`${ok ? 'done' : 'failed'}: ${message}`);
  };
  /** Pushes and waits until every connected proxy has ACKed SDS since `since`, i.e. holds the bundle as it is now. */
  const bundleAcked = async (since: number, until = deadline) => {
    await ads.pushAll();
    return waitUntil(
      () => {
        const a = ads.ackedSince(SECRET_TYPE, since);
        return a.acked >= a.total ? `${a.acked}/${a.total} proxies acknowledged the new trust bundle` : undefined;
      },
      () => {
        const a = ads.ackedSince(SECRET_TYPE, since);
        return `waiting for proxies to acknowledge the trust bundle: ${a.acked}/${a.total}`;
      },
      until,
    );
  };

  // 1. trust the new root everywhere
  let t0 = Date.now();
  log(`step 1/3: adding a new root alongside ${short(oldRoot)} (which keeps signing)`);
  const added = await ca.addRoot();
  report.newRoot = added.fingerprint;
  const newRoot = added.fingerprint;
  const acked = await bundleAcked(t0);
  if (acked === undefined) {
    const a = ads.ackedSince(SECRET_TYPE, t0);
    const msg = `timed out in step 1: ${a.total - a.acked} of ${a.total} proxies have not acknowledged the bundle with the new root ${short(newRoot)}; root ${short(oldRoot)} still signs, both stay trusted (run \`trellis status\` to see which proxies are STALE)`;
    stepDone('trust', t0, false, msg);
    return finish(msg);
  }
  stepDone('trust', t0, true, `new root ${short(newRoot)} trusted: ${acked}`);

  // 2. sign from the new root; proxies see it first in the bundle and re-issue
  t0 = Date.now();
  log(`step 2/3: root ${short(newRoot)} signs from now on; proxies re-issue their certificates`);
  await ca.setSigningRoot(newRoot);
  await ads.pushAll();
  const reissued = await waitUntil(
    () => {
      const hs = holders(ads);
      if (tracker.pendingFor(newRoot, hs).length) return undefined;
      const n = hs.reduce((s, h) => s + new Set(h.identities).size, 0);
      return `${n} workload certificate(s) on ${hs.length} proxy(ies) now chain to ${short(newRoot)}`;
    },
    () => {
      const hs = holders(ads);
      const total = hs.reduce((s, h) => s + new Set(h.identities).size, 0);
      const pending = tracker.pendingFor(newRoot, hs).length;
      return `waiting for certificates from the new root: ${total - pending}/${total}`;
    },
  );
  if (reissued === undefined) {
    const pending = tracker.pendingFor(newRoot, holders(ads));
    const msg = `timed out in step 2: ${pending.length} certificate(s) still not from the new root: ${describePending(pending)}; root ${short(newRoot)} signs, the old roots stay trusted until every proxy holds a new certificate (run \`trellis ca rotate\` again to finish)`;
    stepDone('switch', t0, false, msg);
    return finish(msg);
  }
  stepDone('switch', t0, true, reissued);

  // 3. retire every other root
  t0 = Date.now();
  const others = ca.roots().filter((r) => r.fingerprint !== newRoot);
  log(`step 3/3: retiring ${others.map((r) => short(r.fingerprint)).join(', ')}`);
  const connected = new Set(ads.proxies().map((p) => p.id));
  for (const r of others) {
    const stray = tracker.unaccountedFrom(r.fingerprint, (id) => connected.has(id));
    if (stray.length) {
      report.warnings.push(
        `${stray.length} unexpired certificate(s) from root ${short(r.fingerprint)} are held by callers that are not connected (${[...new Set(stray.map((c) => c.proxyId ?? `unnamed caller of ${c.spiffeId}`))].slice(0, 3).join(', ')}); they are no longer trusted and must renew`,
      );
    }
  }
  for (const w of report.warnings) log(`warning: ${w}`);
  for (const r of others) {
    await ca.retireRoot(r.fingerprint);
    report.retired.push(r.fingerprint);
  }
  // Nothing depends on this wait (no proxy holds a certificate from a retired root): keep it short.
  const gone = await bundleAcked(t0, Math.min(deadline, Date.now() + RETIRE_ACK_WAIT_MS));
  stepDone(
    'retire',
    t0,
    true,
    `retired ${others.map((r) => short(r.fingerprint)).join(', ')}${gone ? `; ${gone}` : ' (some proxies have not acknowledged the new bundle yet)'}`,
  );
  return finish();
}
