// The CertificateService gRPC server (CSR + join token -> SVID); the client is ca-client.ts.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { CertificateAuthority } from './ca.js';
import { DEFAULT_SVID_TTL_SECONDS } from './ca.js';
import { parseCsr, CsrError } from './csr.js';
import { formatSpiffeId } from './spiffe.js';
import { TokenError, type TokenIssuer } from './token.js';

import { CA_PROTO_FILE } from './ca-proto.js';
export { CA_PROTO_FILE, CA_SERVICE_NAME } from './ca-proto.js';
export { CaRequestError, requestCertificate, type CertificateResponse } from './ca-client.js';
export const DEFAULT_MAX_TTL_SECONDS = DEFAULT_SVID_TTL_SECONDS;

export type CaRefusal = 'unauthenticated' | 'permission_denied' | 'invalid_csr' | 'internal';

/** Counters for the control plane's metrics. */
export const caMetrics = { signed: 0, refused: new Map<CaRefusal, number>() };

interface CreateRequest {
  csr: string;
  validity_seconds: number | string;
}
interface CreateResponse {
  cert_chain: string[];
  trust_bundle: string;
}

let serviceCache: grpc.ServiceDefinition | undefined;
let clientCtor: grpc.ServiceClientConstructor | undefined;

function loadService(): { service: grpc.ServiceDefinition; Client: grpc.ServiceClientConstructor } {
  if (!serviceCache || !clientCtor) {
    const def = protoLoader.loadSync(CA_PROTO_FILE, { keepCase: true, longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      trellis: { ca: { v1: { CertificateService: grpc.ServiceClientConstructor } } };
    };
    clientCtor = pkg.trellis.ca.v1.CertificateService;
    serviceCache = clientCtor.service;
  }
  return { service: serviceCache, Client: clientCtor };
}

export interface CaServiceDeps {
  ca: CertificateAuthority;
  tokens: TokenIssuer;
  /** The longest lifetime issued; a function is asked on every request (the Mesh's certificateTTL can change at run time). */
  maxTtlSeconds?: number | (() => number);
  /** Called after each signature; `proxyId` is what the caller sent as `x-trellis-proxy-id` metadata, if anything. */
  onSigned?(id: string, info: SignedInfo): void;
  onRefused?(reason: string): void;
}

/** What was issued, for status, `trellis check` and root rotation (which waits until no proxy holds an old-root certificate). */
export interface SignedInfo {
  proxyId?: string;
  notBefore: Date;
  notAfter: Date;
  serial: string;
  /** Fingerprint of the root the certificate chains to. */
  rootFingerprint?: string;
}

class Refusal extends Error {
  constructor(
    readonly code: grpc.status,
    readonly reason: CaRefusal,
    message: string,
  ) {
    super(message);
  }
}

function bearer(md: grpc.Metadata): string {
  const v = md.get('authorization')[0];
  const s = typeof v === 'string' ? v : v ? v.toString('utf8') : '';
  const m = /^Bearer\s+(\S+)\s*$/i.exec(s);
  if (!m) throw new Refusal(grpc.status.UNAUTHENTICATED, 'unauthenticated', 'missing join token: send "authorization: Bearer <token>" metadata');
  return m[1];
}

/** Registers CertificateService on a server (the control plane's ADS server, typically). */
export function addCertificateService(server: grpc.Server, deps: CaServiceDeps): void {
  const maxTtlOf = (): number => {
    const m = deps.maxTtlSeconds;
    let v: number;
    try {
      v = typeof m === 'function' ? m() : (m ?? DEFAULT_MAX_TTL_SECONDS);
    } catch {
      v = DEFAULT_MAX_TTL_SECONDS;
    }
    return Number.isFinite(v) && v > 0 ? v : DEFAULT_MAX_TTL_SECONDS;
  };
  const handle = async (
    call: grpc.ServerUnaryCall<CreateRequest, CreateResponse>,
  ): Promise<{ res: CreateResponse; id: string; info: SignedInfo }> => {
    const token = bearer(call.metadata);
    let grant;
    try {
      grant = await deps.tokens.verify(token);
    } catch (err) {
      const msg = err instanceof TokenError ? err.message : `the token cannot be verified: ${(err as Error).message}`;
      throw new Refusal(grpc.status.UNAUTHENTICATED, 'unauthenticated', msg);
    }
    if (grant.trustDomain && grant.trustDomain !== deps.ca.trustDomain) {
      throw new Refusal(
        grpc.status.PERMISSION_DENIED,
        'permission_denied',
        `the token is for trust domain "${grant.trustDomain}" but this CA serves "${deps.ca.trustDomain}"`,
      );
    }
    const granted = formatSpiffeId(deps.ca.trustDomain, grant.namespace, grant.serviceAccount);
    let csr;
    try {
      csr = parseCsr(call.request.csr ?? '');
    } catch (err) {
      const msg = err instanceof CsrError ? err.message : String(err);
      throw new Refusal(grpc.status.INVALID_ARGUMENT, 'invalid_csr', msg);
    }
    const asked = [...csr.uriSans, ...csr.commonNames.filter((cn) => cn !== '')];
    const other = asked.find((n) => n !== granted);
    if (other !== undefined || csr.uriSans.length > 1) {
      throw new Refusal(
        grpc.status.PERMISSION_DENIED,
        'permission_denied',
        `the token grants ${granted} but the CSR asks for ${other ?? csr.uriSans.join(', ')}`,
      );
    }
    const askedTtl = Number(call.request.validity_seconds) || 0;
    const maxTtl = maxTtlOf();
    const ttl = askedTtl > 0 ? Math.min(askedTtl, maxTtl) : Math.min(DEFAULT_SVID_TTL_SECONDS, maxTtl);
    const rootFingerprint = deps.ca.roots().find((r) => r.signing)?.fingerprint;
    const signed = await deps.ca.signCsr(csr, { spiffeId: granted, ttlSeconds: ttl });
    const proxyIdValue = call.metadata.get('x-trellis-proxy-id')[0];
    const info: SignedInfo = {
      proxyId: proxyIdValue === undefined ? undefined : String(proxyIdValue),
      notBefore: signed.notBefore,
      notAfter: signed.notAfter,
      serial: signed.serial,
      rootFingerprint,
    };
    return { res: { cert_chain: signed.certChainPem, trust_bundle: deps.ca.trustBundlePem() }, id: granted, info };
  };

  const { service } = loadService();
  server.addService(service, {
    CreateCertificate: (
      call: grpc.ServerUnaryCall<CreateRequest, CreateResponse>,
      callback: grpc.sendUnaryData<CreateResponse>,
    ) => {
      handle(call).then(
        ({ res, id, info }) => {
          caMetrics.signed++;
          try {
            deps.onSigned?.(id, info);
          } catch {
            /* a metrics hook must not fail the call */
          }
          callback(null, res);
        },
        (err: unknown) => {
          const r =
            err instanceof Refusal
              ? err
              : new Refusal(grpc.status.INTERNAL, 'internal', `the CA failed to sign: ${(err as Error).message}`);
          caMetrics.refused.set(r.reason, (caMetrics.refused.get(r.reason) ?? 0) + 1);
          try {
            deps.onRefused?.(r.reason);
          } catch {
            /* ignore */
          }
          callback({ code: r.code, details: r.message });
        },
      );
    },
  } as grpc.UntypedServiceImplementation);
}
