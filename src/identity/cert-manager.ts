// Keeps a workload's SVID fresh: first certificate with retries, renewal at half-life with jitter, backoff while the CA is away.
import { EventEmitter } from 'node:events';
import { requestCertificate } from './ca-client.js';
import { generateKeyAndCsr } from './keys.js';
import { pemToDers } from './pem.js';
import { parseCertificate } from './x509.js';
import { DEFAULT_SVID_TTL_SECONDS } from './ca.js';

export interface CertificateMaterial {
  keyPem: string;
  certChainPem: string[];
  trustBundlePem: string;
  notBefore: Date;
  notAfter: Date;
}

export interface CertificateManagerOptions {
  caAddress: string;
  token: string;
  spiffeId: string;
  ttlSeconds?: number;
  /** Renew after this fraction of the lifetime (default 0.5). */
  renewFraction?: number;
  /** Spread renewals by up to +-this fraction of the renewal delay (default 0.1). */
  jitterFraction?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  deadlineMs?: number;
  /** Sent with each CSR so the control plane can tell which proxy holds which certificate. */
  proxyId?: string;
  request?: typeof requestCertificate;
}

/** notBefore/notAfter of the first certificate in a PEM. */
export function certificateExpiry(pem: string): { notBefore: Date; notAfter: Date } {
  const der = pemToDers(pem)[0];
  if (!der) throw new Error('no PEM certificate found');
  const info = parseCertificate(der);
  return { notBefore: info.notBefore, notAfter: info.notAfter };
}

/**
 * Events: 'rotated' (material) after every new certificate, the first included;
 * 'renewFailed' ({ error, attempt, retryInMs }) when a request fails. Never 'error'.
 */
export class CertificateManager extends EventEmitter {
  private material: CertificateMaterial | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private attempt = 0;
  private renewSeq = 0;
  private readonly o: Required<Omit<CertificateManagerOptions, 'request' | 'proxyId'>> & {
    request: typeof requestCertificate;
    proxyId?: string;
  };
  private firstWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(opts: CertificateManagerOptions) {
    super();
    this.o = {
      ttlSeconds: DEFAULT_SVID_TTL_SECONDS,
      renewFraction: 0.5,
      jitterFraction: 0.1,
      minBackoffMs: 500,
      maxBackoffMs: 30_000,
      deadlineMs: 10_000,
      request: requestCertificate,
      ...stripUndefined(opts),
    } as CertificateManager['o'];
  }

  /** Resolves once the first certificate is in hand (retrying with backoff meanwhile). */
  start(): Promise<void> {
    if (this.material) return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.firstWaiters.push({ resolve, reject }));
    if (!this.timer && this.firstWaiters.length === 1) {
      this.stopped = false;
      void this.renew();
    }
    return p;
  }

  current(): CertificateMaterial | undefined {
    return this.material;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const waiters = this.firstWaiters;
    this.firstWaiters = [];
    for (const w of waiters) w.reject(new Error('certificate manager stopped before the first certificate'));
  }

  /** Renews now (e.g. after the trust bundle changed); the usual schedule follows. */
  renewNow(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    void this.renew();
  }

  private async renew(): Promise<void> {
    // renewNow() can start a renewal while another is in flight; only the latest one's answer counts,
    // or an older answer (say, from a root being rotated out) could land last and win.
    const seq = ++this.renewSeq;
    try {
      const { keyPem, csrPem } = await generateKeyAndCsr(this.o.spiffeId);
      const res = await this.o.request(this.o.caAddress, this.o.token, csrPem, this.o.ttlSeconds, this.o.deadlineMs, this.o.proxyId);
      if (this.stopped || seq !== this.renewSeq) return;
      const received = Date.now();
      const { notBefore, notAfter } = certificateExpiry(res.certChainPem[0]);
      this.material = { keyPem, certChainPem: res.certChainPem, trustBundlePem: res.trustBundlePem, notBefore, notAfter };
      this.attempt = 0;
      // The CA back-dates notBefore, so the lifetime counts from when we received the certificate.
      const life = Math.max(0, notAfter.getTime() - received);
      const base = life * this.o.renewFraction;
      const jitter = base * this.o.jitterFraction * (Math.random() * 2 - 1);
      this.schedule(Math.max(0, base + jitter));
      this.emit('rotated', this.material);
      const waiters = this.firstWaiters;
      this.firstWaiters = [];
      for (const w of waiters) w.resolve();
    } catch (err) {
      if (this.stopped || seq !== this.renewSeq) return;
      this.attempt++;
      let delay = Math.min(this.o.maxBackoffMs, this.o.minBackoffMs * 2 ** (this.attempt - 1));
      delay = delay * (1 - this.o.jitterFraction * Math.random());
      // With a certificate in hand, never wait past its expiry to try again.
      if (this.material) delay = Math.min(delay, Math.max(this.o.minBackoffMs, this.material.notAfter.getTime() - Date.now()));
      this.schedule(delay);
      this.emit('renewFailed', { error: err as Error, attempt: this.attempt, retryInMs: Math.round(delay) });
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.renew();
    }, Math.min(ms, 2 ** 31 - 1));
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
