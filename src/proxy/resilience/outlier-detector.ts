// Per-cluster passive outlier detection (Envoy semantics): consecutive 5xx / gateway errors eject an endpoint for a growing time.
import { asMsg, durationMs, wrappedNumber } from '../route/proto.js';

export interface OutlierConfig {
  consecutive5xx: number;
  /** Percent of detected consecutive-5xx outliers actually ejected. */
  enforcing5xx: number;
  consecutiveGateway: number;
  enforcingGateway: number;
  intervalMs: number;
  baseEjectionMs: number;
  maxEjectionPercent: number;
  /** Cap on base x ejections (Envoy max_ejection_time, default 300 s). */
  maxEjectionMs: number;
}

/**
 * Envoy's defaults. Gateway-failure enforcement is 0% there, so only consecutive 5xx ejects unless the
 * cluster says otherwise; the Trellis compiler sets enforcing_consecutive_gateway_failure to 100 when a
 * DestinationRule sets consecutiveGatewayErrors, and enforcing_consecutive_5xx to 0 when it does not set
 * consecutive5xxErrors, so what Istio users write is what ejects.
 */
export const ENVOY_OUTLIER_DEFAULTS: Readonly<OutlierConfig> = Object.freeze({
  consecutive5xx: 5,
  enforcing5xx: 100,
  consecutiveGateway: 5,
  enforcingGateway: 0,
  intervalMs: 10_000,
  baseEjectionMs: 30_000,
  maxEjectionPercent: 10,
  maxEjectionMs: 300_000,
});

/** A try's result: HTTP status, or a locally detected failure (counted as a gateway error, as Envoy does when origins are not split). */
export type OutlierResult = number | 'connect_failure' | 'reset' | 'timeout';
export type EjectionReason = 'consecutive_5xx' | 'consecutive_gateway_failure';

class Host {
  c5xx = 0;
  cGateway = 0;
  /** Ejections in a row (the ejection-time multiplier); decays by one per healthy interval. */
  ejections = 0;
  /** 0 when not ejected, else when the ejection ends (clock ms). */
  ejectedUntil = 0;
  lastReason: EjectionReason | '' = '';
  /** Healthy since (clock ms): the multiplier decays by one per full interval from here. */
  decayFrom = 0;
}

export interface OutlierHostSnapshot {
  id: string;
  ejected: boolean;
  ejectedForMs: number;
  ejections: number;
  consecutive5xx: number;
  consecutiveGateway: number;
  lastReason: string;
}

export interface OutlierSnapshot {
  config: OutlierConfig;
  ejectionsTotal: number;
  ejectionsByReason: Record<EjectionReason, number>;
  ejectionsOverflow: number;
  currentlyEjected: number;
  hosts: OutlierHostSnapshot[];
}

export interface OutlierOptions {
  /** Clock in ms (monotonic in production: performance.now). */
  now?: () => number;
  /** [0, 1), for enforcing percentages between 0 and 100. */
  random?: () => number;
  onEject?: (id: string, reason: EjectionReason, durationMs: number) => void;
  onUneject?: (id: string) => void;
}

export class OutlierDetector {
  config: OutlierConfig;
  private readonly hosts = new Map<string, Host>();
  private readonly ejected = new Set<string>();
  private knownHosts = 0;
  private nextExpiry = Infinity;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly onEject?: OutlierOptions['onEject'];
  private readonly onUneject?: OutlierOptions['onUneject'];
  /** Metric `trellis_outlier_ejections_total{reason}`. */
  readonly ejectionsByReason: Record<EjectionReason, number> = { consecutive_5xx: 0, consecutive_gateway_failure: 0 };
  ejectionsTotal = 0;
  /** Ejections skipped because maxEjectionPercent was reached. */
  ejectionsOverflow = 0;

  constructor(config: Partial<OutlierConfig> = {}, opts: OutlierOptions = {}) {
    this.config = { ...ENVOY_OUTLIER_DEFAULTS, ...config };
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.onEject = opts.onEject;
    this.onUneject = opts.onUneject;
  }

  /** The cluster's current endpoint ids (after EDS): state of removed endpoints is dropped. */
  setEndpoints(ids: Iterable<string>): void {
    const keep = new Set(ids);
    this.knownHosts = keep.size;
    for (const id of this.hosts.keys()) {
      if (!keep.has(id)) {
        this.hosts.delete(id);
        this.ejected.delete(id);
      }
    }
  }

  setConfig(config: OutlierConfig): void {
    this.config = config;
  }

  /** Records one try's result for an endpoint. Returns true when this result ejected it. */
  onResult(id: string, result: OutlierResult, now: number = this.now()): boolean {
    let h = this.hosts.get(id);
    if (h === undefined) {
      h = new Host();
      this.hosts.set(id, h);
    }
    if (h.ejectedUntil !== 0) {
      // Late results from requests started before an ejection say nothing new.
      if (now < h.ejectedUntil) return false;
      this.uneject(id, h);
    }
    let gateway: boolean;
    if (typeof result === 'number') {
      if (result < 500 || result > 599) {
        h.c5xx = 0;
        h.cGateway = 0;
        return false;
      }
      gateway = result === 502 || result === 503 || result === 504;
    } else gateway = true;
    h.c5xx++;
    if (gateway) h.cGateway++;
    else h.cGateway = 0;
    const c = this.config;
    if (gateway && c.consecutiveGateway > 0 && h.cGateway >= c.consecutiveGateway && this.enforced(c.enforcingGateway)) {
      return this.eject(id, h, 'consecutive_gateway_failure', now);
    }
    if (c.consecutive5xx > 0 && h.c5xx >= c.consecutive5xx && this.enforced(c.enforcing5xx)) {
      return this.eject(id, h, 'consecutive_5xx', now);
    }
    return false;
  }

  isEjected(id: string, now: number = this.now()): boolean {
    const h = this.hosts.get(id);
    if (h === undefined || h.ejectedUntil === 0) return false;
    if (now < h.ejectedUntil) return true;
    this.uneject(id, h);
    return false;
  }

  /**
   * Ejected endpoint ids, usable as the balancer's `excluded`. The same Set instance every time (mutated
   * in place); expired ejections are swept first, O(1) when none is due.
   */
  ejectedSet(now: number = this.now()): ReadonlySet<string> {
    if (now >= this.nextExpiry) this.sweep(now);
    return this.ejected;
  }

  get currentlyEjected(): number {
    return this.ejected.size;
  }

  /** Interval work (call every config.intervalMs): un-eject due hosts, decay multipliers of healthy ones. */
  tick(now: number = this.now()): void {
    this.sweep(now);
    const interval = this.config.intervalMs;
    for (const h of this.hosts.values()) {
      if (h.ejectedUntil !== 0 || h.ejections === 0) continue;
      const k = interval > 0 ? Math.floor((now - h.decayFrom) / interval) : h.ejections;
      if (k <= 0) continue;
      h.ejections = Math.max(0, h.ejections - k);
      h.decayFrom += k * interval;
    }
  }

  snapshot(now: number = this.now()): OutlierSnapshot {
    this.sweep(now);
    const hosts: OutlierHostSnapshot[] = [];
    for (const [id, h] of this.hosts) {
      hosts.push({
        id,
        ejected: h.ejectedUntil !== 0,
        ejectedForMs: h.ejectedUntil !== 0 ? Math.max(0, h.ejectedUntil - now) : 0,
        ejections: h.ejections,
        consecutive5xx: h.c5xx,
        consecutiveGateway: h.cGateway,
        lastReason: h.lastReason,
      });
    }
    return {
      config: { ...this.config },
      ejectionsTotal: this.ejectionsTotal,
      ejectionsByReason: { ...this.ejectionsByReason },
      ejectionsOverflow: this.ejectionsOverflow,
      currentlyEjected: this.ejected.size,
      hosts,
    };
  }

  private enforced(pct: number): boolean {
    return pct >= 100 || (pct > 0 && this.random() * 100 < pct);
  }

  private eject(id: string, h: Host, reason: EjectionReason, now: number): boolean {
    // Errors counted towards this ejection start over either way.
    h.c5xx = 0;
    h.cGateway = 0;
    const total = Math.max(this.knownHosts, this.hosts.size);
    const n = this.ejected.size;
    // As Envoy: maxEjectionPercent bounds ejections, but one host is always ejectable.
    if (n > 0 && (n + 1) * 100 > this.config.maxEjectionPercent * total) {
      this.ejectionsOverflow++;
      return false;
    }
    h.ejections++;
    const base = this.config.baseEjectionMs;
    const ms = Math.min(base * h.ejections, Math.max(base, this.config.maxEjectionMs));
    h.ejectedUntil = now + ms;
    h.lastReason = reason;
    this.ejected.add(id);
    if (h.ejectedUntil < this.nextExpiry) this.nextExpiry = h.ejectedUntil;
    this.ejectionsTotal++;
    this.ejectionsByReason[reason]++;
    this.onEject?.(id, reason, ms);
    return true;
  }

  private uneject(id: string, h: Host): void {
    h.decayFrom = h.ejectedUntil;
    h.ejectedUntil = 0;
    h.c5xx = 0;
    h.cGateway = 0;
    this.ejected.delete(id);
    this.onUneject?.(id);
  }

  private sweep(now: number): void {
    let next = Infinity;
    for (const id of this.ejected) {
      const h = this.hosts.get(id)!;
      if (now >= h.ejectedUntil) this.uneject(id, h);
      else if (h.ejectedUntil < next) next = h.ejectedUntil;
    }
    this.nextExpiry = next;
  }
}

/**
 * Config from a decoded xDS Cluster's `outlier_detection`; undefined when the cluster has none (no
 * detection at all). `warnings` names fields set that Trellis does not implement.
 */
export function outlierConfigFromCluster(cluster: Record<string, unknown> | undefined, warnings: string[] = []): OutlierConfig | undefined {
  const od = asMsg(cluster?.outlier_detection);
  if (!od) return undefined;
  const d = ENVOY_OUTLIER_DEFAULTS;
  const n = (v: unknown, dflt: number) => {
    if (v === undefined || v === null) return dflt;
    const x = wrappedNumber(v);
    return x !== undefined && x >= 0 ? x : dflt;
  };
  const pct = (v: unknown, dflt: number) => Math.min(100, n(v, dflt));
  const ms = (v: unknown, dflt: number) => {
    const x = durationMs(v);
    return x !== undefined && x > 0 ? x : dflt;
  };
  for (const f of ['enforcing_success_rate', 'success_rate_minimum_hosts', 'failure_percentage_threshold', 'enforcing_failure_percentage', 'consecutive_local_origin_failure', 'split_external_local_origin_errors']) {
    const v = od[f];
    if (v === undefined || v === null || v === false) continue;
    if (f === 'enforcing_success_rate' && wrappedNumber(v) === 0) continue;
    warnings.push(`cluster ${String(cluster?.name ?? '')}: outlier_detection.${f} is not supported and was ignored`);
  }
  return {
    consecutive5xx: n(od.consecutive_5xx, d.consecutive5xx),
    enforcing5xx: pct(od.enforcing_consecutive_5xx, d.enforcing5xx),
    consecutiveGateway: n(od.consecutive_gateway_failure, d.consecutiveGateway),
    enforcingGateway: pct(od.enforcing_consecutive_gateway_failure, d.enforcingGateway),
    intervalMs: ms(od.interval, d.intervalMs),
    baseEjectionMs: ms(od.base_ejection_time, d.baseEjectionMs),
    maxEjectionPercent: pct(od.max_ejection_percent, d.maxEjectionPercent),
    maxEjectionMs: ms(od.max_ejection_time, d.maxEjectionMs),
  };
}
