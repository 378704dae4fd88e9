// Test helper: makes roots and deliberately broken leaves with @peculiar/x509 (independent of the CA's own encoder).
import './reflect-polyfill.js';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface Issued {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  certPem: string;
  keyPem: string;
  der: Buffer;
}

async function keyPemOf(k: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', k as webcrypto.CryptoKey));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

async function newKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
}

let serial = 1;
const nextSerial = () => (serial++).toString(16).padStart(2, '0');

async function wrap(cert: x509.X509Certificate, keys: CryptoKeyPair): Promise<Issued> {
  return { cert, keys, certPem: cert.toString('pem') + '\n', keyPem: await keyPemOf(keys.privateKey), der: Buffer.from(cert.rawData) };
}

export async function makeRoot(name = 'CN=test root'): Promise<Issued> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: nextSerial(),
    name,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 10 * 86400_000),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return wrap(cert, keys);
}

export interface LeafSpec {
  uris?: string[];
  ca?: boolean;
  /** null: no keyUsage extension. */
  keyUsage?: number | null;
  keyUsageCritical?: boolean;
  /** null: no extKeyUsage extension. */
  eku?: string[] | null;
  notBefore?: Date;
  notAfter?: Date;
  name?: string;
}

export const EKU = { server: x509.ExtendedKeyUsage.serverAuth, client: x509.ExtendedKeyUsage.clientAuth };
export const KUF = x509.KeyUsageFlags;

/** A certificate signed by `issuer`; defaults make a valid SVID for spiffe://example.org/ns/default/sa/web. */
export async function makeLeaf(issuer: Issued, spec: LeafSpec = {}): Promise<Issued> {
  const keys = await newKeys();
  const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(spec.ca ?? false, undefined, true)];
  const ku = spec.keyUsage === undefined ? x509.KeyUsageFlags.digitalSignature : spec.keyUsage;
  if (ku !== null) extensions.push(new x509.KeyUsagesExtension(ku, spec.keyUsageCritical ?? true));
  const eku = spec.eku === undefined ? [EKU.server, EKU.client] : spec.eku;
  if (eku !== null) extensions.push(new x509.ExtendedKeyUsageExtension(eku, false));
  const uris = spec.uris ?? ['spiffe://example.org/ns/default/sa/web'];
  if (uris.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(uris.map((u) => ({ type: 'url' as const, value: u }))));
  extensions.push(await x509.AuthorityKeyIdentifierExtension.create(issuer.keys.publicKey));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject: spec.name ?? 'O=test',
    issuer: issuer.cert.subjectName,
    notBefore: spec.notBefore ?? new Date(Date.now() - 300_000),
    notAfter: spec.notAfter ?? new Date(Date.now() + 3600_000),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    extensions,
  });
  return wrap(cert, keys);
}

/** An intermediate CA signed by `issuer`. */
export async function makeIntermediate(issuer: Issued, name = 'CN=test intermediate'): Promise<Issued> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: nextSerial(),
    subject: name,
    issuer: issuer.cert.subjectName,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 5 * 86400_000),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(issuer.keys.publicKey),
    ],
  });
  return wrap(cert, keys);
}
