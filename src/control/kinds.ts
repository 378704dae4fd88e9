// Resolves what users type for a kind (`vs`, `virtualservices`, `VirtualService`) to the canonical kind name.
import { KIND_NAMES, type KindName } from '../api/types.js';

const SHORT: Record<string, KindName> = {
  vs: 'VirtualService',
  dr: 'DestinationRule',
  se: 'ServiceEntry',
  we: 'WorkloadEntry',
  pa: 'PeerAuthentication',
  ap: 'AuthorizationPolicy',
  ra: 'RequestAuthentication',
  svc: 'Service',
  ts: 'TrafficSplit',
  wl: 'Workload',
  rlp: 'RateLimitPolicy',
};

export function resolveKind(input: string): KindName | undefined {
  const s = input.toLowerCase();
  if (SHORT[s]) return SHORT[s];
  for (const k of KIND_NAMES) {
    const l = k.toLowerCase();
    if (s === l || s === `${l}s` || s === `${l}es` || (l.endsWith('y') && s === `${l.slice(0, -1)}ies`)) return k;
  }
  return undefined;
}
