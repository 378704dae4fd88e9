// Builds an inbound filter chain's layer-7 policy (JWT verifier, RBAC engine, rate limiter) once per config, and keeps it across pushes.
import { createHash } from 'node:crypto';
import { JWT_AUTHN_TYPE, LOCAL_RATELIMIT_TYPE, RBAC_TYPE, FAULT_TYPE, unpackAny } from '../../xds/protos.js';
import { authzFiltersOf, type FetchJwks } from '../authz/index.js';
import type { InboundSecurity } from '../authz/filters.js';
import { rateLimiterFromConfig, type LocalRateLimiter } from '../resilience/index.js';
import type { EscapedSlashes, NormalizeOptions } from '../route/normalize.js';
import type { HttpFilterConfig, InboundChain } from '../config/types.js';

export interface InboundPolicy {
  security: InboundSecurity;
  limiter?: LocalRateLimiter;
  /** Header names only this proxy may set (JWT outputs): removed from every client request before policy runs. */
  stripHeaders: readonly string[];
  escapedSlashes: EscapedSlashes;
  /** Path normalization of this chain (Mesh pathNormalization via the HCM); absent: the normalizer's default. */
  normalize?: NormalizeOptions;
  /** Set when the chain holds a filter this proxy cannot enforce: every request is denied, naming it in logs. */
  denyAll?: string;
  /** Config problems (already failing closed where they concern security); logged once per config. */
  problems: readonly string[];
  /** Cache keys this policy uses (content hashes), to forget entries no chain needs any more. */
  readonly keys: readonly string[];
}

const OPTIONAL_OK = new Set([FAULT_TYPE]);

function digest(entries: readonly HttpFilterConfig[]): string {
  const h = createHash('sha256');
  for (const e of entries) {
    h.update(e.typed_config?.type_url ?? e.name);
    h.update('\0');
    if (e.typed_config) h.update(e.typed_config.value);
    h.update('\0');
  }
  return h.digest('base64');
}

export interface PolicyOptions {
  /** The workload the listener serves: rate-limit buckets are per workload, never shared between two. */
  workload: string;
  fetchJwks?: FetchJwks;
  log(level: 'debug' | 'info' | 'warn' | 'error', msg: string): void;
}

/**
 * Per inbound listener: chain -> policy. A chain object is rebuilt by every config push, so verifiers and
 * limiters are also cached by the content of their filter configs: an unchanged push keeps JWKS caches and
 * rate-limit buckets. `retain` forgets what the current chains no longer use.
 */
export class InboundPolicies {
  private readonly byChain = new WeakMap<InboundChain, InboundPolicy>();
  private readonly security = new Map<string, InboundSecurity>();
  private readonly limiters = new Map<string, LocalRateLimiter | undefined>();

  constructor(private readonly opts: PolicyOptions) {}

  forChain(chain: InboundChain): InboundPolicy {
    let p = this.byChain.get(chain);
    if (!p) {
      p = this.build(chain);
      this.byChain.set(chain, p);
    }
    return p;
  }

  /** Drops cached verifiers and limiters no chain of `chains` uses. */
  retain(chains: readonly InboundChain[]): void {
    const live = new Set<string>();
    for (const c of chains) for (const k of this.forChain(c).keys) live.add(k);
    for (const k of this.security.keys()) if (!live.has(k)) this.security.delete(k);
    for (const k of this.limiters.keys()) if (!live.has(k)) this.limiters.delete(k);
  }

  /** Forgets idle per-caller buckets (lossless); call about once a second. */
  sweep(now?: number): void {
    for (const l of this.limiters.values()) l?.sweep(now);
  }

  limiterCount(): number {
    return this.limiters.size;
  }

  private build(chain: InboundChain): InboundPolicy {
    const where = `inbound chain ${chain.destinationPort ?? '*'}/${chain.transport}`;
    const problems: string[] = [];
    const securityEntries: HttpFilterConfig[] = [];
    const limitEntries: HttpFilterConfig[] = [];
    let denyAll: string | undefined;
    for (const f of chain.httpFilterConfigs ?? []) {
      if (f.disabled) continue;
      const t = f.typed_config?.type_url;
      if (t === RBAC_TYPE || t === JWT_AUTHN_TYPE) securityEntries.push(f);
      else if (t === LOCAL_RATELIMIT_TYPE) limitEntries.push(f);
      else if (f.is_optional || (t !== undefined && OPTIONAL_OK.has(t))) problems.push(`${where}: HTTP filter ${f.name} (${t ?? 'no typed_config'}) is not applied on the inbound; skipped`);
      // Unknown and not optional: it may be a security filter this proxy cannot apply, so nothing passes.
      else denyAll ??= `HTTP filter ${f.name} (${t ?? 'no typed_config'}) is not supported by this proxy`;
    }
    const keys: string[] = [];
    const sKey = `s:${digest(securityEntries)}`;
    keys.push(sKey);
    let security = this.security.get(sKey);
    if (!security) {
      try {
        security = authzFiltersOf(securityEntries, this.opts.fetchJwks);
      } catch (e) {
        security = authzFiltersOf([]);
        denyAll ??= `authorization filters could not be built: ${(e as Error).message}`;
      }
      this.security.set(sKey, security);
    }
    for (const err of security.errors) problems.push(`${where}: ${err}`);
    let limiter: LocalRateLimiter | undefined;
    if (limitEntries.length > 1) denyAll ??= `${limitEntries.length} local_ratelimit filters in one chain (this proxy applies one)`;
    if (limitEntries.length > 0) {
      const lKey = `l:${this.opts.workload}:${digest(limitEntries)}`;
      keys.push(lKey);
      if (this.limiters.has(lKey)) limiter = this.limiters.get(lKey);
      else {
        const warnings: string[] = [];
        try {
          limiter = rateLimiterFromConfig(unpackAny(limitEntries[0].typed_config!), {}, warnings);
        } catch (e) {
          denyAll ??= `local_ratelimit filter ${limitEntries[0].name} cannot be decoded: ${(e as Error).message}`;
        }
        for (const w of warnings) problems.push(`${where}: ${w}`);
        if (!denyAll) this.limiters.set(lKey, limiter);
      }
    }
    if (denyAll) problems.push(`${where}: ${denyAll}; denying every request`);
    for (const p of problems) this.opts.log('warn', `workload ${this.opts.workload}: ${p}`);
    return {
      security,
      limiter,
      stripHeaders: security.jwt?.outputHeaders ?? [],
      escapedSlashes: chain.escapedSlashes ?? 'reject',
      normalize: chain.normalize ?? { escapedSlashes: chain.escapedSlashes ?? 'reject' },
      denyAll,
      problems,
      keys,
    };
  }
}
