// Builders for compiler test inputs: services, workload instances, config resources, a bookinfo-like mesh.
import type { Resource } from '../../../src/api/types.js';
import type {
  CompileInput,
  MeshSettings,
  PortProtocol,
  ProxyDescriptor,
  ServiceInfo,
  WorkloadInstance,
} from '../../../src/control/model.js';

export const MESH: MeshSettings = {
  trustDomain: 'cluster.local',
  rootNamespaces: ['trellis-system', 'istio-system'],
  certificateTtlSeconds: 86400,
};

export const BUNDLE = '-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n';

export function svc(
  name: string,
  ports: { port: number; targetPort?: number; name?: string; protocol?: PortProtocol }[] = [{ port: 9080, name: 'http' }],
  opts: { namespace?: string; selector?: Record<string, string> } = {},
): ServiceInfo {
  const ns = opts.namespace ?? 'default';
  const fqdn = `${name}.${ns}.svc.cluster.local`;
  return {
    name,
    namespace: ns,
    fqdn,
    aliases: [name, `${name}.${ns}`, `${name}.${ns}.svc`, fqdn],
    ports: ports.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort ?? p.port, protocol: p.protocol ?? 'HTTP' })),
    selector: opts.selector,
    source: 'Service',
  };
}

let nextIp = 10;
export function wl(
  name: string,
  o: {
    namespace?: string;
    labels?: Record<string, string>;
    services?: string[];
    address?: string;
    ports?: { name?: string; port: number; protocol?: PortProtocol }[];
    proxy?: boolean | { inboundPort: number; outboundPort: number };
    locality?: { region?: string; zone?: string; subZone?: string };
    health?: 'HEALTHY' | 'UNHEALTHY' | 'DRAINING';
    sa?: string;
  } = {},
): WorkloadInstance {
  const ns = o.namespace ?? 'default';
  const sa = o.sa ?? name;
  const proxy =
    o.proxy === false || o.proxy === undefined
      ? undefined
      : o.proxy === true
        ? { id: `proxy-${name}`, inboundPort: 15006, outboundPort: 15001 }
        : { id: `proxy-${name}`, ...o.proxy };
  return {
    name,
    namespace: ns,
    labels: o.labels ?? {},
    serviceAccount: sa,
    identity: `spiffe://cluster.local/ns/${ns}/sa/${sa}`,
    services: o.services ?? [],
    address: o.address ?? `10.0.0.${nextIp++}`,
    ports: (o.ports ?? [{ name: 'http', port: 9080 }]).map((p) => ({ name: p.name, port: p.port, protocol: p.protocol ?? 'HTTP' })),
    proxy,
    locality: o.locality,
    health: o.health ?? 'HEALTHY',
    source: proxy ? 'proxy' : 'WorkloadEntry',
  };
}

export function res(kind: string, name: string, spec: unknown, o: { namespace?: string; apiVersion?: string } = {}): Resource {
  return {
    apiVersion: o.apiVersion ?? 'networking.istio.io/v1',
    kind,
    metadata: { name, namespace: o.namespace ?? 'default' },
    spec,
  } as Resource;
}

export function input(services: ServiceInfo[], workloads: WorkloadInstance[], resources: Resource[] = []): CompileInput {
  return { resources, registry: { services, workloads }, mesh: MESH, trustBundlePem: BUNDLE };
}

export function trellisProxy(...workloads: WorkloadInstance[]): ProxyDescriptor {
  return { id: `node~${workloads.map((w) => w.name).join('+')}`, kind: 'trellis', workloads };
}

export const PROXYLESS: ProxyDescriptor = { id: 'proxyless-test', kind: 'proxyless', workloads: [] };

const RV = 'reviews.default.svc.cluster.local';

/** A bookinfo-like mesh: productpage calls reviews (v1, v2, v3) and ratings; each behind a sidecar. */
export function bookinfo(resources: Resource[] = []) {
  nextIp = 10;
  const productpage = wl('productpage-v1', {
    labels: { app: 'productpage', version: 'v1' },
    services: ['productpage.default.svc.cluster.local'],
    address: '10.0.0.2',
    proxy: true,
  });
  const reviews = ['v1', 'v2', 'v3'].map((v, i) =>
    wl(`reviews-${v}`, {
      labels: { app: 'reviews', version: v },
      services: [RV],
      address: `10.0.1.${i + 1}`,
      proxy: true,
      locality: { region: 'eu', zone: i === 2 ? 'eu-b' : 'eu-a' },
    }),
  );
  const ratings = wl('ratings-v1', {
    labels: { app: 'ratings', version: 'v1' },
    services: ['ratings.default.svc.cluster.local'],
    address: '10.0.2.1',
    ports: [{ name: 'http', port: 9080 }],
  });
  const services = [svc('productpage'), svc('reviews'), svc('ratings'), svc('db', [{ port: 5432, name: 'tcp-pg', protocol: 'TCP' }])];
  return { input: input(services, [productpage, ...reviews, ratings], resources), productpage, reviews, ratings };
}
