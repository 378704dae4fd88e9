// Reads the X.509 fields SPIFFE cares about straight from DER, and builds/signs certificates with node:crypto.
import { createHash, sign as cryptoSign, type KeyObject } from 'node:crypto';
import * as der from './der.js';

export const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyId: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyId: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  anyExtendedKeyUsage: '2.5.29.37.0',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  ecdsaSha512: '1.2.840.10045.4.3.4',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
  ed25519: '1.3.101.112',
  extensionRequest: '1.2.840.113549.1.9.14',
} as const;

/** keyUsage bits as in the DER BIT STRING's first byte (bit 0 = 0x80). */
export const KU = { digitalSignature: 0x80, keyEncipherment: 0x20, keyCertSign: 0x04, cRLSign: 0x02 } as const;

/** Signature algorithm OID -> node:crypto digest name (null for Ed25519). */
export const SIG_ALGS: Record<string, string | null> = {
  [OID.ecdsaSha256]: 'sha256',
  [OID.ecdsaSha384]: 'sha384',
  [OID.ecdsaSha512]: 'sha512',
  [OID.sha256WithRsa]: 'sha256',
  [OID.sha384WithRsa]: 'sha384',
  [OID.sha512WithRsa]: 'sha512',
  [OID.ed25519]: null,
};

export interface Extension {
  critical: boolean;
  value: Buffer;
}

export interface CertInfo {
  der: Buffer;
  tbs: Buffer;
  sigAlg: string;
  signature: Buffer;
  serialHex: string;
  issuerRaw: Buffer;
  subjectRaw: Buffer;
  notBefore: Date;
  notAfter: Date;
  spkiRaw: Buffer;
  extensions: Map<string, Extension>;
  uriSans: string[];
  dnsSans: string[];
  isCa: boolean;
  /** First byte of the keyUsage BIT STRING (KU flags), undefined when absent. */
  keyUsage?: number;
  keyUsageCritical: boolean;
  extKeyUsage?: string[];
  subjectKeyId?: Buffer;
  authorityKeyId?: Buffer;
}

/** Parses a certificate's DER; throws DerError on anything malformed. */
export function parseCertificate(buf: Buffer): CertInfo {
  const root = der.readRoot(buf);
  der.expectTag(root, 0x30, 'Certificate SEQUENCE');
  const [tbsT, algT, sigT] = der.children(buf, root);
  der.expectTag(tbsT, 0x30, 'TBSCertificate');
  der.expectTag(algT, 0x30, 'signatureAlgorithm');
  der.expectTag(sigT, 0x03, 'signature BIT STRING');
  const algOid = der.expectTag(der.children(buf, algT)[0], 0x06, 'algorithm OID');
  const tbsKids = der.children(buf, tbsT);
  let i = 0;
  if (tbsKids[0]?.tag === 0xa0) i++;
  const serialT = der.expectTag(tbsKids[i++], 0x02, 'serialNumber');
  i++; // inner signature AlgorithmIdentifier
  const issuerT = der.expectTag(tbsKids[i++], 0x30, 'issuer Name');
  const validityT = der.expectTag(tbsKids[i++], 0x30, 'validity');
  const subjectT = der.expectTag(tbsKids[i++], 0x30, 'subject Name');
  const spkiT = der.expectTag(tbsKids[i++], 0x30, 'subjectPublicKeyInfo');
  const [nbT, naT] = der.children(buf, validityT);
  if (!nbT || !naT) throw new der.DerError('expected notBefore and notAfter');
  const info: CertInfo = {
    der: buf,
    tbs: der.raw(buf, tbsT),
    sigAlg: der.decodeOid(der.bytes(buf, algOid)),
    signature: der.bytes(buf, sigT).subarray(1),
    serialHex: der.bytes(buf, serialT).toString('hex'),
    issuerRaw: der.raw(buf, issuerT),
    subjectRaw: der.raw(buf, subjectT),
    notBefore: der.decodeTime(buf, nbT),
    notAfter: der.decodeTime(buf, naT),
    spkiRaw: der.raw(buf, spkiT),
    extensions: new Map(),
    uriSans: [],
    dnsSans: [],
    isCa: false,
    keyUsageCritical: false,
  };
  for (; i < tbsKids.length; i++) {
    if (tbsKids[i].tag !== 0xa3) continue;
    const extsSeq = der.expectTag(der.children(buf, tbsKids[i])[0], 0x30, 'Extensions');
    for (const extT of der.children(buf, extsSeq)) {
      const parts = der.children(buf, extT);
      const id = der.decodeOid(der.bytes(buf, der.expectTag(parts[0], 0x06, 'extnID')));
      let critical = false;
      let valT = parts[1];
      if (valT?.tag === 0x01) {
        critical = buf[valT.start] !== 0;
        valT = parts[2];
      }
      der.expectTag(valT, 0x04, 'extnValue');
      if (info.extensions.has(id)) throw new der.DerError(`duplicate extension ${id}`);
      info.extensions.set(id, { critical, value: der.bytes(buf, valT) });
    }
  }
  readExtensions(info);
  return info;
}

function readExtensions(info: CertInfo): void {
  const san = info.extensions.get(OID.subjectAltName);
  if (san) {
    const b = san.value;
    for (const gn of der.children(b, der.expectTag(der.readRoot(b), 0x30, 'GeneralNames'))) {
      // [6] uniformResourceIdentifier and [2] dNSName, both IMPLICIT IA5String.
      if (gn.tag === 0x86) info.uriSans.push(der.bytes(b, gn).toString('latin1'));
      else if (gn.tag === 0x82) info.dnsSans.push(der.bytes(b, gn).toString('latin1'));
    }
  }
  const bc = info.extensions.get(OID.basicConstraints);
  if (bc) {
    const b = bc.value;
    const first = der.children(b, der.expectTag(der.readRoot(b), 0x30, 'BasicConstraints'))[0];
    info.isCa = first?.tag === 0x01 && b[first.start] !== 0;
  }
  const ku = info.extensions.get(OID.keyUsage);
  if (ku) {
    const b = ku.value;
    const t = der.expectTag(der.readRoot(b), 0x03, 'KeyUsage BIT STRING');
    info.keyUsage = t.end - t.start >= 2 ? b[t.start + 1] : 0;
    info.keyUsageCritical = ku.critical;
  }
  const eku = info.extensions.get(OID.extKeyUsage);
  if (eku) {
    const b = eku.value;
    info.extKeyUsage = der
      .children(b, der.expectTag(der.readRoot(b), 0x30, 'ExtKeyUsage'))
      .map((t) => der.decodeOid(der.bytes(b, der.expectTag(t, 0x06, 'KeyPurposeId'))));
  }
  const ski = info.extensions.get(OID.subjectKeyId);
  if (ski) info.subjectKeyId = der.bytes(ski.value, der.expectTag(der.readRoot(ski.value), 0x04, 'SKI'));
  const aki = info.extensions.get(OID.authorityKeyId);
  if (aki) {
    const b = aki.value;
    const keyId = der.children(b, der.expectTag(der.readRoot(b), 0x30, 'AKI')).find((t) => t.tag === 0x80);
    if (keyId) info.authorityKeyId = der.bytes(b, keyId);
  }
}

/** The BIT STRING contents of an SPKI (the key itself), used for key identifiers. */
export function spkiKeyBits(spkiRaw: Buffer): Buffer {
  const root = der.readRoot(spkiRaw);
  const kids = der.children(spkiRaw, root);
  return der.bytes(spkiRaw, der.expectTag(kids[1], 0x03, 'subjectPublicKey')).subarray(1);
}

/** RFC 5280 method 1 key identifier: SHA-1 of the public key bits. */
export function keyIdentifier(spkiRaw: Buffer): Buffer {
  return createHash('sha1').update(spkiKeyBits(spkiRaw)).digest();
}

// ---- building ----

export interface ExtensionSpec {
  oid: string;
  critical: boolean;
  value: Buffer;
}

export const ext = {
  basicConstraints: (ca: boolean, critical = true, pathLen?: number): ExtensionSpec => ({
    oid: OID.basicConstraints,
    critical,
    value: der.seq(...(ca ? [der.bool(true)] : []), ...(ca && pathLen !== undefined ? [der.uint(pathLen)] : [])),
  }),
  keyUsage: (flags: number, critical = true): ExtensionSpec => {
    let unused = 0;
    while (unused < 7 && !(flags & (1 << unused))) unused++;
    return { oid: OID.keyUsage, critical, value: der.bitString(Buffer.from([flags]), flags ? unused : 0) };
  },
  extKeyUsage: (oids: string[], critical = false): ExtensionSpec => ({
    oid: OID.extKeyUsage,
    critical,
    value: der.seq(...oids.map(der.oid)),
  }),
  uriSans: (uris: string[], critical = false): ExtensionSpec => ({
    oid: OID.subjectAltName,
    critical,
    value: der.seq(...uris.map((u) => der.tlv(0x86, Buffer.from(u, 'latin1')))),
  }),
  subjectKeyId: (id: Buffer): ExtensionSpec => ({ oid: OID.subjectKeyId, critical: false, value: der.octets(id) }),
  authorityKeyId: (id: Buffer): ExtensionSpec => ({
    oid: OID.authorityKeyId,
    critical: false,
    value: der.seq(der.ctx(0, id, false)),
  }),
};

/** A Name of UTF8String attributes, e.g. [['2.5.4.10','trellis'], ['2.5.4.3','root']]. */
export function encodeName(attrs: [string, string][]): Buffer {
  return der.seq(...attrs.map(([o, v]) => der.set(der.seq(der.oid(o), der.utf8(v)))));
}

/** AlgorithmIdentifier + digest for a signing key. */
export function signatureAlgorithmFor(key: KeyObject): { algId: Buffer; digest: string | null } {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'secp384r1') return { algId: der.seq(der.oid(OID.ecdsaSha384)), digest: 'sha384' };
    if (curve === 'secp521r1') return { algId: der.seq(der.oid(OID.ecdsaSha512)), digest: 'sha512' };
    return { algId: der.seq(der.oid(OID.ecdsaSha256)), digest: 'sha256' };
  }
  if (type === 'rsa') return { algId: der.seq(der.oid(OID.sha256WithRsa), der.nullValue()), digest: 'sha256' };
  if (type === 'ed25519') return { algId: der.seq(der.oid(OID.ed25519)), digest: null };
  throw new Error(`unsupported CA key type ${type}`);
}

export interface TbsSpec {
  serial: Buffer;
  issuerRaw: Buffer;
  subjectRaw: Buffer;
  notBefore: Date;
  notAfter: Date;
  spkiRaw: Buffer;
  extensions: ExtensionSpec[];
}

/** Encodes a v3 TBSCertificate and signs it; returns the certificate DER. */
export function buildCertificate(
  spec: TbsSpec,
  signingKey: KeyObject,
  alg = signatureAlgorithmFor(signingKey),
): Buffer {
  const exts = spec.extensions.map((e) =>
    der.seq(der.oid(e.oid), ...(e.critical ? [der.bool(true)] : []), der.octets(e.value)),
  );
  const tbs = der.seq(
    der.ctx(0, der.uint(2)),
    der.uint(spec.serial),
    alg.algId,
    spec.issuerRaw,
    der.seq(der.time(spec.notBefore), der.time(spec.notAfter)),
    spec.subjectRaw,
    spec.spkiRaw,
    der.ctx(3, der.seq(...exts)),
  );
  const sig = cryptoSign(alg.digest, tbs, signingKey);
  return der.seq(tbs, alg.algId, der.bitString(sig));
}
