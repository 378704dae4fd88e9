// SDS secrets the control plane sends: only the trust bundle (ROOTCA); workload keys never leave the proxy.
export const ROOTCA = 'ROOTCA';

export function rootCaSecret(trustBundlePem: string): object {
  return { name: ROOTCA, validation_context: { trusted_ca: { inline_bytes: Buffer.from(trustBundlePem) } } };
}
