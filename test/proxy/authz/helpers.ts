// Test helpers: AuthorizationPolicy YAML-shaped objects through compile -> packAny -> unpackAny -> compileRbac -> evaluate.
import type { AuthorizationPolicySpec, Resource } from '../../../src/api/types.js';
import { compileAuthorization } from '../../../src/control/compile/authz/index.js';
import type { MeshSettings, WorkloadInstance } from '../../../src/control/model.js';
import { unpackAny } from '../../../src/xds/protos.js';
import { compileRbac, evaluate } from '../../../src/proxy/authz/engine.js';
import type { AuthzDecision, AuthzRequest } from '../../../src/proxy/authz/types.js';

export const MESH: MeshSettings = {
  trustDomain: 'cluster.local',
  rootNamespaces: ['trellis-system', 'istio-system'],
  certificateTtlSeconds: 86400,
};

export function workload(over: Partial<WorkloadInstance> = {}): WorkloadInstance {
  const ns = over.namespace ?? 'default';
  return {
    name: 'httpbin-1',
    namespace: ns,
    labels: { app: 'httpbin' },
    serviceAccount: 'httpbin',
    identity: `spiffe://cluster.local/ns/${ns}/sa/httpbin`,
    services: [`httpbin.${ns}.svc.cluster.local`],
    address: '127.0.0.1',
    ports: [{ port: 8000, protocol: 'HTTP' }],
    health: 'HEALTHY',
    source: 'Workload',
    ...over,
  };
}

export interface PolicyInput {
  name?: string;
  namespace?: string;
  spec: AuthorizationPolicySpec | Record<string, unknown>;
}

export function policy(p: PolicyInput, i = 0): Resource<AuthorizationPolicySpec> {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: p.name ?? `p${i}`, namespace: p.namespace ?? 'default' },
    spec: p.spec as AuthorizationPolicySpec,
  };
}

export const BASE_REQUEST: AuthzRequest = {
  principal: 'spiffe://cluster.local/ns/default/sa/sleep',
  sourceIp: '10.0.0.7',
  directRemoteIp: '10.0.0.7',
  destinationPort: 8000,
  destinationIp: '10.0.0.9',
  sni: 'outbound_.8000_._.httpbin.default.svc.cluster.local',
  method: 'GET',
  path: '/',
  host: 'httpbin.default.svc.cluster.local',
  headers: {},
};

/** Compiles policies for a workload end to end and returns a decide function plus the compiler's warnings. */
export function pipeline(policies: PolicyInput[], wl: WorkloadInstance = workload(), mesh: MeshSettings = MESH) {
  const compiled = compileAuthorization(policies.map(policy), wl, mesh);
  const engine = compileRbac(compiled.filters.map((f) => unpackAny(f.typed_config)));
  return {
    compiled,
    engine,
    decide: (req: Partial<AuthzRequest>): AuthzDecision => evaluate(engine, { ...BASE_REQUEST, ...req }),
  };
}
