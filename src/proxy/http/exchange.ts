// The per-request object every HTTP layer reads and writes, and the layer contract (linkerd-style stack, callbacks only).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import type { ListenerConfig } from '../config/types.js';
import type { ClusterState, ProxyState } from '../state.js';
import type { EndpointInfo, ForwardDecision } from '../policy-api.js';
import type { WorkloadTls } from '../tls/identity.js';
import type { TrellisErrorCode } from '../errors.js';
import type { ClusterResilience } from '../resilience/index.js';

export type Headers = Record<string, string | string[] | undefined>;
export type { ForwardDecision };

export interface Exchange {
  req: IncomingMessage | Http2ServerRequest;
  res: ServerResponse | Http2ServerResponse;
  /** Set for an HTTP/1.1 Upgrade (WebSocket): the raw client socket and bytes read past the head. */
  upgrade?: { socket: Socket; head: Buffer };
  listener: ListenerConfig;
  /** The snapshot this request started with; later config swaps do not affect it. */
  state: ProxyState;
  caller: WorkloadTls | undefined;
  method: string;
  authority: string;
  /** Normalized path without the query (what routing and, later, authorization see). */
  path: string;
  /** Raw query without '?'. */
  query: string;
  /** Headers to send upstream (a sanitized copy; layers edit it in place). */
  headers: Headers;
  grpc: boolean;
  downstreamH2: boolean;
  /** True once the proxy or this listener drains: HTTP/1.1 responses then carry Connection: close. */
  closing: () => boolean;
  requestId: string;
  startMs: number;
  /** When the request was handed to the forwarding layer (performance.now() ms): upstream time starts here. */
  dispatchMs?: number;
  /** This hop's trace context, set at dispatch when tracing is on (telemetry/tracing.ts). */
  trace?: unknown;
  /** Absolute deadline (performance.now() ms), 0 = none. */
  deadline: number;
  deadlineSource: string;
  decision?: ForwardDecision;
  routeName: string;
  cluster?: ClusterState;
  /** Overrides the cluster's protocol for the upstream hop (inbound: the filter chain's protocol). */
  upstreamProtocol?: string;
  endpoint?: EndpointInfo;
  errorCode: TrellisErrorCode | '';
  /** The rule that decided a proxy-generated answer (authorization rule key, rate-limit policy), for access logs and tap. */
  decidedBy?: string;
  /** Why it decided, one line (may name the policy; never sent to the client). */
  decisionReason?: string;
  grpcStatus: string;
  timer?: NodeJS.Timeout;
  /** Aborts the upstream side (set by the forward layer). */
  abortUpstream?: () => void;
  /** Outbound: the destination cluster's breaker, outlier detector and retry budget (when the proxy keeps them). */
  resilience?: ClusterResilience;
  /** Outbound: this request holds a breaker 'requests' slot, released when the exchange ends. */
  holdsRequestSlot?: boolean;
  /** Outbound: per-request try state of the retrying forward (opaque to other layers). */
  flight?: unknown;
}

export type Handler = (ex: Exchange) => void;
/** A layer wraps the next handler once, at stack assembly; per request it only runs the returned function. */
export type Layer = (next: Handler) => Handler;

export function stack(layers: Layer[], terminal: Handler): Handler {
  let h = terminal;
  for (let i = layers.length - 1; i >= 0; i--) h = layers[i](h);
  return h;
}
