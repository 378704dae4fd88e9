// Mesh-wide settings resolved from the Mesh resource, defaults applied.
import type { Resource } from '../api/types.js';
import { rootNamespaces, trustDomainOf } from '../api/names.js';
import { parseDurationSeconds } from '../api/duration.js';
import type { MeshSettings } from './model.js';

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

export function meshSettings(resources: readonly Resource[]): MeshSettings {
  const mesh = resources.find((r) => r.kind === 'Mesh');
  const ttl = parseDurationSeconds(mesh?.spec?.certificateTTL);
  return {
    trustDomain: trustDomainOf(resources),
    rootNamespaces: rootNamespaces(resources),
    certificateTtlSeconds: ttl && ttl > 0 ? ttl : 86400,
    ...tracingOf(mesh?.spec?.tracing),
    ...retryBudgetOf(mesh?.spec?.defaults?.retryBudget),
  };
}
