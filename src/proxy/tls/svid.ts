// Checks the peer's SVID (SPIFFE rules, read from DER) after OpenSSL validated the chain against the bundle.
import type { TLSSocket } from 'node:tls';
import { peerChainDer, verifySvid, type VerifyResult } from '../../identity/verify.js';
import type { WorkloadTls } from './identity.js';

export type SvidCheck = VerifyResult;

export function checkPeerSvid(socket: TLSSocket, local: WorkloadTls | undefined): SvidCheck {
  if (!local) return { ok: false, reason: 'no_certificate', detail: 'no local identity to verify the peer against' };
  return verifySvid(peerChainDer(socket), local.bundle, { expectedTrustDomain: local.trustDomain });
}
