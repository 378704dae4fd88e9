// Builders for balancer tests.
import type { EndpointInfo, Locality } from '../../../src/proxy/balance/endpoints.js';

export function ep(n: number, extra: Partial<EndpointInfo> = {}): EndpointInfo {
  return { id: `10.0.0.${n}:80`, address: `10.0.0.${n}`, port: 80, weight: 1, healthy: true, locality: {}, metadata: {}, ...extra };
}

export function at(n: number, locality: Locality, extra: Partial<EndpointInfo> = {}): EndpointInfo {
  return ep(n, { locality, ...extra });
}

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

export function count(pick: () => EndpointInfo | undefined, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const e = pick();
    const k = e ? e.id : 'none';
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}
