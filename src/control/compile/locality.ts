// Locality-aware load balancing per caller: Istio `distribute` weights and failover priorities for locality groups.
import type { Locality } from '../model.js';
import type { LoadBalancerSettings } from './spec.js';

export interface LocalityPlan {
  /** Weight for a destination locality group; 0 drops the group. */
  weight(l: Locality): number;
  /** Priority (0 = preferred) for a destination locality group, before compaction. */
  priority(l: Locality): number;
}

function parts(l: Locality | undefined): string[] {
  return [l?.region ?? '', l?.zone ?? '', l?.subZone ?? ''];
}

/** Matches "region/zone/subzone" patterns where a trailing "*" matches the rest. */
export function localityMatches(pattern: string, l: Locality | undefined): boolean {
  const p = pattern.split('/');
  const v = parts(l);
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '*') return true;
    if (p[i] !== v[i]) return false;
  }
  return true;
}

/**
 * The plan for a caller at `caller`, or undefined when locality does not change anything: `distribute` sets
 * group weights from the first rule whose `from` matches; otherwise, when enabled (and, as in Istio, when outlier
 * detection can eject failed hosts), groups are prioritised by proximity: same zone+subzone, same zone, same region, then
 * the regions `failover` names for the caller's region (in order), then every other region.
 */
export function localityPlan(
  lb: LoadBalancerSettings | undefined,
  hasOutlierDetection: boolean,
  caller: Locality | undefined,
): LocalityPlan | undefined {
  const s = lb?.localityLbSetting;
  if (!caller?.region || s?.enabled === false) return undefined;
  const rule = s?.distribute?.find((d) => d.from !== undefined && localityMatches(d.from, caller));
  if (rule) {
    const to = Object.entries(rule.to ?? {});
    return {
      weight: (l) => {
        const hit = to.find(([pattern]) => localityMatches(pattern, l));
        return hit ? Math.max(0, Math.round(hit[1])) : 0;
      },
      priority: () => 0,
    };
  }
  if (!hasOutlierDetection) return undefined;
  const c = parts(caller);
  const failoverTo = (s?.failover ?? []).filter((f) => f.from === c[0] && typeof f.to === 'string').map((f) => f.to as string);
  return {
    weight: () => 1,
    priority: (l) => {
      const v = parts(l);
      if (v[0] !== c[0]) {
        const i = failoverTo.indexOf(v[0]);
        return i >= 0 ? 3 + i : 3 + failoverTo.length;
      }
      if (v[1] !== c[1]) return 2;
      if (v[2] !== c[2]) return 1;
      return 0;
    },
  };
}

/** Renumbers used priorities 0..n-1 (xDS clients reject a gap). */
export function compactPriorities(used: number[]): Map<number, number> {
  const sorted = [...new Set(used)].sort((a, b) => a - b);
  return new Map(sorted.map((p, i) => [p, i]));
}
