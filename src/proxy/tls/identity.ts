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
  generation = 0;
  private bundleOverride?: string;

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
    source.on('rotated', () => this.safeRebuild());
  }

  /** The SDS ROOTCA bundle takes precedence over the bundle the CA returned with the certificate. */
  setTrustBundle(pem: string | undefined): void {
    if (pem === this.bundleOverride) return;
    this.bundleOverride = pem;
    this.safeRebuild();
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
    if (!(this.source.current() as unknown)) return;
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
