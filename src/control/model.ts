// Shared control-plane data model: what the registry knows and what the compiler consumes and produces.
import type { Resource } from '../api/types.js';

export type PortProtocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'TCP' | 'TLS' | 'HTTPS';

export interface ServicePort {
  name?: string;
  port: number; // the port callers use
  targetPort: number; // the port the app listens on
  protocol: PortProtocol;
}

/** A service as the registry knows it (from Service, ServiceEntry, or implied by a Workload's `service`). */
export interface ServiceInfo {
  name: string;
  namespace: string;
  fqdn: string; // reviews.default.svc.cluster.local, or a ServiceEntry host
  /** Every spelling a caller may use: reviews, reviews.default, reviews.default.svc, fqdn (ServiceEntry: its hosts). */
  aliases: string[];
  ports: ServicePort[];
  /** Label selector choosing the workload instances (Service.spec.selector); undefined = members by `service` field. */
  selector?: Record<string, string>;
  source: 'Service' | 'ServiceEntry' | 'Workload' | 'WorkloadEntry';
}

export type HealthStatus = 'HEALTHY' | 'UNHEALTHY' | 'DRAINING';

export interface Locality {
  region?: string;
  zone?: string;
  subZone?: string;
}

/** One running instance of a workload (a process behind a proxy, or a WorkloadEntry without one). */
export interface WorkloadInstance {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  serviceAccount: string;
  /** spiffe://<trust domain>/ns/<namespace>/sa/<serviceAccount> */
  identity: string;
  /** FQDNs of the services this instance is a member of. */
  services: string[];
  address: string; // IP literal
  ports: { name?: string; port: number; protocol: PortProtocol }[];
  /** Present when a Trellis proxy fronts this instance. */
  proxy?: {
    id: string;
    inboundPort: number;
    outboundPort: number;
    adminPort?: number;
    /** The proxy process's own /metrics and admin ports (node mode: shared by its workloads), for stats and tap. */
    telemetry?: { metricsPort?: number; adminPort?: number };
  };
  locality?: Locality;
  health: HealthStatus;
  source: 'Workload' | 'WorkloadEntry' | 'ServiceEntry' | 'proxy';
}

/** An immutable view of the registry handed to the compiler. */
export interface RegistrySnapshot {
  services: ServiceInfo[];
  workloads: WorkloadInstance[];
}

/** Mesh-wide settings resolved from the `Mesh` resource with defaults applied. */
export interface MeshSettings {
  trustDomain: string; // default cluster.local
  rootNamespaces: string[]; // [Mesh.spec.rootNamespace ?? 'trellis-system', 'istio-system']
  certificateTtlSeconds: number; // default 86400
  /** Mesh spec.tracing: where proxies export spans (OTLP/HTTP) and the share of new traces they sample. */
  tracing?: { endpoint: string; samplingPercent: number };
  /**
   * Mesh spec.defaults.retryBudget with unset fields filled in (20%, 10/s, 10s); compiled into every outbound cluster.
   * Absent when the Mesh sets none: proxies then apply the same defaults themselves.
   */
  retryBudget?: { retryRatio: number; minRetriesPerSecond: number; ttl: string };
  /**
   * Mesh spec.defaults (besides retryBudget) as duration text, for routes and clusters that set none; each absent when
   * the Mesh leaves it out (then routes have no timeout and no retries, clusters connect within 10s and the proxy's
   * pool closes idle connections after 4s).
   */
  defaults?: MeshDefaults;
  /**
   * Mesh spec.accessLog: absent when the Mesh has no accessLog block (then only a proxy's own flag logs). `enabled`
   * false is an explicit "off" that also overrides `trellis up`'s default log.
   */
  accessLog?: { enabled: boolean; format: 'json' | 'text'; path?: string };
  /** Mesh spec.pathNormalization; absent = MERGE_SLASHES (Trellis's default). */
  pathNormalization?: PathNormalization;
}

export type PathNormalization = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';

export interface MeshDefaults {
  timeout?: string;
  connectTimeout?: string;
  idleTimeout?: string;
  /** Default route retries; retryOn never holds `non-idempotent` (mesh defaults retry idempotent requests only). */
  retries?: { attempts: number; perTryTimeout?: string; retryOn?: string };
}

/** Who is asking for config. */
export interface ProxyDescriptor {
  id: string; // node.id
  kind: 'trellis' | 'proxyless';
  /** Workloads hosted by a Trellis proxy (one in sidecar mode, several in node mode). */
  workloads: WorkloadInstance[];
}

export interface CompileInput {
  resources: Resource[];
  registry: RegistrySnapshot;
  mesh: MeshSettings;
  /** PEM of every root in the trust bundle, concatenated. */
  trustBundlePem: string;
}

/**
 * Compiled resources for one proxy, by type URL then resource name. Values are plain objects in the
 * proto's snake_case shape, nested Anys already packed, ready for `packAny(typeUrl, value)`.
 */
export type XdsSnapshot = Record<string, Record<string, object>>;
