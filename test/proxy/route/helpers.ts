// Builders for route tests: decoded RouteConfiguration objects as unpackAny would produce them.
import type { RouteRequest } from '../../../src/proxy/route/types.js';

export function req(authority: string, path = '/', extra: Partial<RouteRequest> = {}): RouteRequest {
  return { authority, path, query: '', method: 'GET', headers: {}, ...extra };
}

/** A deterministic PRNG (mulberry32) for reproducible distributions. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function vhost(name: string, domains: string[], routes: object[], extra: object = {}): object {
  return { name, domains, routes, ...extra };
}

export function fwd(name: string, match: object, cluster: string, extra: object = {}): object {
  return { name, match, route: { cluster, ...extra } };
}
