// Load-balancing pickers built once per endpoint set: round robin, least request (P2C), random, ring hash.
import type { EndpointInfo, Locality } from './endpoints.js';
import { hash32 } from './hash.js';

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV';

export interface PickContext {
  /** Consistent-hash key (from `hashKey`); hashing policies pick at random without one. */
  hash?: number;
  /** Endpoint ids not to pick: ejected by outlier detection, or already tried by this request. */
  excluded?: ReadonlySet<string>;
}

export interface BalancerOptions {
  policy: LbPolicy;
  endpoints: readonly EndpointInfo[];
  localLocality?: Locality;
  /** Prefer same zone, then same region, then anywhere (ignored by RING_HASH / MAGLEV). */
  localityAware?: boolean;
  /**
   * RING_HASH / MAGLEV: ring points per endpoint of weight 1 (default 256). Points per endpoint do not
   * depend on how many endpoints there are, so adding one moves only the ~1/N keys it takes over.
   */
  ringSize?: number;
  /** LEAST_REQUEST candidates per pick (default 2: power of two choices). */
  choiceCount?: number;
  random?: () => number;
  /**
   * In-flight request counts by endpoint id. Pass the same instance to every balancer built for a
   * cluster so counts survive an EDS update (requests started on the old picker end on the new one).
   */
  counters?: RequestCounters;
}

/**
 * An immutable picker for one endpoint set; build a new one when endpoints or health change.
 * Health policy: unhealthy endpoints are never picked while any endpoint is healthy; when none is,
 * the balancer is in panic and picks among all of them (Envoy's panic threshold, fixed at 0%).
 */
export interface Balancer {
  readonly policy: LbPolicy;
  readonly endpoints: readonly EndpointInfo[];
  /** True when no endpoint is healthy and every endpoint is a candidate. */
  readonly panic: boolean;
  /** `ctx` may be omitted: no hash, nothing excluded. */
  pick(ctx?: PickContext): EndpointInfo | undefined;
  onRequestStart(ep: EndpointInfo): void;
  onRequestEnd(ep: EndpointInfo): void;
  activeRequests(ep: EndpointInfo): number;
}

interface Cell {
  active: number;
}

/** Per-endpoint in-flight counters, shared across balancer generations of one cluster. */
export class RequestCounters {
  private readonly cells = new Map<string, Cell>();

  cell(id: string): Cell {
    let c = this.cells.get(id);
    if (c === undefined) {
      c = { active: 0 };
      this.cells.set(id, c);
    }
    return c;
  }

  get(id: string): number {
    return this.cells.get(id)?.active ?? 0;
  }

  /** Drops idle counters of endpoints that are gone. */
  prune(keep: ReadonlySet<string>): void {
    for (const [id, c] of this.cells) if (c.active <= 0 && !keep.has(id)) this.cells.delete(id);
  }
}

abstract class BaseBalancer implements Balancer {
  readonly endpoints: readonly EndpointInfo[];
  readonly panic: boolean;
  protected readonly cells: Cell[];
  protected readonly counters: RequestCounters;
  protected readonly random: () => number;
  /** Indices of the candidate endpoints: the healthy ones, or all in panic. */
  protected readonly candidates: number[];

  constructor(
    readonly policy: LbPolicy,
    opts: BalancerOptions,
  ) {
    this.endpoints = opts.endpoints.slice();
    this.random = opts.random ?? Math.random;
    this.counters = opts.counters ?? new RequestCounters();
    this.counters.prune(new Set(this.endpoints.map((e) => e.id)));
    this.cells = this.endpoints.map((e) => this.counters.cell(e.id));
    const healthy: number[] = [];
    for (let i = 0; i < this.endpoints.length; i++) if (this.endpoints[i].healthy) healthy.push(i);
    this.panic = healthy.length === 0 && this.endpoints.length > 0;
    this.candidates = this.panic ? this.endpoints.map((_, i) => i) : healthy;
  }

  abstract pick(ctx?: PickContext): EndpointInfo | undefined;

  onRequestStart(ep: EndpointInfo): void {
    this.counters.cell(ep.id).active++;
  }

  onRequestEnd(ep: EndpointInfo): void {
    const c = this.counters.cell(ep.id);
    if (c.active > 0) c.active--;
  }

  activeRequests(ep: EndpointInfo): number {
    return this.counters.get(ep.id);
  }
}

/** One locality tier: candidates in it, with what each algorithm precomputes. */
interface Tier {
  idx: Int32Array;
  uniform: boolean;
  /** Cumulative weights parallel to idx (weighted random). */
  cum: Float64Array;
  total: number;
  /** Round-robin order, weights expanded by smooth weighted round robin. */
  sched: Int32Array;
  cursor: number;
}

function sameZone(a: Locality, b: Locality): boolean {
  return (a.region ?? '') === (b.region ?? '') && (a.zone ?? '') === (b.zone ?? '');
}

function sameRegion(a: Locality, b: Locality): boolean {
  return (a.region ?? '') === (b.region ?? '');
}

const MAX_SCHEDULE = 4096;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Smooth weighted round robin (each endpoint spread evenly through the cycle, not in bursts). */
function schedule(idx: number[], weights: number[]): Int32Array {
  let w = weights.map((x) => Math.max(1, Math.round(x)));
  const g = w.reduce(gcd);
  w = w.map((x) => x / g);
  let total = w.reduce((a, b) => a + b, 0);
  if (total > MAX_SCHEDULE) {
    w = w.map((x) => Math.max(1, Math.round((x * MAX_SCHEDULE) / total)));
    total = w.reduce((a, b) => a + b, 0);
  }
  const current = new Float64Array(w.length);
  const out = new Int32Array(total);
  for (let k = 0; k < total; k++) {
    let best = 0;
    for (let i = 0; i < w.length; i++) {
      current[i] += w[i];
      if (current[i] > current[best]) best = i;
    }
    current[best] -= total;
    out[k] = idx[best];
  }
  return out;
}

abstract class TieredBalancer extends BaseBalancer {
  protected readonly tiers: Tier[];

  constructor(policy: LbPolicy, opts: BalancerOptions) {
    super(policy, opts);
    const groups: number[][] = [];
    const local = opts.localLocality;
    if (opts.localityAware && local) {
      const zone: number[] = [];
      const region: number[] = [];
      const rest: number[] = [];
      for (const i of this.candidates) {
        const l = this.endpoints[i].locality;
        if (sameZone(l, local)) zone.push(i);
        else if (sameRegion(l, local)) region.push(i);
        else rest.push(i);
      }
      groups.push(zone, region, rest);
    } else groups.push(this.candidates);
    this.tiers = [];
    for (const g of groups) {
      if (g.length === 0) continue;
      const weights = g.map((i) => this.endpoints[i].weight);
      const uniform = weights.every((x) => x === weights[0]);
      const cum = new Float64Array(g.length);
      let total = 0;
      for (let k = 0; k < g.length; k++) cum[k] = total += weights[k];
      const sched = uniform ? Int32Array.from(g) : schedule(g, weights);
      // a random start keeps many proxies from marching over the endpoints in lockstep
      this.tiers.push({ idx: Int32Array.from(g), uniform, cum, total, sched, cursor: Math.floor(this.random() * sched.length) % sched.length });
    }
  }

  protected usable(i: number, excluded: ReadonlySet<string> | undefined): boolean {
    return excluded === undefined || !excluded.has(this.endpoints[i].id);
  }
}

class RoundRobinBalancer extends TieredBalancer {
  pick(ctx?: PickContext): EndpointInfo | undefined {
    const excluded = ctx === undefined ? undefined : ctx.excluded;
    const tiers = this.tiers;
    for (let t = 0; t < tiers.length; t++) {
      const tier = tiers[t];
      const s = tier.sched;
      const n = s.length;
      let c = tier.cursor;
      for (let k = 0; k < n; k++) {
        const i = s[c];
        c = c + 1 === n ? 0 : c + 1;
        if (this.usable(i, excluded)) {
          tier.cursor = c;
          return this.endpoints[i];
        }
      }
    }
    return undefined;
  }
}

class RandomBalancer extends TieredBalancer {
  pick(ctx?: PickContext): EndpointInfo | undefined {
    const excluded = ctx === undefined ? undefined : ctx.excluded;
    const tiers = this.tiers;
    for (let t = 0; t < tiers.length; t++) {
      const tier = tiers[t];
      const idx = tier.idx;
      const n = idx.length;
      let k: number;
      if (tier.uniform) k = Math.floor(this.random() * n);
      else {
        const x = this.random() * tier.total;
        let lo = 0;
        let hi = n - 1;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (x < tier.cum[mid]) hi = mid;
          else lo = mid + 1;
        }
        k = lo;
      }
      if (k >= n) k = n - 1;
      // an excluded draw moves to the next usable endpoint in the tier
      for (let j = 0; j < n; j++) {
        const i = idx[(k + j) % n];
        if (this.usable(i, excluded)) return this.endpoints[i];
      }
    }
    return undefined;
  }
}

class LeastRequestBalancer extends TieredBalancer {
  private readonly choices: number;

  constructor(opts: BalancerOptions) {
    super('LEAST_REQUEST', opts);
    this.choices = Math.max(1, Math.floor(opts.choiceCount ?? 2));
  }

  private load(i: number): number {
    return this.cells[i].active / this.endpoints[i].weight;
  }

  pick(ctx?: PickContext): EndpointInfo | undefined {
    const excluded = ctx === undefined ? undefined : ctx.excluded;
    const tiers = this.tiers;
    for (let t = 0; t < tiers.length; t++) {
      const idx = tiers[t].idx;
      const n = idx.length;
      let best = -1;
      if (n === 1) {
        if (this.usable(idx[0], excluded)) best = idx[0];
      } else {
        for (let c = 0; c < this.choices; c++) {
          const i = idx[Math.min(n - 1, Math.floor(this.random() * n))];
          if (!this.usable(i, excluded)) continue;
          if (best < 0 || this.load(i) < this.load(best)) best = i;
        }
        if (best < 0) {
          // every draw was excluded: fall back to the least loaded usable endpoint
          for (let j = 0; j < n; j++) {
            const i = idx[j];
            if (this.usable(i, excluded) && (best < 0 || this.load(i) < this.load(best))) best = i;
          }
        }
      }
      if (best >= 0) return this.endpoints[best];
    }
    return undefined;
  }
}

const MAX_RING = 1 << 20;

/** Ketama-style ring: each endpoint owns points proportional to its weight. MAGLEV uses the same ring. */
class RingHashBalancer extends BaseBalancer {
  private readonly hashes: Uint32Array;
  private readonly owners: Int32Array;

  constructor(policy: LbPolicy, opts: BalancerOptions) {
    super(policy, opts);
    const perWeight = Math.max(1, Math.floor(opts.ringSize ?? 256));
    const cand = this.candidates;
    let totalW = 0;
    for (const i of cand) totalW += this.endpoints[i].weight;
    // only a huge ring (large weights) is scaled down, which then reshuffles some keys
    const scale = perWeight * totalW > MAX_RING ? MAX_RING / (perWeight * totalW) : 1;
    const points: { h: number; i: number }[] = [];
    for (const i of cand) {
      const ep = this.endpoints[i];
      const count = Math.max(1, Math.round(perWeight * ep.weight * scale));
      for (let k = 0; k < count; k++) points.push({ h: hash32(`${ep.id}_${k}`), i });
    }
    // ties broken by endpoint id so the ring does not depend on endpoint order
    points.sort((a, b) => a.h - b.h || (this.endpoints[a.i].id < this.endpoints[b.i].id ? -1 : 1));
    this.hashes = Uint32Array.from(points, (p) => p.h);
    this.owners = Int32Array.from(points, (p) => p.i);
  }

  pick(ctx?: PickContext): EndpointInfo | undefined {
    const hashes = this.hashes;
    const len = hashes.length;
    if (len === 0) return undefined;
    const hash = ctx === undefined ? undefined : ctx.hash;
    const h = hash === undefined ? Math.floor(this.random() * 4294967296) >>> 0 : hash >>> 0;
    let lo = 0;
    let hi = len;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid] < h) lo = mid + 1;
      else hi = mid;
    }
    if (lo === len) lo = 0;
    const excluded = ctx === undefined ? undefined : ctx.excluded;
    for (let k = 0; k < len; k++) {
      const i = this.owners[(lo + k) % len];
      if (excluded === undefined || !excluded.has(this.endpoints[i].id)) return this.endpoints[i];
    }
    return undefined;
  }
}

/** Builds the picker for an endpoint set. An unknown policy falls back to ROUND_ROBIN (see `policy`). */
export function createBalancer(opts: BalancerOptions): Balancer {
  switch (opts.policy) {
    case 'LEAST_REQUEST':
      return new LeastRequestBalancer(opts);
    case 'RANDOM':
      return new RandomBalancer('RANDOM', opts);
    case 'RING_HASH':
    case 'MAGLEV':
      return new RingHashBalancer(opts.policy, opts);
    default:
      return new RoundRobinBalancer('ROUND_ROBIN', opts);
  }
}
