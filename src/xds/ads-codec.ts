// DiscoveryRequest encoding and DiscoveryResponse decoding for an ADS client that frames gRPC itself (same objects as grpc-js's).
import type protobuf from 'protobufjs';
import { ADS_OBJECT_OPTIONS, adsRoot } from './protos.js';

export const ADS_METHOD_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

type Obj = Record<string, any>;

let types: { req: protobuf.Type; res: protobuf.Type } | undefined;
function load(): { req: protobuf.Type; res: protobuf.Type } {
  if (!types) {
    const root = adsRoot();
    types = { req: root.lookupType('envoy.service.discovery.v3.DiscoveryRequest'), res: root.lookupType('envoy.service.discovery.v3.DiscoveryResponse') };
  }
  return types;
}

export function encodeDiscoveryRequest(req: Obj): Uint8Array {
  const t = load().req;
  return t.encode(t.fromObject(req)).finish();
}

export function decodeDiscoveryResponse(buf: Uint8Array): Obj {
  const t = load().res;
  return t.toObject(t.decode(buf), ADS_OBJECT_OPTIONS) as Obj;
}
