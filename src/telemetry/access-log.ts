// Access log: one line per finished request, JSON or text (identities, route, cluster, endpoint, status, error code and
// the rule that decided, bytes, total time split into proxy and upstream time).
import { createWriteStream, type WriteStream } from 'node:fs';
import { onRequest, known, type RequestEvent } from './request-events.js';

export interface AccessLogEntry {
  start_time: string;
  direction: 'outbound' | 'inbound';
  method: string;
  authority: string;
  path: string;
  protocol: string;
  status: number;
  /** x-trellis-error code of a proxy-generated answer, else "". */
  error_code: string;
  /** The rule that decided a proxy-generated answer (authorization rule, rate limit, route). */
  decided_by?: string;
  decision_reason?: string;
  route: string;
  cluster?: string;
  endpoint?: string;
  source_workload?: string;
  source_principal?: string;
  destination_workload?: string;
  destination_service?: string;
  destination_principal?: string;
  mtls: boolean;
  request_id?: string;
  traceparent?: string;
  /** Declared body sizes (Content-Length); 0 for streamed bodies without one. */
  bytes_received: number;
  bytes_sent: number;
  duration_ms: number;
  /** Time spent in the proxy before the request left for the upstream (the whole duration for local answers). */
  proxy_ms: number;
  /** From dispatch to the end of the response (connecting, the upstream's work, streaming the body back). */
  upstream_ms?: number;
}

function length(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : 0;
  return Number.isFinite(n) && n > 0 ? n : 0;
}

const r3 = (v: number) => Math.round(v * 1000) / 1000;

export function accessLogEntry(e: RequestEvent): AccessLogEntry {
  const { ex, labels: l } = e;
  const total = e.endMs - ex.startMs;
  const proxyMs = ex.dispatchMs !== undefined ? ex.dispatchMs - ex.startMs : total;
  const source = known(l.source_workload) ? `${l.source_namespace}/${l.source_workload}` : undefined;
  const dest = known(l.destination_workload) ? `${l.destination_namespace}/${l.destination_workload}` : undefined;
  const tp = ex.headers.traceparent ?? ex.req.headers.traceparent;
  const out: AccessLogEntry = {
    start_time: new Date(e.endEpochMs - total).toISOString(),
    direction: e.direction,
    method: ex.method,
    authority: ex.authority,
    path: ex.query ? `${ex.path}?${ex.query}` : ex.path,
    protocol: ex.req.httpVersion === '2.0' ? 'HTTP/2' : `HTTP/${ex.req.httpVersion ?? '1.1'}`,
    status: Number(l.response_code) || 0,
    error_code: ex.errorCode,
    ...(ex.decidedBy ? { decided_by: ex.decidedBy } : {}),
    ...(ex.decisionReason ? { decision_reason: ex.decisionReason } : {}),
    route: ex.routeName || 'unknown',
    ...(ex.cluster ? { cluster: ex.cluster.config.name } : {}),
    ...(ex.endpoint ? { endpoint: `${ex.endpoint.address}:${ex.endpoint.port}` } : {}),
    ...(source ? { source_workload: source } : {}),
    ...(known(l.source_principal) ? { source_principal: l.source_principal } : {}),
    ...(dest ? { destination_workload: dest } : {}),
    ...(known(l.destination_service) ? { destination_service: l.destination_service } : {}),
    ...(known(l.destination_principal) ? { destination_principal: l.destination_principal } : {}),
    mtls: l.connection_security_policy === 'mutual_tls',
    ...(ex.requestId ? { request_id: ex.requestId } : {}),
    ...(typeof tp === 'string' ? { traceparent: tp } : {}),
    bytes_received: length(ex.req.headers['content-length']),
    bytes_sent: length(ex.res.getHeader('content-length')),
    duration_ms: r3(total),
    proxy_ms: r3(proxyMs),
    ...(ex.dispatchMs !== undefined ? { upstream_ms: r3(e.endMs - ex.dispatchMs) } : {}),
  };
  return out;
}

export type AccessLogFormat = 'json' | 'text';

/** A text value: bare when it has no space, quote, backslash, '=' or control character, else JSON-quoted. */
function textValue(v: string): string {
  return v !== '' && /^[\x21-\x7e]+$/.test(v) && !/["\\=]/.test(v) ? v : JSON.stringify(v);
}

/** The fields the text line's head already shows. */
const HEAD = new Set(['start_time', 'direction', 'method', 'path', 'protocol', 'status', 'error_code']);

/**
 * One readable line with the same fields as the JSON record:
 * `<start_time> <direction> "<method> <path> <protocol>" <status> <error_code or -> key=value ...`
 * (values with spaces, quotes or '=' are JSON-quoted; absent fields are left out).
 */
export function accessLogText(e: AccessLogEntry): string {
  let line = `${e.start_time} ${e.direction} ${JSON.stringify(`${e.method} ${e.path} ${e.protocol}`)} ${e.status} ${e.error_code ? textValue(e.error_code) : '-'}`;
  for (const [k, v] of Object.entries(e)) {
    if (HEAD.has(k) || v === undefined) continue;
    line += ` ${k}=${typeof v === 'string' ? textValue(v) : String(v)}`;
  }
  return line;
}

export interface AccessLog {
  readonly target: string;
  readonly format: AccessLogFormat;
  close(): Promise<void>;
}

/**
 * Writes one proxy's access log to a file (appending) or, for "-", to stdout, as JSON lines (default) or text lines.
 * Lines are buffered by the stream; when the sink cannot keep up, lines beyond 4 MiB of backlog are dropped and
 * counted in a later line.
 */
export function startAccessLog(owner: object, target: string, format: AccessLogFormat = 'json'): AccessLog {
  const stream: NodeJS.WritableStream | WriteStream = target === '-' ? process.stdout : createWriteStream(target, { flags: 'a' });
  let dropped = 0;
  (stream as NodeJS.EventEmitter).on('error', () => {});
  const unsubscribe = onRequest(owner, (e) => {
    const w = stream as NodeJS.WritableStream & { writableLength?: number };
    if ((w.writableLength ?? 0) > 4 * 1024 * 1024) {
      dropped++;
      return;
    }
    if (dropped) {
      w.write(format === 'text' ? `access_log_dropped=${dropped}\n` : `${JSON.stringify({ access_log_dropped: dropped })}\n`);
      dropped = 0;
    }
    const entry = accessLogEntry(e);
    w.write(format === 'text' ? `${accessLogText(entry)}\n` : `${JSON.stringify(entry)}\n`);
  });
  return {
    target,
    format,
    close: () =>
      new Promise<void>((resolve) => {
        unsubscribe();
        if (stream === process.stdout) return resolve();
        (stream as WriteStream).end(() => resolve());
      }),
  };
}
