// Remembers join tokens that verified, until they expire: sidecars of one service account share a token, and
// checking the same ES256 signature again for each of 1,000 streams was a twentieth of the control plane's sync CPU.

/** What a verified token grants; only `expiresAt` matters here. */
export interface ExpiringGrant {
  expiresAt: Date;
}

export interface TokenCacheOptions {
  /** Distinct tokens remembered (the oldest go first); default 1,024. */
  max?: number;
  /** Clock (tests). */
  now?: () => number;
}

/**
 * Wraps `verify` so a token that verified before is not verified again while it is unexpired. Only successes are
 * kept: a rejected token is checked (and its error reported) every time. The signing key never changes while the
 * control plane runs, so a signature that verified once verifies again.
 */
export function cachingVerifier<G extends ExpiringGrant>(
  verify: (token: string) => Promise<G> | G,
  opts: TokenCacheOptions = {},
): (token: string) => Promise<G> {
  const max = opts.max ?? 1024;
  const now = opts.now ?? Date.now;
  // Promises, so streams that open together with one token share one verification.
  const grants = new Map<string, Promise<G>>();
  const expires = new Map<string, number>();
  return (token: string) => {
    const hit = grants.get(token);
    const until = expires.get(token);
    if (hit && (until === undefined || until > now())) return hit;
    grants.delete(token);
    expires.delete(token);
    const p = Promise.resolve()
      .then(() => verify(token)) // an expired token gets the verifier's own "expired" error
      .then(
        (grant) => {
          if (grants.get(token) === p) {
            if (grant.expiresAt.getTime() > now()) expires.set(token, grant.expiresAt.getTime());
            else grants.delete(token);
          }
          return grant;
        },
        (err: unknown) => {
          if (grants.get(token) === p) grants.delete(token);
          throw err;
        },
      );
    if (grants.size >= max) {
      const oldest = grants.keys().next().value as string;
      grants.delete(oldest);
      expires.delete(oldest);
    }
    grants.set(token, p);
    return p;
  };
}
