// Mesh-wide settings resolved from the Mesh resource, defaults applied.
import type { Resource } from '../api/types.js';
import { rootNamespaces, trustDomainOf } from '../api/names.js';
import { parseDuration, parseDurationSeconds } from '../api/duration.js';
import type { MeshDefaults, MeshSettings, PathNormalization } from './model.js';

/** spec.tracing with an endpoint turns tracing on; sampling is a percentage (default 1). */
function tracingOf(t: { endpoint?: unknown; sampling?: unknown } | undefined): Pick<MeshSettings, 'tracing'> {
  if (!t || typeof t.endpoint !== 'string' || !t.endpoint) return {};
  const raw = typeof t.sampling === 'number' ? t.sampling : typeof t.sampling === 'string' ? Number.parseFloat(t.sampling) : 1;
  const samplingPercent = Number.isFinite(raw) ? Math.min(100, Math.max(0, raw)) : 1;
  return { tracing: { endpoint: t.endpoint, samplingPercent } };
}

const num = (v: unknown): number | undefined => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
};

/**
 * spec.defaults.retryBudget -> the budget every outbound cluster carries. Fields left out (or out of range: validation
 * reports those) take the documented defaults; the window is whole seconds, at least one, as the proxy counts it.
 */
function retryBudgetOf(rb: { retryRatio?: unknown; minRetriesPerSecond?: unknown; ttl?: unknown } | undefined): Pick<MeshSettings, 'retryBudget'> {
  if (!rb || typeof rb !== 'object') return {};
  const ratio = num(rb.retryRatio);
  const min = num(rb.minRetriesPerSecond);
  const ttl = parseDurationSeconds(rb.ttl);
  return {
    retryBudget: {
      retryRatio: ratio !== undefined && ratio >= 0 && ratio <= 100 ? ratio : 20,
      minRetriesPerSecond: min !== undefined && min >= 0 ? Math.floor(min) : 10,
      ttl: `${ttl !== undefined && ttl > 0 ? Math.max(1, Math.floor(ttl)) : 10}s`,
    },
  };
}

/** A duration as written when it parses (validation reports the rest); undefined otherwise. */
function durationText(v: unknown): string | undefined {
  return typeof v === 'string' && parseDuration(v) !== undefined ? v.trim() : undefined;
}

/**
 * retryOn for mesh default retries: as written, minus `non-idempotent` (the defaults retry idempotent requests only;
 * validation warns about the token, TRL0402).
 */
function defaultRetryOn(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const kept = v.split(',').map((x) => x.trim()).filter((x) => x && x !== 'non-idempotent');
  return kept.length > 0 ? kept.join(',') : undefined;
}

/** spec.defaults.{timeout,connectTimeout,idleTimeout,retries}; fields left out stay out (built-in behaviour). */
function defaultsOf(d: Record<string, any> | undefined): Pick<MeshSettings, 'defaults'> {
  if (!d || typeof d !== 'object') return {};
  const out: MeshDefaults = {};
  const timeout = durationText(d.timeout);
  const connectTimeout = durationText(d.connectTimeout);
  const idleTimeout = durationText(d.idleTimeout);
  if (timeout !== undefined) out.timeout = timeout;
  // A zero connect or idle timeout means nothing useful to a connection pool: left to the built-in value.
  if (connectTimeout !== undefined && parseDuration(connectTimeout)! > 0) out.connectTimeout = connectTimeout;
  if (idleTimeout !== undefined && parseDuration(idleTimeout)! > 0) out.idleTimeout = idleTimeout;
  const r = d.retries;
  if (r && typeof r === 'object') {
    const attempts = num(r.attempts);
    if (attempts !== undefined && attempts > 0) {
      const perTryTimeout = durationText(r.perTryTimeout);
      const retryOn = defaultRetryOn(r.retryOn);
      out.retries = { attempts: Math.floor(attempts), ...(perTryTimeout ? { perTryTimeout } : {}), ...(retryOn ? { retryOn } : {}) };
    }
  }
  return Object.keys(out).length > 0 ? { defaults: out } : {};
}

/** spec.accessLog: a block turns logging on unless `enabled: false`; format json unless text; path default stdout. */
function accessLogOf(a: Record<string, any> | undefined): Pick<MeshSettings, 'accessLog'> {
  if (!a || typeof a !== 'object') return {};
  const path = typeof a.path === 'string' && a.path.trim() !== '' && a.path.trim() !== '-' ? a.path.trim() : undefined;
  return { accessLog: { enabled: a.enabled !== false, format: a.format === 'text' ? 'text' : 'json', ...(path ? { path } : {}) } };
}

const NORMALIZATIONS: readonly PathNormalization[] = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'];

function pathNormalizationOf(v: unknown): Pick<MeshSettings, 'pathNormalization'> {
  return typeof v === 'string' && (NORMALIZATIONS as readonly string[]).includes(v) ? { pathNormalization: v as PathNormalization } : {};
}

export function meshSettings(resources: readonly Resource[]): MeshSettings {
  const mesh = resources.find((r) => r.kind === 'Mesh');
  const ttl = parseDurationSeconds(mesh?.spec?.certificateTTL);
  return {
    trustDomain: trustDomainOf(resources),
    rootNamespaces: rootNamespaces(resources),
    certificateTtlSeconds: ttl && ttl > 0 ? ttl : 86400,
    ...tracingOf(mesh?.spec?.tracing),
    ...retryBudgetOf(mesh?.spec?.defaults?.retryBudget),
    ...defaultsOf(mesh?.spec?.defaults),
    ...accessLogOf(mesh?.spec?.accessLog),
    ...pathNormalizationOf(mesh?.spec?.pathNormalization),
  };
}
