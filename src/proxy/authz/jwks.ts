// JSON Web Key Sets for JWT verification: inline sets, and remote sets fetched, cached and refreshed on key rotation.
import { type JSONWebKeySet, createLocalJWKSet } from 'jose';

export type { JSONWebKeySet };
/** Fetches a JWKS document; the default is `httpFetchJwks`. Rejects on any failure. */
export type FetchJwks = (uri: string, timeoutMs: number) => Promise<JSONWebKeySet>;
export type KeyGetter = ReturnType<typeof createLocalJWKSet>;

/** Checks a parsed document is a key set; throws with a short reason otherwise. */
export function asJwks(doc: unknown): JSONWebKeySet {
  if (!doc || typeof doc !== 'object' || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw new Error('not a JSON Web Key Set (no "keys" list)');
  }
  return doc as JSONWebKeySet;
}

/** GETs a JWKS over HTTP(S) with a timeout. */
export const httpFetchJwks: FetchJwks = async (uri, timeoutMs) => {
  const res = await fetch(uri, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`GET ${uri}: HTTP ${res.status}`);
  return asJwks(await res.json());
};

export interface KeySource {
  /** The current key getter; may fetch. Rejects when no key set can be had. */
  get(): Promise<KeyGetter>;
  /** Called when a token names a key the set lacks: refetch (rate-limited). True when a newer set was loaded. */
  refreshForUnknownKey(): Promise<boolean>;
}

export function localKeySource(jwks: JSONWebKeySet): KeySource {
  const getter = createLocalJWKSet(jwks);
  return { get: async () => getter, refreshForUnknownKey: async () => false };
}

export interface RemoteOptions {
  uri: string;
  fetch: FetchJwks;
  timeoutMs: number;
  cacheMs: number;
  /** Lower bound between refetches triggered by unknown key ids or failures, so tokens cannot drive a fetch storm. */
  minRefetchMs?: number;
  now?: () => number;
}

/** A remote key set: fetched on first use, kept for cacheMs, refetched once at a time; a stale set serves if a refetch fails. */
export function remoteKeySource(opts: RemoteOptions): KeySource {
  const now = opts.now ?? Date.now;
  const minGap = opts.minRefetchMs ?? 10_000;
  let getter: KeyGetter | undefined;
  let fetchedAt = -Infinity;
  let attemptedAt = -Infinity;
  let inflight: Promise<KeyGetter> | undefined;
  let lastError: Error | undefined;

  const load = (): Promise<KeyGetter> => {
    if (inflight) return inflight;
    attemptedAt = now();
    inflight = opts
      .fetch(opts.uri, opts.timeoutMs)
      .then((doc) => {
        getter = createLocalJWKSet(asJwks(doc));
        fetchedAt = now();
        lastError = undefined;
        return getter;
      })
      .catch((e: Error) => {
        lastError = e;
        if (getter) return getter;
        throw e;
      })
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  };

  return {
    async get() {
      const t = now();
      if (getter && t - fetchedAt < opts.cacheMs) return getter;
      if (!getter && lastError && t - attemptedAt < Math.min(minGap, opts.cacheMs)) throw lastError;
      if (getter && t - attemptedAt < minGap) return getter;
      return load();
    },
    async refreshForUnknownKey() {
      if (now() - attemptedAt < minGap) return false;
      const before = fetchedAt;
      await load().catch(() => undefined);
      return fetchedAt !== before;
    },
  };
}
