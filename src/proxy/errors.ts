// Responses the proxy itself generates: always `x-trellis-error: <code>` and a one-line body naming the cause.
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';

export type TrellisErrorCode =
  | 'no_route'
  | 'no_healthy_upstream'
  | 'upstream_connect_failure'
  | 'upstream_reset'
  | 'upstream_timeout'
  | 'request_timeout'
  | 'overflow'
  | 'denied'
  | 'unauthenticated'
  | 'rate_limited'
  | 'fault_injected'
  | 'mtls_required'
  | 'bad_request'
  | 'headers_too_large'
  | 'not_ready';

export const ERROR_STATUS: Record<TrellisErrorCode, number> = {
  no_route: 404,
  no_healthy_upstream: 503,
  upstream_connect_failure: 503,
  upstream_reset: 503,
  upstream_timeout: 504,
  request_timeout: 504,
  overflow: 503,
  denied: 403,
  unauthenticated: 401,
  rate_limited: 429,
  fault_injected: 503,
  mtls_required: 403,
  bad_request: 400,
  headers_too_large: 431,
  not_ready: 503,
};

/** gRPC status for each code (a gRPC caller gets a trailers-only response it can read). */
export const ERROR_GRPC_STATUS: Record<TrellisErrorCode, number> = {
  no_route: 12, // UNIMPLEMENTED
  no_healthy_upstream: 14, // UNAVAILABLE
  upstream_connect_failure: 14,
  upstream_reset: 14,
  upstream_timeout: 4, // DEADLINE_EXCEEDED
  request_timeout: 4,
  overflow: 14,
  denied: 7, // PERMISSION_DENIED
  unauthenticated: 16,
  rate_limited: 8, // RESOURCE_EXHAUSTED
  fault_injected: 14,
  mtls_required: 7,
  bad_request: 13, // INTERNAL
  headers_too_large: 13,
  not_ready: 14,
};

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** gRPC's grpc-message encoding: percent-encode only bytes outside printable ASCII, and '%'. */
export function grpcPercentEncode(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 1000);
}

/** Sends a proxy-generated response on an HTTP/1 or HTTP/2 (compat) response; gRPC requests get a trailers-only reply. */
export function sendError(
  res: ServerResponse | Http2ServerResponse,
  code: TrellisErrorCode,
  message: string,
  opts: { grpc?: boolean; status?: number; requestId?: string; grpcStatus?: number } = {},
): void {
  const msg = oneLine(message);
  if (res.headersSent) {
    // Too late for a response: the caller sees a reset; the code still lands in metrics/logs.
    destroyResponse(res);
    return;
  }
  const status = opts.status ?? ERROR_STATUS[code];
  if (opts.grpc) {
    const headers: Record<string, string> = {
      'content-type': 'application/grpc',
      'grpc-status': String(opts.grpcStatus ?? ERROR_GRPC_STATUS[code]),
      'grpc-message': grpcPercentEncode(`${code}: ${msg}`),
      'x-trellis-error': code,
    };
    if (opts.requestId) headers['x-request-id'] = opts.requestId;
    const h2 = (res as Http2ServerResponse).stream;
    if (h2 && typeof h2.respond === 'function') {
      if (!h2.destroyed && !h2.headersSent) h2.respond({ ':status': 200, ...headers }, { endStream: true });
      return;
    }
    res.writeHead(200, headers);
    res.end();
    return;
  }
  const body = `${code}: ${msg}\n`;
  const headers: Record<string, string | number> = {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-trellis-error': code,
  };
  if (opts.requestId) headers['x-request-id'] = opts.requestId;
  res.writeHead(status, headers);
  res.end(body);
}

function destroyResponse(res: ServerResponse | Http2ServerResponse): void {
  const h2 = (res as Http2ServerResponse).stream;
  if (h2 && typeof h2.close === 'function') {
    h2.close(2 /* INTERNAL_ERROR */);
    return;
  }
  (res as ServerResponse).socket?.destroy();
}

/** Writes a complete HTTP/1.1 error response on a raw socket (before any HTTP server saw it) and closes it. */
export function writeRawError(socket: Socket, code: TrellisErrorCode, message: string): void {
  const status = ERROR_STATUS[code];
  const body = `${code}: ${oneLine(message)}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nx-trellis-error: ${code}\r\nconnection: close\r\n\r\n${body}`,
  );
}
