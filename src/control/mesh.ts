// Mesh-wide settings resolved from the Mesh resource, defaults applied.
import type { Resource } from '../api/types.js';
import { rootNamespaces, trustDomainOf } from '../api/names.js';
import { parseDurationSeconds } from '../api/duration.js';
import type { MeshSettings } from './model.js';

export function meshSettings(resources: readonly Resource[]): MeshSettings {
  const mesh = resources.find((r) => r.kind === 'Mesh');
  const ttl = parseDurationSeconds(mesh?.spec?.certificateTTL);
  return {
    trustDomain: trustDomainOf(resources),
    rootNamespaces: rootNamespaces(resources),
    certificateTtlSeconds: ttl && ttl > 0 ? ttl : 86400,
  };
}
