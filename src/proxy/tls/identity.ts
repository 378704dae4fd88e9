// A workload's TLS material (its SVID and the trust bundle) as node:tls SecureContexts, rebuilt on rotation.
import { EventEmitter } from 'node:events';
import { createSecureContext, type SecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { TrustBundle } from '../../identity/verify.js';

/** What the proxy needs from a certificate source (a CertificateManager or a static identity). */
export interface CertificateSource {
  /** A CertificateManager returns undefined until its first certificate is issued (the type says otherwise for callers that run after start). */
  current(): { keyPem: string; certChainPem: string[]; trustBundlePem: string; notAfter: Date | number; notBefore?: Date | number };
  on(event: 'rotated', cb: () => void): unknown;
  /** Asks for a new certificate now (a CertificateManager has it; static sources do not). */
  renewNow?(): void;
}

/** Spread of the re-issue after a root rotation switched the signing root: 1,000 proxies do not ask the CA at once. */
export const REISSUE_SPREAD_MS = 2000;
/** Re-issue requests for the same mismatch are spaced by at least this, doubling while the mismatch persists. */
const REISSUE_RETRY_MS = 5000;

/**
 * Pure: does the certificate chain (leaf first, then intermediates) lead to the first root of the bundle?
 * The control plane lists its signing root first, so "no" means the signing root changed and this
 * certificate should be re-issued before the old root is retired. Undefined when it cannot tell.
 */
export function chainsToFirstRoot(certChainPem: readonly string[], bundlePem: string): boolean | undefined {
  try {
    const first = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(bundlePem)?.[0];
    if (!first || !certChainPem.length) return undefined;
    const root = new X509Certificate(first);
    const chain = certChainPem.flatMap((p) => p.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []);
    if (!chain.length) return undefined;
    if (chain.some((p) => new X509Certificate(p).fingerprint256 === root.fingerprint256)) return true;
    const top = new X509Certificate(chain[chain.length - 1]);
    return top.checkIssued(root) && top.verify(root.publicKey);
  } catch {
    return undefined;
  }
}

export interface StaticIdentity {
  keyPem: string;
  certChainPem: string[] | string;
  trustBundlePem: string;
}

/** Wraps fixed PEMs (tests, running without a control plane) as a CertificateSource. */
export class StaticCertificateSource extends EventEmitter implements CertificateSource {
  private material: ReturnType<CertificateSource['current']>;
  constructor(id: StaticIdentity) {
    super();
    this.material = fromStatic(id);
  }
  current() {
    return this.material;
  }
  /** Replaces the material (tests of rotation). */
  set(id: StaticIdentity): void {
    this.material = fromStatic(id);
    this.emit('rotated');
  }
}

function fromStatic(id: StaticIdentity) {
  const chain = Array.isArray(id.certChainPem) ? id.certChainPem : [id.certChainPem];
  let notAfter: Date = new Date(8.64e15);
  let notBefore: Date = new Date(0);
  try {
    const leaf = new X509Certificate(chain[0]);
    notAfter = new Date(leaf.validTo);
    notBefore = new Date(leaf.validFrom);
  } catch {
    /* keep defaults: unparsable PEM fails later in createSecureContext with a clear error */
  }
  return { keyPem: id.keyPem, certChainPem: chain, trustBundlePem: id.trustBundlePem, notAfter, notBefore };
}

/**
 * One identity's contexts. `server`/`client` are swapped whenever the certificate rotates or the
 * trust bundle (SDS ROOTCA) changes; existing connections keep the context they were made with.
 */
export class WorkloadTls extends EventEmitter {
  server!: SecureContext;
  client!: SecureContext;
  /** The trust bundle for SPIFFE checks of peers (same roots OpenSSL validates against). */
  bundle!: TrustBundle;
  /** Spread and first retry spacing of re-issues (tests shorten them). */
  static reissueSpreadMs = REISSUE_SPREAD_MS;
  static reissueRetryMs = REISSUE_RETRY_MS;
  generation = 0;
  private bundleOverride?: string;
  /** Re-issue bookkeeping: the pending timer, when the last request went out, and the current spacing. */
  private reissueTimer?: NodeJS.Timeout;
  private lastReissueAt = 0;
  private reissueGap = WorkloadTls.reissueRetryMs;
  /** Re-issues asked for because the certificate did not chain to the bundle's first root (tests read it). */
  reissues = 0;

  constructor(
    readonly spiffeId: string,
    readonly trustDomain: string,
    readonly source: CertificateSource,
  ) {
    super();
    try {
      this.rebuild();
    } catch {
      // A certificate manager that has not issued yet: refresh() after it starts, or its 'rotated' event, builds the contexts.
    }
    source.on('rotated', () => {
      this.safeRebuild();
      this.checkSigningRoot();
    });
  }

  /** Stops a pending re-issue (the proxy is closing). */
  close(): void {
    if (this.reissueTimer) clearTimeout(this.reissueTimer);
    this.reissueTimer = undefined;
  }

  /** The SDS ROOTCA bundle takes precedence over the bundle the CA returned with the certificate. */
  setTrustBundle(pem: string | undefined): void {
    if (pem === this.bundleOverride) return;
    this.bundleOverride = pem;
    this.safeRebuild();
    this.checkSigningRoot();
  }

  /**
   * After a root rotation switches the signing root (it comes first in the bundle), ask for a certificate from it,
   * after a random delay. Spaced retries cover a renewal that raced the switch and came back from the old root.
   */
  /** The source's material, undefined before the first certificate (some sources throw until then). */
  private held(): ReturnType<CertificateSource['current']> | undefined {
    try {
      return this.source.current() as ReturnType<CertificateSource['current']> | undefined;
    } catch {
      return undefined;
    }
  }

  private checkSigningRoot(): void {
    const renew = this.source.renewNow;
    if (typeof renew !== 'function') return;
    const m = this.held();
    if (!m) return;
    const bundle = this.bundleOverride;
    if (!bundle || chainsToFirstRoot(m.certChainPem, bundle) !== false) {
      this.reissueGap = WorkloadTls.reissueRetryMs;
      if (this.reissueTimer) clearTimeout(this.reissueTimer);
      this.reissueTimer = undefined;
      return;
    }
    if (this.reissueTimer) return;
    const sinceLast = Date.now() - this.lastReissueAt;
    const wait = Math.max(Math.random() * WorkloadTls.reissueSpreadMs, this.lastReissueAt ? this.reissueGap - sinceLast : 0);
    if (this.lastReissueAt && sinceLast < this.reissueGap) this.reissueGap = Math.min(this.reissueGap * 2, 300_000);
    this.reissueTimer = setTimeout(() => {
      this.reissueTimer = undefined;
      const cur = this.held();
      if (!cur || !this.bundleOverride || chainsToFirstRoot(cur.certChainPem, this.bundleOverride) !== false) return;
      this.lastReissueAt = Date.now();
      this.reissues++;
      this.emit('reissue');
      renew.call(this.source);
    }, wait);
    this.reissueTimer.unref?.();
  }

  bundlePem(): string {
    return this.bundleOverride ?? this.source.current().trustBundlePem;
  }

  notAfter(): Date {
    try {
      return new Date(this.source.current().notAfter);
    } catch {
      return new Date(0);
    }
  }

  /** True once contexts exist (a certificate was available). */
  hasCertificate(): boolean {
    return this.generation > 0;
  }

  refresh(): void {
    this.safeRebuild();
  }

  private safeRebuild(): void {
    // A bundle can arrive over SDS before the first certificate: the 'rotated' event builds the contexts then.
    let current: unknown;
    try {
      current = this.source.current();
    } catch {
      current = undefined; // some sources throw until they have issued
    }
    if (!current) return;
    try {
      this.rebuild();
    } catch (err) {
      this.emit('error', err);
    }
  }

  private rebuild(): void {
    const m = this.source.current();
    const bundlePem = this.bundlePem();
    const opts = { key: m.keyPem, cert: m.certChainPem.join('\n'), ca: bundlePem };
    this.bundle = TrustBundle.fromPem(this.trustDomain, bundlePem);
    this.server = createSecureContext(opts);
    this.client = createSecureContext(opts);
    this.generation++;
    this.emit('updated');
  }
}
