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

export function meshSettings(resources: readonly Resource[]): MeshSettings {
  const mesh = resources.find((r) => r.kind === 'Mesh');
  const ttl = parseDurationSeconds(mesh?.spec?.certificateTTL);
  return {
    trustDomain: trustDomainOf(resources),
    rootNamespaces: rootNamespaces(resources),
    certificateTtlSeconds: ttl && ttl > 0 ? ttl : 86400,
    ...tracingOf(mesh?.spec?.tracing),
  };
}
