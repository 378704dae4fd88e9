// The CertificateService client (CSR + join token -> SVID chain) on the small gRPC client, so proxies need not load grpc-js.
import protobuf from 'protobufjs';
import { GrpcCallError, GrpcChannel, GrpcStatus } from '../xds/grpc-h2-client.js';
import { CA_PROTO_FILE } from './ca-proto.js';

export interface CertificateResponse {
  certChainPem: string[];
  trustBundlePem: string;
}

/** A gRPC error from the CA, with its status code kept for callers that retry. */
export class CaRequestError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'CaRequestError';
  }
}

const PATH = '/trellis.ca.v1.CertificateService/CreateCertificate';

let types: { req: protobuf.Type; res: protobuf.Type } | undefined;
function load(): { req: protobuf.Type; res: protobuf.Type } {
  if (!types) {
    const root = protobuf.loadSync(CA_PROTO_FILE);
    types = { req: root.lookupType('trellis.ca.v1.CreateCertificateRequest'), res: root.lookupType('trellis.ca.v1.CreateCertificateResponse') };
  }
  return types;
}

/** Sends one CSR to the CA at `address` (plaintext gRPC, e.g. 127.0.0.1:15010). */
export async function requestCertificate(
  address: string,
  token: string,
  csrPem: string,
  ttlSeconds: number,
  deadlineMs = 10_000,
  proxyId?: string,
): Promise<CertificateResponse> {
  const { req, res } = load();
  const channel = new GrpcChannel(address);
  const md: Record<string, string> = { authorization: `Bearer ${token}` };
  if (proxyId) md['x-trellis-proxy-id'] = proxyId;
  let reply: Buffer;
  try {
    const msg = req.encode(req.fromObject({ csr: csrPem, validitySeconds: Math.max(0, Math.floor(ttlSeconds)) })).finish();
    reply = await channel.unary(PATH, msg, md, deadlineMs);
  } catch (err) {
    const e = err instanceof GrpcCallError ? err : new GrpcCallError(GrpcStatus.UNKNOWN, (err as Error).message);
    throw new CaRequestError(e.code, describeError(address, e));
  } finally {
    channel.close();
  }
  let out: { certChain?: string[]; trustBundle?: string };
  try {
    out = res.toObject(res.decode(reply), { defaults: true }) as typeof out;
  } catch (err) {
    throw new CaRequestError(GrpcStatus.INTERNAL, `the CA at ${address} sent a response that does not decode: ${(err as Error).message}`);
  }
  if (!out.certChain?.length) throw new CaRequestError(GrpcStatus.INTERNAL, `the CA at ${address} returned no certificate`);
  return { certChainPem: out.certChain, trustBundlePem: out.trustBundle ?? '' };
}

/** One readable line for a failed call; connection failures name the socket error. */
function describeError(address: string, err: GrpcCallError): string {
  const details = (err.details || err.message || '').trim();
  if (err.code === GrpcStatus.UNAVAILABLE) return `cannot reach the CA at ${address} (${details})`;
  if (err.code === GrpcStatus.DEADLINE_EXCEEDED) return `the CA at ${address} did not answer in time`;
  return `the CA at ${address} refused: ${details}`;
}
