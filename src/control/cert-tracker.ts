// Which proxy holds which workload certificate (from the CA service's signatures): for status, check and root rotation.
import type { SignedInfo } from '../identity/ca-service.js';

export interface TrackedCert {
  /** The proxy that asked (its xDS node id), undefined when the caller did not say (e.g. `trellis cert`). */
  proxyId?: string;
  spiffeId: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** When it was signed (ms epoch): lifetimes count from here, since the CA back-dates notBefore. */
  issuedAt: number;
  rootFingerprint?: string;
}

/** A connected proxy and the identities it hosts (from the registry). */
export interface HolderProxy {
  id: string;
  identities: string[];
}

export interface CertProblem {
  kind: 'expired' | 'not_renewed';
  proxyId: string;
  spiffeId: string;
  notAfter: Date;
  /** Fraction of the lifetime used (1 = expired). */
  used: number;
}

export interface PendingHolder {
  proxyId: string;
  spiffeId: string;
  /** The root its current certificate chains to; undefined when this control plane has not signed one for it. */
  rootFingerprint?: string;
}

/** Past this fraction of its lifetime a certificate should have been renewed (renewal is at half-life). */
export const NOT_RENEWED_FRACTION = 0.75;
const PRUNE_EVERY_MS = 60_000;

/**
 * The latest certificate per (proxy, identity). A proxy renews by replacing its certificate, so the latest
 * signature is what it serves with. Entries of proxies that went away are dropped once their certificate expired.
 */
export class CertTracker {
  private readonly latest = new Map<string, TrackedCert>();
  private lastPrune = 0;

  constructor(
    private readonly opts: {
      /** Is this proxy connected now? Used only to forget entries of proxies that left. */
      isConnected?: (proxyId: string) => boolean;
      now?: () => number;
    } = {},
  ) {}

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  /** Records a signature (the CA service's onSigned). */
  record(spiffeId: string, info: SignedInfo): void {
    const now = this.now();
    const cert: TrackedCert = {
      proxyId: info.proxyId || undefined,
      spiffeId,
      serial: info.serial,
      notBefore: info.notBefore,
      notAfter: info.notAfter,
      issuedAt: now,
      rootFingerprint: info.rootFingerprint,
    };
    this.latest.set(`${cert.proxyId ?? ''}|${spiffeId}`, cert);
    if (now - this.lastPrune > PRUNE_EVERY_MS) this.prune();
  }

  /** Drops expired entries of proxies that are not connected (and of callers that never said who they are). */
  prune(): void {
    const now = this.now();
    this.lastPrune = now;
    const connected = this.opts.isConnected;
    for (const [k, c] of this.latest) {
      if (c.notAfter.getTime() > now) continue;
      if (c.proxyId && connected?.(c.proxyId)) continue;
      this.latest.delete(k);
    }
  }

  /** Every tracked certificate (latest per proxy and identity). */
  all(): TrackedCert[] {
    return [...this.latest.values()];
  }

  forProxy(proxyId: string): TrackedCert[] {
    return this.all().filter((c) => c.proxyId === proxyId);
  }

  /** The earliest expiry among a proxy's certificates, undefined when none is known. */
  proxyExpiry(proxyId: string): Date | undefined {
    let min: number | undefined;
    for (const c of this.latest.values()) if (c.proxyId === proxyId && (min === undefined || c.notAfter.getTime() < min)) min = c.notAfter.getTime();
    return min === undefined ? undefined : new Date(min);
  }

  /**
   * The identities of connected proxies that do not yet hold a certificate from `rootFingerprint`: either theirs
   * chains to another root, or this control plane has not signed one for them. Empty = safe to retire other roots.
   */
  pendingFor(rootFingerprint: string, proxies: readonly HolderProxy[]): PendingHolder[] {
    const out: PendingHolder[] = [];
    for (const p of proxies) {
      for (const spiffeId of new Set(p.identities)) {
        const c = this.latest.get(`${p.id}|${spiffeId}`);
        if (!c || c.rootFingerprint !== rootFingerprint) out.push({ proxyId: p.id, spiffeId, rootFingerprint: c?.rootFingerprint });
      }
    }
    return out;
  }

  /** Unexpired certificates from `rootFingerprint` whose holder is unknown or not connected (they stop working when it is retired). */
  unaccountedFrom(rootFingerprint: string, connected: (proxyId: string) => boolean): TrackedCert[] {
    const now = this.now();
    return this.all().filter(
      (c) => c.rootFingerprint === rootFingerprint && c.notAfter.getTime() > now && (!c.proxyId || !connected(c.proxyId)),
    );
  }

  /** Connected proxies holding an expired certificate, or one past 75% of its lifetime (renewal is at half-life). */
  problems(connected: (proxyId: string) => boolean): CertProblem[] {
    const now = this.now();
    const out: CertProblem[] = [];
    for (const c of this.latest.values()) {
      if (!c.proxyId || !connected(c.proxyId)) continue;
      const life = c.notAfter.getTime() - c.issuedAt;
      const used = life > 0 ? (now - c.issuedAt) / life : 1;
      if (now >= c.notAfter.getTime()) out.push({ kind: 'expired', proxyId: c.proxyId, spiffeId: c.spiffeId, notAfter: c.notAfter, used: 1 });
      else if (used > NOT_RENEWED_FRACTION) out.push({ kind: 'not_renewed', proxyId: c.proxyId, spiffeId: c.spiffeId, notAfter: c.notAfter, used });
    }
    return out.sort((a, b) => a.proxyId.localeCompare(b.proxyId) || a.spiffeId.localeCompare(b.spiffeId));
  }
}
