// Host-name resolution against the registry, port protocols, and the xDS resource names of the contract.
import { resolveHost } from '../../api/names.js';
import type { PortProtocol, RegistrySnapshot, ServiceInfo, ServicePort } from '../model.js';

const SVC_SUFFIX = '.svc.cluster.local';

/** Qualifies a host the way Kubernetes DNS does from namespace `ns`: reviews -> reviews.<ns>.svc.cluster.local. */
export function qualifyHost(host: string, ns: string): string {
  return resolveHost(host, ns);
}

/** Splits "host:port" into its parts (port only when numeric). */
export function splitHostPort(name: string): { host: string; port?: number } {
  const m = /^(.*):(\d+)$/.exec(name);
  return m ? { host: m[1], port: Number(m[2]) } : { host: name };
}

/** Looks services up by the names callers and config use. */
export class ServiceIndex {
  readonly services: ServiceInfo[];
  private readonly byName = new Map<string, ServiceInfo>();

  constructor(registry: RegistrySnapshot) {
    this.services = [...registry.services].sort((a, b) => (a.fqdn < b.fqdn ? -1 : a.fqdn > b.fqdn ? 1 : 0));
    for (const s of this.services) this.byName.set(s.fqdn.toLowerCase(), s);
    // ServiceEntry hosts and other absolute aliases, without shadowing a real FQDN.
    for (const s of this.services)
      for (const a of s.aliases) if (a.includes('.') && !this.byName.has(a.toLowerCase())) this.byName.set(a.toLowerCase(), s);
  }

  /** The service a host names when written in namespace `ns`, if any. */
  resolve(host: string, ns: string): ServiceInfo | undefined {
    return this.byName.get(qualifyHost(host, ns)) ?? this.byName.get(host.toLowerCase());
  }

  /** Every service a (possibly wildcard) VirtualService host covers. */
  covered(host: string, ns: string): ServiceInfo[] {
    if (host === '*') return this.services;
    if (host.startsWith('*.')) {
      const suffix = host.slice(1).toLowerCase();
      return this.services.filter((s) => s.fqdn.endsWith(suffix) || s.aliases.some((a) => a.toLowerCase().endsWith(suffix)));
    }
    const s = this.resolve(host, ns);
    return s ? [s] : [];
  }
}

/** The protocol of a service port: an explicit protocol wins, but a Kubernetes default `TCP` yields to a name prefix. */
export function portProtocol(port: Pick<ServicePort, 'name' | 'protocol'>): PortProtocol {
  const p = (port.protocol ?? 'TCP').toUpperCase() as PortProtocol;
  if (p !== 'TCP') return p;
  const prefix = (port.name ?? '').toLowerCase().split('-')[0];
  const byName: Record<string, PortProtocol> = { http: 'HTTP', http2: 'HTTP2', grpc: 'GRPC', 'grpc-web': 'HTTP2', https: 'HTTPS', tls: 'TLS' };
  return byName[prefix] ?? 'TCP';
}

export function isHttpProtocol(p: PortProtocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC';
}

export function outboundClusterName(port: number, subset: string | undefined, fqdn: string): string {
  return `outbound|${port}|${subset ?? ''}|${fqdn}`;
}

export function inboundClusterName(appPort: number, ns: string, name: string): string {
  return `inbound|${appPort}|${ns}/${name}`;
}

/** Every spelling of a service's host a caller in namespace `callerNs` may use (without port). */
export function hostSpellings(svc: ServiceInfo, callerNs: string): string[] {
  const out: string[] = [];
  if (svc.fqdn.endsWith(SVC_SUFFIX)) {
    if (svc.namespace === callerNs) out.push(svc.name);
    out.push(`${svc.name}.${svc.namespace}`, `${svc.name}.${svc.namespace}.svc`, svc.fqdn);
  } else {
    out.push(svc.fqdn);
  }
  for (const a of svc.aliases) {
    const al = a.toLowerCase();
    // Short aliases only make sense from the service's own namespace.
    if (!al.includes('.') && svc.namespace !== callerNs) continue;
    if (!out.includes(al)) out.push(al);
  }
  return out;
}

/** The service port a route targets: the one numbered `number`, or the service's only / first port. */
export function pickPort(svc: ServiceInfo, number: number | undefined): ServicePort | undefined {
  if (number !== undefined) return svc.ports.find((p) => p.port === number);
  return svc.ports[0];
}
