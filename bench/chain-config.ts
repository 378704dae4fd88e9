// Static configs for the benchmark's two-proxy chain (caller a -> service b), compiled from mesh resources by the real compiler.
import type { Resource } from '../src/api/types.js';
import { compileForProxy } from '../src/control/compile/index.js';
import { meshSettings } from '../src/control/mesh.js';
import type { CompileInput, ServiceInfo, WorkloadInstance } from '../src/control/model.js';
import { CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, SECRET_TYPE, packAny, unpackAny } from '../src/xds/protos.js';

export interface ChainPorts {
  /** The app behind b (any HTTP/1.1 server on 127.0.0.1). */
  app: number;
  /** a's outbound listener: where the load generator sends `Host: b`. */
  outA: number;
  inA: number;
  outB: number;
  /** b's inbound listener: a's mTLS connections land here. */
  inB: number;
  /** a has no app of its own; a port nothing listens on. */
  appA: number;
}

function service(name: string, targetPort: number): ServiceInfo {
  const fqdn = `${name}.default.svc.cluster.local`;
  return {
    name,
    namespace: 'default',
    fqdn,
    aliases: [name, `${name}.default`, `${name}.default.svc`, fqdn],
    ports: [{ name: 'http', port: 80, targetPort, protocol: 'HTTP' }],
    source: 'Service',
  };
}

function workload(name: string, appPort: number, inboundPort: number, outboundPort: number): WorkloadInstance {
  return {
    name,
    namespace: 'default',
    labels: { app: name },
    serviceAccount: name,
    identity: `spiffe://cluster.local/ns/default/sa/${name}`,
    services: [`${name}.default.svc.cluster.local`],
    address: '127.0.0.1',
    ports: [{ name: 'http', port: appPort, protocol: 'HTTP' }],
    proxy: { id: `bench-${name}`, inboundPort, outboundPort },
    health: 'HEALTHY',
    source: 'proxy',
  };
}

/** Decoded xDS resources the way the proxy's xDS client hands them over (encoded, then decoded). */
function staticOf(snapshot: Record<string, Record<string, object>>): Record<string, object[]> {
  const of = (type: string) => Object.values(snapshot[type] ?? {}).map((r) => unpackAny(packAny(type, r)) as object);
  return { listeners: of(LISTENER_TYPE), routes: of(ROUTE_TYPE), clusters: of(CLUSTER_TYPE), endpoints: of(ENDPOINT_TYPE), secrets: of(SECRET_TYPE) };
}

/**
 * What `trellis control` would send proxy a and proxy b for `resources` (VirtualService, DestinationRule,
 * RateLimitPolicy, Mesh, ...), as `--static-config` JSON objects.
 */
export function chainConfigs(resources: Resource[], ports: ChainPorts, trustBundlePem: string): { a: Record<string, object[]>; b: Record<string, object[]> } {
  const a = workload('a', ports.appA, ports.inA, ports.outA);
  const b = workload('b', ports.app, ports.inB, ports.outB);
  const input: CompileInput = {
    resources,
    registry: { services: [service('a', ports.appA), service('b', ports.app)], workloads: [a, b] },
    mesh: meshSettings(resources),
    trustBundlePem,
  };
  return {
    a: staticOf(compileForProxy(input, { id: 'bench-a', kind: 'trellis', workloads: [a] })),
    b: staticOf(compileForProxy(input, { id: 'bench-b', kind: 'trellis', workloads: [b] })),
  };
}
