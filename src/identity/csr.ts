// Parses and checks PKCS#10 certificate signing requests (subject CN, requested SANs, signature, key type).
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import * as der from './der.js';
import { OID, SIG_ALGS } from './x509.js';
import { pemToDers } from './pem.js';

export class CsrError extends Error {}

export interface ParsedCsr {
  der: Buffer;
  spkiRaw: Buffer;
  publicKey: KeyObject;
  commonNames: string[];
  uriSans: string[];
  dnsSans: string[];
}

/** Decodes the attribute strings X.500 names use. */
function nameString(buf: Buffer, t: der.Tlv): string {
  const b = der.bytes(buf, t);
  if (t.tag === 0x1e) return Buffer.from(b).swap16().toString('utf16le');
  return t.tag === 0x0c ? b.toString('utf8') : b.toString('latin1');
}

/** Attribute values of one type inside a Name. */
export function nameValues(buf: Buffer, nameT: der.Tlv, type: string): string[] {
  const out: string[] = [];
  for (const rdn of der.children(buf, nameT)) {
    for (const atv of der.children(buf, rdn)) {
      const [typeT, valT] = der.children(buf, atv);
      if (typeT?.tag === 0x06 && valT && der.decodeOid(der.bytes(buf, typeT)) === type) out.push(nameString(buf, valT));
    }
  }
  return out;
}

/**
 * Parses a CSR (PEM or DER), verifies its self-signature and that its key is acceptable
 * (EC P-256/P-384, RSA >= 2048 bits, Ed25519). Throws CsrError with the reason.
 */
export function parseCsr(csr: string | Buffer): ParsedCsr {
  let buf: Buffer;
  if (typeof csr === 'string') {
    const ders = pemToDers(csr, 'CERTIFICATE REQUEST');
    if (ders.length === 0) ders.push(...pemToDers(csr, 'NEW CERTIFICATE REQUEST'));
    if (ders.length !== 1) throw new CsrError('the CSR is not one PEM "CERTIFICATE REQUEST" block');
    buf = ders[0];
  } else buf = csr;
  try {
    const root = der.expectTag(der.readRoot(buf), 0x30, 'CertificationRequest');
    const [criT, algT, sigT] = der.children(buf, root);
    der.expectTag(criT, 0x30, 'CertificationRequestInfo');
    der.expectTag(algT, 0x30, 'signatureAlgorithm');
    der.expectTag(sigT, 0x03, 'signature');
    const [, subjectT, spkiT, attrsT] = der.children(buf, criT);
    der.expectTag(subjectT, 0x30, 'subject');
    der.expectTag(spkiT, 0x30, 'subjectPublicKeyInfo');
    const spkiRaw = der.raw(buf, spkiT);
    const publicKey = publicKeyFromSpki(spkiRaw);
    const algOid = der.decodeOid(der.bytes(buf, der.expectTag(der.children(buf, algT)[0], 0x06, 'algorithm')));
    if (!(algOid in SIG_ALGS)) throw new CsrError(`unsupported CSR signature algorithm ${algOid}`);
    const sig = der.bytes(buf, sigT).subarray(1);
    if (!cryptoVerify(SIG_ALGS[algOid], der.raw(buf, criT), publicKey, sig)) {
      throw new CsrError('the CSR signature does not verify (was it made with the key it carries?)');
    }
    const out: ParsedCsr = {
      der: buf,
      spkiRaw,
      publicKey,
      commonNames: nameValues(buf, subjectT, OID.commonName),
      uriSans: [],
      dnsSans: [],
    };
    if (attrsT && attrsT.tag === 0xa0) readExtensionRequest(buf, attrsT, out);
    return out;
  } catch (err) {
    if (err instanceof CsrError) throw err;
    throw new CsrError(`malformed CSR: ${(err as Error).message}`);
  }
}

function readExtensionRequest(buf: Buffer, attrsT: der.Tlv, out: ParsedCsr): void {
  for (const attr of der.children(buf, attrsT)) {
    const [typeT, valuesT] = der.children(buf, attr);
    if (typeT?.tag !== 0x06 || der.decodeOid(der.bytes(buf, typeT)) !== OID.extensionRequest) continue;
    for (const extsT of der.children(buf, valuesT)) {
      for (const extT of der.children(buf, extsT)) {
        const parts = der.children(buf, extT);
        if (der.decodeOid(der.bytes(buf, parts[0])) !== OID.subjectAltName) continue;
        const valT = parts[parts.length - 1];
        const b = der.bytes(buf, valT);
        for (const gn of der.children(b, der.readRoot(b))) {
          if (gn.tag === 0x86) out.uriSans.push(der.bytes(b, gn).toString('latin1'));
          else if (gn.tag === 0x82) out.dnsSans.push(der.bytes(b, gn).toString('latin1'));
        }
      }
    }
  }
}

const EC_CURVES: Record<string, { crv: string; size: number }> = {
  '1.2.840.10045.3.1.7': { crv: 'P-256', size: 32 },
  '1.3.132.0.34': { crv: 'P-384', size: 48 },
};

/**
 * Imports a CSR's public key and checks it is acceptable (EC P-256/P-384, RSA >= 2048, Ed25519).
 * EC keys go through JWK: much cheaper than OpenSSL's DER decoder, and signing throughput hinges on it.
 */
export function publicKeyFromSpki(spkiRaw: Buffer): KeyObject {
  const root = der.readRoot(spkiRaw);
  const [algT, bitsT] = der.children(spkiRaw, root);
  const [oidT, paramT] = der.children(spkiRaw, der.expectTag(algT, 0x30, 'AlgorithmIdentifier'));
  const alg = der.decodeOid(der.bytes(spkiRaw, der.expectTag(oidT, 0x06, 'algorithm')));
  if (alg === OID.ecPublicKey && paramT?.tag === 0x06) {
    const curve = EC_CURVES[der.decodeOid(der.bytes(spkiRaw, paramT))];
    const point = der.bytes(spkiRaw, der.expectTag(bitsT, 0x03, 'subjectPublicKey')).subarray(1);
    if (!curve) throw new CsrError(`the CSR key's curve is not accepted (use EC P-256/P-384, RSA >= 2048 or Ed25519)`);
    if (point.length === 1 + 2 * curve.size && point[0] === 0x04) {
      try {
        return createPublicKey({
          key: {
            kty: 'EC',
            crv: curve.crv,
            x: point.subarray(1, 1 + curve.size).toString('base64url'),
            y: point.subarray(1 + curve.size).toString('base64url'),
          },
          format: 'jwk',
        });
      } catch {
        throw new CsrError('the CSR public key is not a valid point on its curve');
      }
    }
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spkiRaw, format: 'der', type: 'spki' });
  } catch {
    throw new CsrError('the CSR public key cannot be read');
  }
  checkKey(key);
  return key;
}

function checkKey(key: KeyObject): void {
  const type = key.asymmetricKeyType;
  const d = key.asymmetricKeyDetails ?? {};
  if (type === 'ec' && (d.namedCurve === 'prime256v1' || d.namedCurve === 'secp384r1')) return;
  if (type === 'rsa' && (d.modulusLength ?? 0) >= 2048) return;
  if (type === 'ed25519') return;
  const what = type === 'ec' ? `EC ${d.namedCurve}` : type === 'rsa' ? `RSA ${d.modulusLength}` : String(type);
  throw new CsrError(`the CSR key type ${what} is not accepted (use EC P-256/P-384, RSA >= 2048 or Ed25519)`);
}
