// SPIFFE X509-SVID peer verification: SAN read from DER, trust domain picked from the leaf, chain checked against that domain's roots.
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type { TLSSocket, PeerCertificate, DetailedPeerCertificate } from 'node:tls';
import { parseCertificate, KU, OID, SIG_ALGS, type CertInfo } from './x509.js';
import { pemToDers, derToPem } from './pem.js';
import { parseSpiffeId, trustDomainProblem } from './spiffe.js';

export type VerifyFailure =
  | 'no_certificate'
  | 'multiple_uri_sans'
  | 'no_uri_san'
  | 'invalid_spiffe_id'
  | 'leaf_is_ca'
  | 'leaf_key_cert_sign'
  | 'key_usage_missing'
  | 'key_usage_not_critical'
  | 'eku_missing_auth'
  | 'expired'
  | 'not_yet_valid'
  | 'untrusted_chain'
  | 'trust_domain_mismatch';

export type VerifyResult =
  | { ok: true; spiffeId: string; trustDomain: string }
  | { ok: false; reason: VerifyFailure; detail: string };

/** Rejections counted by reason, for trellis_svid_rejections_total{reason}. */
export const verifyFailures = new Map<VerifyFailure, number>();

interface Anchor {
  info: CertInfo;
  key: KeyObject;
  pem: string;
}

const MAX_CHAIN = 8;
const CACHE_MAX = 1024;

/** Trusted roots per trust domain. Immutable: build a new one when roots change. */
export class TrustBundle {
  private readonly anchors = new Map<string, Anchor[]>();
  /** Chains that already passed path validation, by hash of their DER: skips the signature checks next time. */
  readonly verifiedChains = new Map<string, { notBefore: number; notAfter: number }>();

  constructor(map: Record<string, string[]>) {
    for (const [td, pems] of Object.entries(map)) {
      const problem = trustDomainProblem(td);
      if (problem) throw new Error(`trust bundle: ${problem}`);
      const list: Anchor[] = [];
      for (const pem of pems) {
        for (const d of pemToDers(pem)) {
          const info = parseCertificate(d);
          list.push({ info, key: createPublicKey({ key: info.spkiRaw, format: 'der', type: 'spki' }), pem: derToPem(d) });
        }
      }
      this.anchors.set(td, list);
    }
  }

  static fromPem(trustDomain: string, pemConcat: string): TrustBundle {
    return new TrustBundle({ [trustDomain]: [pemConcat] });
  }

  /** The root PEMs trusted for a trust domain (empty when unknown). */
  rootsFor(trustDomain: string): string[] {
    return (this.anchors.get(trustDomain) ?? []).map((a) => a.pem);
  }

  /** @internal */
  anchorsFor(trustDomain: string): Anchor[] | undefined {
    return this.anchors.get(trustDomain);
  }

  trustDomains(): string[] {
    return [...this.anchors.keys()];
  }

  /** Every root of every trust domain, one PEM each. */
  allPems(): string[] {
    return [...this.anchors.values()].flat().map((a) => a.pem);
  }
}

/**
 * Options to spread into node:tls server/client options: OpenSSL validates chains against every
 * root; verifySvid then applies the SPIFFE rules. SVIDs carry no DNS names, so the client-side
 * hostname check is replaced by verifySvid.
 */
export function tlsOptionsForBundle(bundle: TrustBundle): { ca: string[]; checkServerIdentity: () => undefined } {
  return { ca: bundle.allPems(), checkServerIdentity: () => undefined };
}

/** The peer's chain as DER, leaf first (whatever the peer sent, plus the root if OpenSSL attached it). */
export function peerChainDer(socket: TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  let c: PeerCertificate | DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  while (c && c.raw && c.raw.length > 0 && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    out.push(c.raw);
    c = (c as DetailedPeerCertificate).issuerCertificate;
  }
  return out;
}

function fail(reason: VerifyFailure, detail: string): VerifyResult {
  verifyFailures.set(reason, (verifyFailures.get(reason) ?? 0) + 1);
  return { ok: false, reason, detail };
}

function signedBy(child: CertInfo, key: KeyObject): boolean {
  const digest = SIG_ALGS[child.sigAlg];
  if (digest === undefined) return false;
  try {
    return cryptoVerify(digest, child.tbs, key, child.signature);
  } catch {
    return false;
  }
}

function issuedBy(child: CertInfo, issuer: CertInfo): boolean {
  if (!child.issuerRaw.equals(issuer.subjectRaw)) return false;
  if (child.authorityKeyId && issuer.subjectKeyId && !child.authorityKeyId.equals(issuer.subjectKeyId)) return false;
  return true;
}

function timeProblem(info: CertInfo, now: number, what: string): { reason: VerifyFailure; detail: string } | undefined {
  if (now > info.notAfter.getTime()) return { reason: 'expired', detail: `${what} expired at ${info.notAfter.toISOString()}` };
  if (now < info.notBefore.getTime()) {
    return { reason: 'not_yet_valid', detail: `${what} is not valid before ${info.notBefore.toISOString()}` };
  }
  return undefined;
}

/** Checks a peer's SVID chain (leaf first) against the bundle; counts each rejection by reason. */
export function verifySvid(
  chainDer: Buffer[],
  bundle: TrustBundle,
  opts: { expectedTrustDomain?: string; now?: Date } = {},
): VerifyResult {
  if (!chainDer || chainDer.length === 0 || !chainDer[0] || chainDer[0].length === 0) {
    return fail('no_certificate', 'the peer presented no certificate');
  }
  let leaf: CertInfo;
  try {
    leaf = parseCertificate(chainDer[0]);
  } catch (err) {
    return fail('untrusted_chain', `the peer certificate cannot be parsed: ${(err as Error).message}`);
  }
  if (leaf.uriSans.length === 0) return fail('no_uri_san', 'the certificate has no URI SAN (no SPIFFE ID)');
  if (leaf.uriSans.length > 1) {
    return fail('multiple_uri_sans', `the certificate has ${leaf.uriSans.length} URI SANs; an SVID has exactly one`);
  }
  const spiffeId = leaf.uriSans[0];
  let trustDomain: string;
  try {
    trustDomain = parseSpiffeId(spiffeId).trustDomain;
  } catch (err) {
    return fail('invalid_spiffe_id', (err as Error).message);
  }
  if (leaf.isCa) return fail('leaf_is_ca', `${spiffeId}: the leaf certificate is a CA (basicConstraints CA:TRUE)`);
  if (leaf.keyUsage !== undefined && leaf.keyUsage & (KU.keyCertSign | KU.cRLSign)) {
    return fail('leaf_key_cert_sign', `${spiffeId}: the leaf's key usage allows signing certificates or CRLs`);
  }
  if (leaf.keyUsage === undefined || !(leaf.keyUsage & KU.digitalSignature)) {
    return fail('key_usage_missing', `${spiffeId}: the leaf lacks key usage digitalSignature`);
  }
  if (!leaf.keyUsageCritical) return fail('key_usage_not_critical', `${spiffeId}: the key usage extension is not critical`);
  const eku = leaf.extKeyUsage;
  if (eku && !eku.includes(OID.anyExtendedKeyUsage) && !(eku.includes(OID.serverAuth) && eku.includes(OID.clientAuth))) {
    return fail('eku_missing_auth', `${spiffeId}: extended key usage must include both TLS server and client authentication`);
  }
  if (opts.expectedTrustDomain !== undefined && opts.expectedTrustDomain !== trustDomain) {
    return fail('trust_domain_mismatch', `${spiffeId} is in trust domain "${trustDomain}", expected "${opts.expectedTrustDomain}"`);
  }
  const anchors = bundle.anchorsFor(trustDomain);
  if (!anchors || anchors.length === 0) {
    return fail('trust_domain_mismatch', `${spiffeId}: no trusted roots for trust domain "${trustDomain}"`);
  }
  const now = (opts.now ?? new Date()).getTime();
  const leafTime = timeProblem(leaf, now, `${spiffeId}: the certificate`);
  if (leafTime) return fail(leafTime.reason, leafTime.detail);

  const cacheKey = chainKey(chainDer, trustDomain);
  const cached = bundle.verifiedChains.get(cacheKey);
  if (cached && now >= cached.notBefore && now <= cached.notAfter) return { ok: true, spiffeId, trustDomain };

  const path = validatePath(leaf, chainDer, anchors, now);
  if (!path.ok) return fail(path.reason, `${spiffeId}: ${path.detail}`);
  if (bundle.verifiedChains.size >= CACHE_MAX) bundle.verifiedChains.delete(bundle.verifiedChains.keys().next().value!);
  bundle.verifiedChains.set(cacheKey, path.window);
  return { ok: true, spiffeId, trustDomain };
}

function chainKey(chainDer: Buffer[], td: string): string {
  const h = createHash('sha256').update(td);
  for (const d of chainDer) h.update(d);
  return h.digest('base64');
}

type PathResult =
  | { ok: true; window: { notBefore: number; notAfter: number } }
  | { ok: false; reason: VerifyFailure; detail: string };

/** Walks from the leaf through the presented intermediates to one of the trust domain's roots. */
function validatePath(leaf: CertInfo, chainDer: Buffer[], anchors: Anchor[], now: number): PathResult {
  const pool: (CertInfo | undefined)[] = chainDer.slice(1, MAX_CHAIN + 1).map((d) => {
    try {
      return parseCertificate(d);
    } catch {
      return undefined;
    }
  });
  const used = new Set<number>();
  let cur = leaf;
  let notBefore = leaf.notBefore.getTime();
  let notAfter = leaf.notAfter.getTime();
  let problem: { reason: VerifyFailure; detail: string } | undefined;
  for (let depth = 0; depth <= MAX_CHAIN; depth++) {
    for (const a of anchors) {
      if (!issuedBy(cur, a.info) || !signedBy(cur, a.key)) continue;
      const t = timeProblem(a.info, now, 'the root');
      if (t) {
        problem = t;
        continue;
      }
      notBefore = Math.max(notBefore, a.info.notBefore.getTime());
      notAfter = Math.min(notAfter, a.info.notAfter.getTime());
      return { ok: true, window: { notBefore, notAfter } };
    }
    let next: CertInfo | undefined;
    for (let i = 0; i < pool.length && !next; i++) {
      const c = pool[i];
      if (!c || used.has(i) || !issuedBy(cur, c)) continue;
      if (!c.isCa || (c.keyUsage !== undefined && !(c.keyUsage & KU.keyCertSign))) continue;
      if (!signedBy(cur, createPublicKey({ key: c.spkiRaw, format: 'der', type: 'spki' }))) continue;
      const t = timeProblem(c, now, 'an intermediate certificate');
      if (t) {
        problem = t;
        continue;
      }
      used.add(i);
      next = c;
    }
    if (!next) break;
    notBefore = Math.max(notBefore, next.notBefore.getTime());
    notAfter = Math.min(notAfter, next.notAfter.getTime());
    cur = next;
  }
  if (problem) return { ok: false, ...problem };
  return { ok: false, reason: 'untrusted_chain', detail: 'the chain does not lead to a trusted root of its trust domain' };
}
