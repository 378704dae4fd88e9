// The built-in certificate authority: a persisted root (or an operator's root/intermediate), fast SVID signing, root rotation.
import { EventEmitter } from 'node:events';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parseCsr, type ParsedCsr } from './csr.js';
import { derToPem, pemToDers } from './pem.js';
import { parseSpiffeId, trustDomainProblem } from './spiffe.js';
import { KU, OID, SIG_ALGS, buildCertificate, encodeName, ext, keyIdentifier, parseCertificate, signatureAlgorithmFor, type CertInfo } from './x509.js';
import { writeFileAtomicSync } from './fsutil.js';

export class CaError extends Error {}

export interface CaOptions {
  stateDir: string;
  trustDomain: string;
  /** PEM: the signing certificate first, then any intermediates, ending with the self-signed root. */
  caCertFile?: string;
  caKeyFile?: string;
}

export interface RootInfo {
  pem: string;
  notAfter: Date;
  notBefore: Date;
  fingerprint: string;
  /** True for the root that currently signs (directly or through the operator's intermediates). */
  signing: boolean;
}

interface Root {
  fingerprint: string;
  pem: string;
  info: CertInfo;
  key?: KeyObject;
}

interface Signer {
  key: KeyObject;
  alg: ReturnType<typeof signatureAlgorithmFor>;
  issuerRaw: Buffer;
  keyId: Buffer;
  notAfter: Date;
  /** Certificates sent after the leaf (the operator's intermediates). */
  chainPems: string[];
}

interface StateFile {
  version: 1;
  trustDomain: string;
  signing: string;
  roots: { fingerprint: string; cert: string; key: string }[];
}

export const DEFAULT_SVID_TTL_SECONDS = 24 * 3600;
const ROOT_TTL_MS = 10 * 365.25 * 24 * 3600 * 1000;
const BACKDATE_MS = 5 * 60 * 1000;
const SUBJECT = encodeName([[OID.organization, 'trellis']]);

export function fingerprintOf(certDer: Buffer): string {
  return createHash('sha256').update(certDer).digest('hex');
}

function selfSigned(c: CertInfo): boolean {
  if (!c.issuerRaw.equals(c.subjectRaw)) return false;
  return signedBy(c, c.spkiRaw);
}

function signedBy(c: CertInfo, issuerSpki: Buffer): boolean {
  if (!(c.sigAlg in SIG_ALGS)) return false;
  try {
    return cryptoVerify(SIG_ALGS[c.sigAlg], c.tbs, createPublicKey({ key: issuerSpki, format: 'der', type: 'spki' }), c.signature);
  } catch {
    return false;
  }
}

function randomSerial(): Buffer {
  const b = randomBytes(16);
  b[0] = (b[0] & 0x7f) | 0x40; // positive, full length, never zero
  return b;
}

export class CertificateAuthority extends EventEmitter {
  private rootList: Root[] = [];
  private signingFp = '';
  private signer!: Signer;
  private intermediatePems: string[] = [];
  private bundleCache = '';

  private constructor(
    readonly trustDomain: string,
    private readonly caDir: string,
    /** True when the operator supplied the CA: rotation primitives are then refused. */
    readonly operatorProvided: boolean,
  ) {
    super();
  }

  static async loadOrCreate(opts: CaOptions): Promise<CertificateAuthority> {
    const td = opts.trustDomain;
    const problem = trustDomainProblem(td ?? '');
    if (problem) throw new CaError(`cannot start the CA: ${problem}`);
    const caDir = join(opts.stateDir, 'ca');
    if (opts.caCertFile || opts.caKeyFile) {
      if (!opts.caCertFile || !opts.caKeyFile) throw new CaError('an operator-provided CA needs both the certificate file and the key file');
      const ca = new CertificateAuthority(td, caDir, true);
      ca.loadOperator(opts.caCertFile, opts.caKeyFile);
      return ca;
    }
    const ca = new CertificateAuthority(td, caDir, false);
    if (existsSync(join(caDir, 'state.json'))) ca.loadState();
    else {
      const root = ca.generateRoot();
      ca.rootList = [root];
      ca.signingFp = root.fingerprint;
      ca.saveState();
    }
    ca.refresh();
    return ca;
  }

  // ---- signing ----

  /**
   * Signs a CSR (PEM or already parsed and verified) for exactly `spiffeId`: whatever names
   * the CSR asks for are ignored. Returns the chain, leaf first.
   */
  async signCsr(
    csr: string | ParsedCsr,
    opts: { spiffeId: string; ttlSeconds?: number },
  ): Promise<{ certChainPem: string[]; notAfter: Date; notBefore: Date; serial: string }> {
    const parsed = typeof csr === 'string' ? parseCsr(csr) : csr;
    const id = parseSpiffeId(opts.spiffeId);
    if (id.trustDomain !== this.trustDomain) {
      throw new CaError(`this CA signs for trust domain "${this.trustDomain}", not "${id.trustDomain}"`);
    }
    const ttl = opts.ttlSeconds ?? DEFAULT_SVID_TTL_SECONDS;
    if (!Number.isFinite(ttl) || ttl <= 0) throw new CaError(`the certificate lifetime must be positive seconds, got ${ttl}`);
    const now = Date.now();
    const s = this.signer;
    const notBefore = new Date(Math.floor((now - BACKDATE_MS) / 1000) * 1000);
    const notAfter = new Date(Math.min(Math.floor((now + ttl * 1000) / 1000) * 1000, s.notAfter.getTime()));
    const serial = randomSerial();
    const der = buildCertificate(
      {
        serial,
        issuerRaw: s.issuerRaw,
        subjectRaw: SUBJECT,
        notBefore,
        notAfter,
        spkiRaw: parsed.spkiRaw,
        extensions: [
          ext.basicConstraints(false, true),
          ext.keyUsage(KU.digitalSignature, true),
          ext.extKeyUsage([OID.serverAuth, OID.clientAuth]),
          ext.uriSans([opts.spiffeId]),
          ext.subjectKeyId(keyIdentifier(parsed.spkiRaw)),
          ext.authorityKeyId(s.keyId),
        ],
      },
      s.key,
      s.alg,
    );
    return { certChainPem: [derToPem(der), ...s.chainPems], notAfter, notBefore, serial: serial.toString('hex') };
  }

  // ---- trust ----

  /**
   * Every trusted root, concatenated PEM, the signing root first: a proxy whose certificate does not chain to the
   * first root of the bundle knows a rotation switched the signing root and asks for a new certificate.
   */
  trustBundlePem(): string {
    return this.bundleCache;
  }

  roots(): RootInfo[] {
    return this.rootList.map((r) => ({
      pem: r.pem,
      notAfter: r.info.notAfter,
      notBefore: r.info.notBefore,
      fingerprint: r.fingerprint,
      signing: r.fingerprint === this.signingFp,
    }));
  }

  /** The operator's intermediates (signing certificate first); empty when a root signs directly. */
  intermediates(): { pem: string; notAfter: Date; fingerprint: string }[] {
    return this.intermediatePems.map((pem) => {
      const d = pemToDers(pem)[0];
      return { pem, notAfter: parseCertificate(d).notAfter, fingerprint: fingerprintOf(d) };
    });
  }

  /** When the certificate that signs leaves expires (root or intermediate). */
  signingCertNotAfter(): Date {
    return this.signer.notAfter;
  }

  // ---- root rotation ----

  /** Generates a new root and trusts it alongside the others; the signing root does not change. */
  async addRoot(): Promise<RootInfo> {
    this.requireManaged('add a root');
    const root = this.generateRoot();
    this.rootList.push(root);
    this.saveState();
    this.refresh();
    return this.roots().find((r) => r.fingerprint === root.fingerprint)!;
  }

  /** Makes a trusted root the one that signs new certificates. */
  async setSigningRoot(fingerprint: string): Promise<void> {
    this.requireManaged('change the signing root');
    const root = this.findRoot(fingerprint);
    this.signingFp = root.fingerprint;
    this.saveState();
    this.refresh();
  }

  /** Stops trusting a root and deletes its key. The signing root cannot be retired. */
  async retireRoot(fingerprint: string): Promise<void> {
    this.requireManaged('retire a root');
    const root = this.findRoot(fingerprint);
    if (root.fingerprint === this.signingFp) {
      throw new CaError(`root ${root.fingerprint.slice(0, 16)} still signs certificates: make another root the signing root first`);
    }
    this.rootList = this.rootList.filter((r) => r !== root);
    this.saveState();
    for (const f of [this.certFile(root.fingerprint), this.keyFile(root.fingerprint)]) {
      try {
        unlinkSync(f);
      } catch {
        /* already gone */
      }
    }
    this.refresh();
  }

  // ---- internals ----

  /** Accepts a full SHA-256 hex fingerprint (colons allowed) or a unique prefix of at least 8 characters. */
  private findRoot(fingerprint: string): Root {
    const fp = fingerprint.toLowerCase().replace(/:/g, '');
    const matches = fp.length >= 8 ? this.rootList.filter((r) => r.fingerprint.startsWith(fp)) : [];
    if (matches.length === 1) return matches[0];
    if (matches.length > 1) throw new CaError(`fingerprint "${fingerprint}" matches several roots; give more characters`);
    throw new CaError(`no trusted root has fingerprint "${fingerprint}" (known: ${this.rootList.map((r) => r.fingerprint.slice(0, 16)).join(', ')})`);
  }

  private requireManaged(what: string): void {
    if (this.operatorProvided) throw new CaError(`cannot ${what}: the CA was provided by the operator (replace its files instead)`);
  }

  private certFile(fp: string): string {
    return join(this.caDir, `root-${fp.slice(0, 16)}.pem`);
  }

  private keyFile(fp: string): string {
    return join(this.caDir, `root-${fp.slice(0, 16)}.key`);
  }

  private generateRoot(): Root {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spki = publicKey.export({ format: 'der', type: 'spki' });
    const now = Date.now();
    const name = encodeName([
      [OID.organization, 'trellis'],
      [OID.commonName, `trellis root CA ${this.trustDomain} ${new Date(now).toISOString().slice(0, 10)} ${randomBytes(3).toString('hex')}`],
    ]);
    const kid = keyIdentifier(spki);
    const der = buildCertificate(
      {
        serial: randomSerial(),
        issuerRaw: name,
        subjectRaw: name,
        notBefore: new Date(Math.floor((now - BACKDATE_MS) / 1000) * 1000),
        notAfter: new Date(Math.floor((now + ROOT_TTL_MS) / 1000) * 1000),
        spkiRaw: spki,
        extensions: [
          ext.basicConstraints(true, true),
          ext.keyUsage(KU.keyCertSign | KU.cRLSign, true),
          ext.subjectKeyId(kid),
        ],
      },
      privateKey,
    );
    const fingerprint = fingerprintOf(der);
    const pem = derToPem(der);
    writeFileAtomicSync(this.keyFile(fingerprint), privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, 0o600);
    writeFileAtomicSync(this.certFile(fingerprint), pem);
    return { fingerprint, pem, info: parseCertificate(der), key: privateKey };
  }

  private saveState(): void {
    const state: StateFile = {
      version: 1,
      trustDomain: this.trustDomain,
      signing: this.signingFp,
      roots: this.rootList.map((r) => ({
        fingerprint: r.fingerprint,
        cert: `root-${r.fingerprint.slice(0, 16)}.pem`,
        key: `root-${r.fingerprint.slice(0, 16)}.key`,
      })),
    };
    writeFileAtomicSync(join(this.caDir, 'state.json'), `${JSON.stringify(state, null, 2)}\n`);
  }

  private loadState(): void {
    const file = join(this.caDir, 'state.json');
    let state: StateFile;
    try {
      state = JSON.parse(readFileSync(file, 'utf8')) as StateFile;
    } catch (err) {
      throw new CaError(`${file}: cannot read the CA state (${(err as Error).message})`);
    }
    if (!Array.isArray(state.roots) || state.roots.length === 0) throw new CaError(`${file}: no roots listed`);
    this.rootList = state.roots.map((r) => {
      const certPath = join(this.caDir, r.cert);
      const keyPath = join(this.caDir, r.key);
      const { der, key } = readPair(certPath, keyPath);
      return { fingerprint: fingerprintOf(der), pem: derToPem(der), info: parseCertificate(der), key };
    });
    const signing = this.rootList.find((r) => r.fingerprint === state.signing);
    if (!signing) throw new CaError(`${file}: the signing root ${state.signing} is not among the roots`);
    this.signingFp = signing.fingerprint;
  }

  private loadOperator(certFile: string, keyFile: string): void {
    const { ders, key } = readChainAndKey(certFile, keyFile);
    const infos = ders.map((d) => {
      try {
        return parseCertificate(d);
      } catch (err) {
        throw new CaError(`${certFile}: a certificate cannot be parsed (${(err as Error).message})`);
      }
    });
    const leaf = infos[0];
    if (!leaf.isCa || (leaf.keyUsage !== undefined && !(leaf.keyUsage & KU.keyCertSign))) {
      throw new CaError(`${certFile}: the first certificate is not a CA certificate (needs CA:TRUE and keyCertSign)`);
    }
    const pub = createPublicKey(key).export({ format: 'der', type: 'spki' });
    if (!pub.equals(leaf.spkiRaw)) throw new CaError(`${keyFile}: the key does not belong to the first certificate in ${certFile}`);
    const last = infos[infos.length - 1];
    if (!selfSigned(last)) {
      throw new CaError(`${certFile}: the chain must end with its self-signed root (found no root after the signing certificate)`);
    }
    for (let i = 0; i + 1 < infos.length; i++) {
      if (!infos[i].issuerRaw.equals(infos[i + 1].subjectRaw) || !signedBy(infos[i], infos[i + 1].spkiRaw)) {
        throw new CaError(`${certFile}: certificate ${i + 1} is not issued by certificate ${i + 2}; list them signing certificate first, root last`);
      }
    }
    const rootDer = ders[ders.length - 1];
    this.rootList = [{ fingerprint: fingerprintOf(rootDer), pem: derToPem(rootDer), info: last, key: infos.length === 1 ? key : undefined }];
    this.signingFp = this.rootList[0].fingerprint;
    this.intermediatePems = ders.slice(0, -1).map((d) => derToPem(d));
    this.signer = this.makeSigner(key, leaf, this.intermediatePems, minNotAfter(infos));
    this.bundleCache = this.rootList[0].pem;
  }

  private makeSigner(key: KeyObject, cert: CertInfo, chainPems: string[], notAfter: Date): Signer {
    return {
      key,
      alg: signatureAlgorithmFor(key),
      issuerRaw: cert.subjectRaw,
      keyId: cert.subjectKeyId ?? keyIdentifier(cert.spkiRaw),
      notAfter,
      chainPems,
    };
  }

  /** Recomputes the signer and bundle after a change and tells listeners ('changed'). */
  private refresh(): void {
    if (!this.operatorProvided) {
      const root = this.rootList.find((r) => r.fingerprint === this.signingFp)!;
      this.signer = this.makeSigner(root.key!, root.info, [], root.info.notAfter);
      this.bundleCache = [root, ...this.rootList.filter((r) => r !== root)].map((r) => r.pem).join('');
    }
    this.emit('changed');
  }
}

function minNotAfter(infos: CertInfo[]): Date {
  return new Date(Math.min(...infos.map((i) => i.notAfter.getTime())));
}

function readChainAndKey(certFile: string, keyFile: string): { ders: Buffer[]; key: KeyObject } {
  let text: string;
  try {
    text = readFileSync(certFile, 'utf8');
  } catch (err) {
    throw new CaError(`${certFile}: cannot read the CA certificate (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const ders = pemToDers(text);
  if (ders.length === 0) throw new CaError(`${certFile}: no PEM CERTIFICATE block found`);
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(keyFile, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new CaError(`${keyFile}: cannot read the CA private key (${e.code === 'ENOENT' ? 'no such file' : e.message})`);
  }
  return { ders, key };
}

function readPair(certFile: string, keyFile: string): { der: Buffer; key: KeyObject } {
  const { ders, key } = readChainAndKey(certFile, keyFile);
  return { der: ders[0], key };
}
