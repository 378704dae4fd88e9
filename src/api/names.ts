// Kubernetes-style name resolution: service FQDNs, host aliases, resource keys, SPIFFE ids, root namespaces.
import type { Resource } from './types.js';

export const DEFAULT_NAMESPACE = 'default';
export const CLUSTER_DOMAIN = 'cluster.local';
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
export const DEFAULT_ROOT_NAMESPACE = 'trellis-system';
/** Istio's root namespace is always treated as a root too, so Istio policies apply unchanged. */
export const ISTIO_ROOT_NAMESPACE = 'istio-system';

/**
 * Top-level domains that make a two-label host an external name ("example.com") rather than
 * `service.namespace`. Kubernetes resolves both through its DNS search path; with no DNS to ask, this
 * list decides unless the caller knows the namespaces (see resolveHost). Likely namespace names
 * (dev, test, app, ...) are deliberately absent.
 */
export const EXTERNAL_TLDS: ReadonlySet<string> = new Set([
  'com', 'net', 'org', 'io', 'co', 'ai', 'edu', 'gov', 'mil', 'int', 'info', 'biz', 'me',
  'us', 'uk', 'de', 'fr', 'nl', 'eu', 'cn', 'jp', 'in', 'ru', 'br', 'au', 'ca', 'ch', 'se',
  'localhost', 'invalid', 'example',
]);

export function serviceFqdn(name: string, namespace: string = DEFAULT_NAMESPACE): string {
  return `${name}.${namespace}.svc.${CLUSTER_DOMAIN}`.toLowerCase();
}

/** Every spelling a caller may use for a Kubernetes-style service. */
export function hostAliases(name: string, namespace: string = DEFAULT_NAMESPACE): string[] {
  const n = name.toLowerCase();
  const ns = namespace.toLowerCase();
  return [n, `${n}.${ns}`, `${n}.${ns}.svc`, `${n}.${ns}.svc.${CLUSTER_DOMAIN}`];
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end > 0 ? host.slice(1, end) : host;
  }
  const colon = host.lastIndexOf(':');
  // More than one colon without brackets is an IPv6 literal, not host:port.
  if (colon > 0 && host.indexOf(':') === colon && /^\d+$/.test(host.slice(colon + 1))) return host.slice(0, colon);
  return host;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * Resolves a host as written in config (or a Host header) to a canonical name:
 * `reviews`, `reviews.default`, `reviews.default.svc`, `reviews.default.svc.cluster.local` all become
 * `reviews.default.svc.cluster.local`; a short name takes `contextNamespace`. Other dotted hosts,
 * IP literals and wildcards come back verbatim (lowercased, without port or trailing dot).
 * A two-label host `a.b` is `service.namespace` when `b` is in `knownNamespaces` (if given), else
 * when `b` is not one of EXTERNAL_TLDS.
 */
export function resolveHost(
  host: string,
  contextNamespace: string = DEFAULT_NAMESPACE,
  knownNamespaces?: ReadonlySet<string>,
): string {
  let h = stripPort(host.trim()).toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h === '' || h === '*' || h.startsWith('*') || IPV4.test(h) || h.includes(':')) return h;
  const labels = h.split('.');
  if (labels.length === 1) return serviceFqdn(h, contextNamespace || DEFAULT_NAMESPACE);
  if (labels.length === 2 && (knownNamespaces ? knownNamespaces.has(labels[1]) : !EXTERNAL_TLDS.has(labels[1])))
    return serviceFqdn(labels[0], labels[1]);
  if (labels.length === 3 && labels[2] === 'svc') return serviceFqdn(labels[0], labels[1]);
  return h;
}

/** True when the canonical host names an in-mesh Kubernetes-style service (`*.svc.cluster.local`). */
export function isServiceFqdn(fqdn: string): boolean {
  return fqdn.endsWith(`.svc.${CLUSTER_DOMAIN}`) && fqdn.split('.').length === 5;
}

/** Splits `name.ns.svc.cluster.local` into its name and namespace; undefined for other hosts. */
export function splitServiceFqdn(fqdn: string): { name: string; namespace: string } | undefined {
  if (!isServiceFqdn(fqdn)) return undefined;
  const [name, namespace] = fqdn.split('.');
  return { name, namespace };
}

export function namespaceOf(r: Pick<Resource, 'metadata'>): string {
  return r.metadata?.namespace || DEFAULT_NAMESPACE;
}

/** `Kind/namespace/name`: the identity of a resource in a store. */
export function resourceKey(r: Pick<Resource, 'kind' | 'metadata'>): string {
  return `${r.kind}/${namespaceOf(r)}/${r.metadata?.name ?? ''}`;
}

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** The Mesh resource's spec, if any (the first one; analyze reports more than one). */
function meshSpec(resources: readonly Resource[]): { rootNamespace?: string; trustDomain?: string } | undefined {
  return resources.find((r) => r.kind === 'Mesh')?.spec;
}

/** Root namespaces: policies there apply mesh-wide. Mesh.spec.rootNamespace (default trellis-system) and istio-system. */
export function rootNamespaces(resources: readonly Resource[] = []): string[] {
  const root = meshSpec(resources)?.rootNamespace || DEFAULT_ROOT_NAMESPACE;
  return root === ISTIO_ROOT_NAMESPACE ? [root] : [root, ISTIO_ROOT_NAMESPACE];
}

export function isRootNamespace(namespace: string, roots: readonly string[] = rootNamespaces()): boolean {
  return roots.includes(namespace);
}

export function trustDomainOf(resources: readonly Resource[] = []): string {
  return meshSpec(resources)?.trustDomain || DEFAULT_TRUST_DOMAIN;
}
