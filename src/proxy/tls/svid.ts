// Reads and checks the peer's SPIFFE ID from its certificate DER after OpenSSL validated the chain.
// Interim: replaced by src/identity/verify.ts (verifySvid, peerChainDer) once it lands.
import type { TLSSocket } from 'node:tls';
import { X509Certificate, SubjectAlternativeNameExtension, BasicConstraintsExtension } from '@peculiar/x509';

export type SvidCheck = { ok: true; spiffeId: string; trustDomain: string } | { ok: false; reason: string; detail: string };

/** Checks the leaf of an already chain-validated peer: exactly one spiffe:// URI SAN, not a CA, optional trust domain. */
export function checkPeerSvid(socket: TLSSocket, trustDomain?: string): SvidCheck {
  const peer = socket.getPeerCertificate(false);
  if (!peer || !peer.raw) return { ok: false, reason: 'no_client_certificate', detail: 'peer presented no certificate' };
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(peer.raw);
  } catch (err) {
    return { ok: false, reason: 'bad_certificate', detail: `cannot parse peer certificate: ${(err as Error).message}` };
  }
  const bc = cert.getExtension(BasicConstraintsExtension);
  if (bc?.ca) return { ok: false, reason: 'leaf_is_ca', detail: 'peer leaf certificate is a CA' };
  const san = cert.getExtension(SubjectAlternativeNameExtension);
  const uris = (san?.names.items ?? []).filter((n) => n.type === 'url').map((n) => n.value);
  if (uris.length !== 1) return { ok: false, reason: 'bad_uri_san', detail: `peer certificate has ${uris.length} URI SANs, want exactly 1` };
  const id = uris[0];
  const m = /^spiffe:\/\/([a-z0-9._-]+)(\/[^?#]*)?$/i.exec(id);
  if (!m || !m[2]) return { ok: false, reason: 'not_spiffe', detail: `peer URI SAN ${id} is not a SPIFFE workload ID` };
  const td = m[1].toLowerCase();
  if (trustDomain && td !== trustDomain.toLowerCase()) {
    return { ok: false, reason: 'wrong_trust_domain', detail: `peer trust domain ${td}, want ${trustDomain}` };
  }
  return { ok: true, spiffeId: id, trustDomain: td };
}
