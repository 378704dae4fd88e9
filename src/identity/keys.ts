// Makes a workload's key pair and a CSR for its SPIFFE ID; the private key stays with the caller.
import { generateKeyPair, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import * as der from './der.js';
import { OID, encodeName, ext } from './x509.js';
import { derToPem } from './pem.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** A PKCS#10 CSR carrying the key and one URI SAN; subject left empty (the CA decides it). */
export function buildCsr(spiffeId: string, privateKey: KeyObject, publicKey: KeyObject): string {
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const san = ext.uriSans([spiffeId]);
  const extensions = der.seq(der.seq(der.oid(san.oid), der.octets(san.value)));
  const cri = der.seq(
    der.uint(0),
    encodeName([]),
    spki,
    der.ctx(0, der.seq(der.oid(OID.extensionRequest), der.set(extensions))),
  );
  const sig = cryptoSign('sha256', cri, privateKey);
  return derToPem(der.seq(cri, der.seq(der.oid(OID.ecdsaSha256)), der.bitString(sig)), 'CERTIFICATE REQUEST');
}

export async function generateKeyAndCsr(spiffeId: string): Promise<{ keyPem: string; csrPem: string }> {
  const { privateKey, publicKey } = await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
  const keyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  return { keyPem, csrPem: buildCsr(spiffeId, privateKey, publicKey) };
}
