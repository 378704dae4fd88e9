// Pure request facts the inbound policy decides on: method syntax, the host as compared, client address, rate-limit caller key.

/** RFC 9110 token characters, uppercase letters only: methods are case-sensitive and every registered one is uppercase. */
const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Z]{1,32}$/;

export function validMethod(m: string): boolean {
  return METHOD.test(m);
}

/**
 * Host / :authority as authorization compares it: lowercase, no port, no trailing dot, so `Admin.Example.com.:80`
 * cannot slip past a rule written for `admin.example.com`. IPv6 literals keep their brackets.
 */
export function policyHost(authority: string): string {
  let h = authority.trim();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    h = end > 0 ? h.slice(0, end + 1) : h;
  } else {
    const colon = h.lastIndexOf(':');
    if (colon >= 0 && h.indexOf(':') === colon) h = h.slice(0, colon);
  }
  while (h.endsWith('.')) h = h.slice(0, -1);
  return h.toLowerCase();
}

/** A socket address without the IPv4-mapped prefix (`::ffff:10.0.0.1` -> `10.0.0.1`), so CIDR rules written for IPv4 match. */
export function clientIp(remoteAddress: string | undefined): string {
  if (!remoteAddress) return '';
  return remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.') ? remoteAddress.slice(7) : remoteAddress;
}

/** The rate-limit caller: the verified SPIFFE ID over mTLS, else the client IP. */
export function callerKey(peer: string | undefined, ip: string): string {
  return peer || ip || 'unauthenticated';
}
