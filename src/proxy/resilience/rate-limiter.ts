// Local rate limiting: lazily refilled token buckets, a total and a per-caller bucket per rule, built from Envoy's LocalRateLimit.
import { asArray, asMsg, asString, durationMs, fractionalPercent, wrappedNumber } from '../route/proto.js';

/** Tokens refill continuously at tokensPerFill / fillInterval; the bucket starts full (as Envoy's). */
export class TokenBucket {
  tokens: number;
  private last: number;
  private readonly perMs: number;

  constructor(
    readonly capacity: number,
    tokensPerFill: number,
    fillIntervalMs: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.last = now;
    this.perMs = tokensPerFill / fillIntervalMs;
  }

  /** Adds what accrued since the last call. */
  refill(now: number): void {
    const dt = now - this.last;
    if (dt <= 0) return;
    this.last = now;
    const t = this.tokens + dt * this.perMs;
    this.tokens = t > this.capacity ? this.capacity : t;
  }

  /** True when full (an idle bucket: forgetting it loses nothing). */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.capacity;
  }

  /** Milliseconds until one whole token is available (0 when one is). */
  msUntilToken(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : (1 - this.tokens) / this.perMs;
  }
}

export interface BucketSpec {
  maxTokens: number;
  tokensPerFill: number;
  fillIntervalMs: number;
}

export interface RateLimitRule {
  /** What decided, for access logs and x-trellis-error bodies: the policy "ns/name". */
  name: string;
  /** Path prefixes (a trailing `*` is dropped); absent = every path. */
  paths?: string[];
  /** Route names; absent = every route. */
  routes?: string[];
  total?: BucketSpec;
  perCaller?: BucketSpec;
}

export type RateLimitVerdict =
  | { allowed: true }
  | { allowed: false; retryAfterSeconds: number; limit: 'total' | 'per_caller'; rule: string };

const ALLOWED: RateLimitVerdict = Object.freeze({ allowed: true });

export interface LimiterOptions {
  now?: () => number;
  /** Per-caller buckets kept per rule; the least recently used goes first. */
  maxCallers?: number;
  /** Fraction of decisions enforced (Envoy filter_enforced); the rest are only counted. */
  enforce?: number;
  random?: () => number;
}

class CompiledRule {
  total?: TokenBucket;
  readonly callers = new Map<string, TokenBucket>();
  /**
   * The caller seen last and its bucket: already the map's most recently used entry, so a repeat needs no LRU
   * re-insert (a Map delete + set per request was the limiter's top cost in the policy benchmark's profile;
   * an inbound mostly sees the same few callers back to back).
   */
  lastCaller: string | undefined;
  lastBucket: TokenBucket | undefined;
  readonly prefixes: string[] | undefined;
  readonly routes: Set<string> | undefined;
  constructor(
    readonly rule: RateLimitRule,
    now: number,
  ) {
    if (rule.total) this.total = new TokenBucket(rule.total.maxTokens, rule.total.tokensPerFill, rule.total.fillIntervalMs, now);
    this.prefixes = rule.paths && rule.paths.length > 0 ? rule.paths.map((p) => (p.endsWith('*') ? p.slice(0, -1) : p)) : undefined;
    this.routes = rule.routes && rule.routes.length > 0 ? new Set(rule.routes) : undefined;
  }
  applies(route: string | undefined, path: string | undefined): boolean {
    if (this.routes !== undefined && (route === undefined || !this.routes.has(route))) return false;
    if (this.prefixes !== undefined) {
      if (path === undefined) return false;
      let hit = false;
      for (const p of this.prefixes) if (path.startsWith(p)) { hit = true; break; }
      if (!hit) return false;
    }
    return true;
  }
}

/**
 * The inbound rate limit of one workload. Each rule that applies to a request must have a token in its
 * total bucket and in the caller's bucket; only then is one token taken from each (a refused request
 * costs nothing).
 */
export class LocalRateLimiter {
  private readonly rules: CompiledRule[];
  private readonly now: () => number;
  private readonly maxCallers: number;
  private readonly enforce: number;
  private readonly random: () => number;
  /** Metrics: `trellis_rate_limited_total{limit}` and allowed requests. */
  allowedTotal = 0;
  readonly limited: Record<'total' | 'per_caller', number> = { total: 0, per_caller: 0 };
  /** Over the limit but let through (filter_enforced below 100%). */
  shadowLimited = 0;

  constructor(rules: RateLimitRule[], opts: LimiterOptions = {}) {
    this.now = opts.now ?? Date.now;
    const t = this.now();
    this.rules = rules.map((r) => new CompiledRule(r, t));
    this.maxCallers = Math.max(1, opts.maxCallers ?? 10_000);
    this.enforce = opts.enforce ?? 1;
    this.random = opts.random ?? Math.random;
  }

  /** Some rule applies only to certain paths: deciding needs the normalized request path (the full HTTP stack). */
  get pathScoped(): boolean {
    return this.rules.some((r) => r.prefixes !== undefined);
  }

  get ruleNames(): string[] {
    return this.rules.map((r) => r.rule.name);
  }

  /**
   * One request from `caller` (SPIFFE ID over mTLS; the client IP, or 'unauthenticated', otherwise),
   * routed by `route`, for normalized `path`.
   */
  take(caller: string, route?: string, path?: string, now: number = this.now()): RateLimitVerdict {
    let blockedBy: TokenBucket | undefined;
    let blockedRule: CompiledRule | undefined;
    let blockedLimit: 'total' | 'per_caller' = 'total';
    const rules = this.rules;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i];
      if (!r.applies(route, path)) continue;
      const t = r.total;
      if (t !== undefined) {
        t.refill(now);
        if (t.tokens < 1) {
          blockedBy = t;
          blockedRule = r;
          blockedLimit = 'total';
          break;
        }
      }
      const spec = r.rule.perCaller;
      if (spec !== undefined) {
        const b = this.callerBucket(r, spec, caller, now);
        b.refill(now);
        if (b.tokens < 1) {
          blockedBy = b;
          blockedRule = r;
          blockedLimit = 'per_caller';
          break;
        }
      }
    }
    if (blockedBy !== undefined && (this.enforce >= 1 || this.random() < this.enforce)) {
      this.limited[blockedLimit]++;
      const retryAfterSeconds = Math.max(1, Math.ceil(blockedBy.msUntilToken(now) / 1000));
      return { allowed: false, retryAfterSeconds, limit: blockedLimit, rule: blockedRule!.rule.name };
    }
    if (blockedBy !== undefined) this.shadowLimited++;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i];
      if (!r.applies(route, path)) continue;
      if (r.total !== undefined && r.total.tokens >= 1) r.total.tokens--;
      if (r.rule.perCaller !== undefined) {
        const b = r.lastCaller === caller ? r.lastBucket : r.callers.get(caller);
        if (b !== undefined && b.tokens >= 1) b.tokens--;
      }
    }
    this.allowedTotal++;
    return ALLOWED;
  }

  /** Forgets callers whose buckets refilled completely (lossless); call now and then, e.g. on a timer. */
  sweep(now: number = this.now()): void {
    for (const r of this.rules) {
      for (const [k, b] of r.callers) {
        if (!b.full(now)) continue;
        r.callers.delete(k);
        if (k === r.lastCaller) r.lastCaller = r.lastBucket = undefined;
      }
    }
  }

  /** Callers currently tracked, over all rules (a gauge). */
  trackedCallers(): number {
    let n = 0;
    for (const r of this.rules) n += r.callers.size;
    return n;
  }

  private callerBucket(r: CompiledRule, spec: BucketSpec, caller: string, now: number): TokenBucket {
    if (caller === r.lastCaller) return r.lastBucket!;
    const m = r.callers;
    let b = m.get(caller);
    if (b !== undefined) {
      // Re-insert: Map order is then least-recently-used first.
      m.delete(caller);
      m.set(caller, b);
    } else {
      if (m.size >= this.maxCallers) {
        const oldest = m.keys().next().value;
        if (oldest !== undefined) m.delete(oldest);
      }
      b = new TokenBucket(spec.maxTokens, spec.tokensPerFill, spec.fillIntervalMs, now);
      m.set(caller, b);
    }
    r.lastCaller = caller;
    r.lastBucket = b;
    return b;
  }
}

// ---------------------------------------------------------------- from xDS

/**
 * Descriptor entry keys Trellis writes into LocalRateLimit.descriptors (the control plane's ratelimit
 * compiler uses the same strings). One descriptor per limit:
 *   trellis.policy = "<ns>/<name>"      which policy (required)
 *   source.principal = "*"              present: one bucket per caller; absent: one bucket for all
 *   trellis.path = "<prefix>[*]"        repeatable; any matches (absent: every path)
 *   trellis.route = "<route name>"      repeatable; any matches (absent: every route)
 * The filter-level token_bucket, when set, is one more total limit over every request.
 */
export const DESCRIPTOR_POLICY = 'trellis.policy';
export const DESCRIPTOR_CALLER = 'source.principal';
export const DESCRIPTOR_PATH = 'trellis.path';
export const DESCRIPTOR_ROUTE = 'trellis.route';

function bucketSpec(v: unknown): BucketSpec | undefined {
  const m = asMsg(v);
  if (!m) return undefined;
  const maxTokens = wrappedNumber(m.max_tokens) ?? 0;
  const tokensPerFill = m.tokens_per_fill === undefined || m.tokens_per_fill === null ? 1 : wrappedNumber(m.tokens_per_fill) ?? 1;
  const fillIntervalMs = durationMs(m.fill_interval) ?? 0;
  if (!(maxTokens > 0) || !(tokensPerFill > 0) || !(fillIntervalMs > 0)) return undefined;
  return { maxTokens, tokensPerFill, fillIntervalMs };
}

/**
 * A limiter from an unpacked envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit; undefined
 * when it limits nothing (no usable bucket, or filter_enabled 0% / unset, as Envoy defaults for safety).
 * Descriptors without a `trellis.policy` entry are ignored with a warning (Envoy route actions are not implemented).
 */
export function rateLimiterFromConfig(cfg: Record<string, unknown>, opts: LimiterOptions = {}, warnings: string[] = []): LocalRateLimiter | undefined {
  const where = `local_ratelimit ${asString(cfg.stat_prefix) ?? ''}`.trim();
  const enabled = fractionalPercent(asMsg(cfg.filter_enabled)?.default_value);
  if (enabled <= 0) return undefined;
  if (enabled < 1) warnings.push(`${where}: filter_enabled below 100% is treated as 100%`);
  const enforce = fractionalPercent(asMsg(cfg.filter_enforced)?.default_value);
  const rules: RateLimitRule[] = [];
  const top = bucketSpec(cfg.token_bucket);
  if (top) {
    // The Trellis compiler names the policy behind the filter-level bucket in stat_prefix: "ratelimit|ns/name".
    const prefix = asString(cfg.stat_prefix) ?? 'local_ratelimit';
    rules.push({ name: prefix.startsWith('ratelimit|') ? prefix.slice('ratelimit|'.length) : prefix, total: top });
  }
  const byPolicy = new Map<string, RateLimitRule>();
  for (const raw of asArray(cfg.descriptors)) {
    const d = asMsg(raw) ?? {};
    let policy: string | undefined;
    let perCaller = false;
    const paths: string[] = [];
    const routes: string[] = [];
    let unknown: string | undefined;
    for (const e of asArray(d.entries)) {
      const en = asMsg(e) ?? {};
      const key = asString(en.key) ?? '';
      const value = asString(en.value) ?? '';
      if (key === DESCRIPTOR_POLICY) policy = value;
      else if (key === DESCRIPTOR_CALLER && value === '*') perCaller = true;
      else if (key === DESCRIPTOR_PATH) paths.push(value);
      else if (key === DESCRIPTOR_ROUTE) routes.push(value);
      else unknown = key;
    }
    const spec = bucketSpec(d.token_bucket);
    if (policy === undefined || unknown !== undefined || !spec) {
      warnings.push(`${where}: descriptor ${policy ?? '(no trellis.policy)'} ${unknown !== undefined ? `has entry '${unknown}' this proxy cannot evaluate` : !spec ? 'has no usable token_bucket' : 'is not a Trellis descriptor'}; ignored`);
      continue;
    }
    // A policy's total and per-caller descriptors carry the same paths/routes; merge them into one rule.
    const key = `${policy}|${paths.join(',')}|${routes.join(',')}`;
    let rule = byPolicy.get(key);
    if (!rule) {
      rule = { name: policy, ...(paths.length ? { paths } : {}), ...(routes.length ? { routes } : {}) };
      byPolicy.set(key, rule);
      rules.push(rule);
    }
    if (perCaller) rule.perCaller = spec;
    else rule.total = spec;
  }
  if (rules.length === 0) return undefined;
  return new LocalRateLimiter(rules, { ...opts, enforce: opts.enforce ?? enforce });
}
