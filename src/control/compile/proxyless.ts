// Proxyless gRPC clients: subscribed listener names -> api_listener Listeners pointing at per-service route configs.
import { HCM_TYPE } from '../../xds/protos.js';
import { pack as packAny } from './pack.js';
import type { ServiceInfo, ServicePort } from '../model.js';
import { type ServiceIndex, portProtocol, splitHostPort } from './hosts.js';
import { faultFilter, routerFilter } from './listeners.js';
import { grpcRouteConfigName } from './route-configs.js';

/** The namespace short names resolve in for a proxyless client (it tells us none). */
export const PROXYLESS_NAMESPACE = 'default';

/** The port a proxyless client means when it names none: the first gRPC/HTTP2 port, else the first HTTP port, else the first. */
export function defaultGrpcPort(svc: ServiceInfo): ServicePort | undefined {
  const proto = (p: ServicePort) => portProtocol(p);
  return (
    svc.ports.find((p) => proto(p) === 'GRPC' || proto(p) === 'HTTP2') ??
    svc.ports.find((p) => proto(p) === 'HTTP') ??
    svc.ports[0]
  );
}

/** Resolves a listener name such as `reviews`, `reviews.default:50051` or the FQDN to (service, port). */
export function resolveListenerName(index: ServiceIndex, name: string): { svc: ServiceInfo; port: ServicePort } | undefined {
  const { host, port } = splitHostPort(name);
  const svc = index.resolve(host, PROXYLESS_NAMESPACE);
  if (!svc) return undefined;
  const p = port !== undefined ? svc.ports.find((x) => x.port === port) : defaultGrpcPort(svc);
  return p ? { svc, port: p } : undefined;
}

export function proxylessListener(name: string, svc: ServiceInfo, port: ServicePort, withFault: boolean): object {
  const hcm = {
    rds: { route_config_name: grpcRouteConfigName(svc, port), config_source: { ads: {} } },
    http_filters: withFault ? [faultFilter(), routerFilter()] : [routerFilter()],
  };
  return { name, api_listener: { api_listener: packAny(HCM_TYPE, hcm) } };
}
