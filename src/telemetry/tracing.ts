// Tracing: each proxy hop records a span (CLIENT outbound, SERVER inbound) with OpenTelemetry HTTP attributes and
// exports batches over OTLP/HTTP JSON; new traces are sampled at the Mesh's rate, existing ones follow their parent.
import { performance } from 'node:perf_hooks';
import { newIds, newSpanId, parseB3, parseTraceparent, writeContext } from './trace-context.js';
import { known, onRequest, type RequestEvent } from './request-events.js';

export interface TracingConfig {
  /** OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces */
  endpoint: string;
  /** Share of new traces recorded, 0-100. */
  samplingPercent: number;
}

type HeaderMap = Record<string, string | string[] | undefined>;

/** Per-request trace state (on the exchange as `trace`). */
export interface HopTrace {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  sampled: boolean;
  tracestate?: string;
}

/** What the dispatch hook reads and writes on an exchange. */
export interface TracedExchange {
  listener: { workload: string; kind?: string };
  headers: HeaderMap;
  trace?: unknown;
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: { stringValue?: string; intValue?: string; boolValue?: boolean } }[];
  status: { code: number; message?: string };
}

/** Tracers by hosted workload ("ns/name"): the dispatch hook finds its proxy's tracer without a per-proxy closure. */
const tracers = new Map<string, Tracer>();

/** Called as a request leaves for its upstream; a no-op (one size check) unless some proxy in this process traces. */
export function traceDispatch(ex: TracedExchange): void {
  if (tracers.size === 0) return;
  tracers.get(ex.listener.workload)?.onDispatch(ex);
}

const nanos = (epochMs: number) => (BigInt(Math.round(epochMs * 1000)) * 1000n).toString();
const str = (key: string, v: string | undefined) => (v ? [{ key, value: { stringValue: v } }] : []);
const int = (key: string, v: number | undefined) => (v !== undefined && Number.isFinite(v) ? [{ key, value: { intValue: String(Math.trunc(v)) } }] : []);

/** The span of one finished hop, with OpenTelemetry HTTP semantic-convention attributes plus trellis.* ones. */
export function spanOf(e: RequestEvent, t: HopTrace): OtlpSpan {
  const { ex, labels: l } = e;
  const server = e.direction === 'inbound';
  const status = Number(l.response_code) || 0;
  const [host, port] = ex.authority.split(':');
  const ua = ex.req.headers['user-agent'];
  const isError = status === 0 || status >= 500 || (!server && status >= 400);
  const errorType = ex.errorCode || (isError ? String(status || 'no_response') : undefined);
  const route = ex.routeName || undefined;
  return {
    traceId: t.traceId,
    spanId: t.spanId,
    ...(t.parentSpanId ? { parentSpanId: t.parentSpanId } : {}),
    name: `${ex.method}${route ? ` ${route}` : ''}`,
    kind: server ? 2 : 3,
    startTimeUnixNano: nanos(performance.timeOrigin + ex.startMs),
    endTimeUnixNano: nanos(performance.timeOrigin + e.endMs),
    attributes: [
      ...str('http.request.method', ex.method),
      ...str('url.path', ex.path),
      ...str('url.query', ex.query || undefined),
      ...str('url.scheme', 'http'),
      ...(server ? [] : str('url.full', `http://${ex.authority}${ex.path}${ex.query ? `?${ex.query}` : ''}`)),
      ...str('server.address', host),
      ...int('server.port', port ? Number(port) : undefined),
      ...int('http.response.status_code', status || undefined),
      ...str('http.route', route),
      ...str('network.protocol.version', ex.req.httpVersion === '2.0' ? '2' : (ex.req.httpVersion ?? '1.1')),
      ...(ex.endpoint && !server ? [...str('network.peer.address', ex.endpoint.address), ...int('network.peer.port', ex.endpoint.port)] : []),
      ...str('user_agent.original', typeof ua === 'string' ? ua : undefined),
      ...str('error.type', errorType),
      ...str('trellis.source.workload', known(l.source_workload) ? `${l.source_namespace}/${l.source_workload}` : undefined),
      ...str('trellis.source.principal', known(l.source_principal)),
      ...str('trellis.destination.workload', known(l.destination_workload) ? `${l.destination_namespace}/${l.destination_workload}` : undefined),
      ...str('trellis.destination.service', known(l.destination_service)),
      ...str('trellis.destination.principal', known(l.destination_principal)),
      ...str('trellis.cluster', ex.cluster?.config.name),
      ...str('trellis.error_code', ex.errorCode || undefined),
      ...str('trellis.decided_by', ex.decidedBy),
      ...str('trellis.request_id', ex.requestId || undefined),
      ...[{ key: 'trellis.mtls', value: { boolValue: l.connection_security_policy === 'mutual_tls' } }],
    ],
    status: isError ? { code: 2, ...(ex.errorCode ? { message: ex.errorCode } : {}) } : { code: 0 },
  };
}

export interface TracerOptions {
  owner: object;
  workloads: string[];
  flushMs?: number;
  maxBatch?: number;
  log?: (level: 'info' | 'warn', msg: string) => void;
  random?: () => number;
}

export class Tracer {
  private cfg: TracingConfig | undefined;
  private buffer: { workload: string; span: OtlpSpan }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private inflight = new Set<Promise<void>>();
  private failures = 0;
  private lastWarn = 0;
  dropped = 0;
  exported = 0;

  constructor(private readonly opts: TracerOptions) {}

  /** New config from xDS (undefined turns tracing off). */
  configure(cfg: TracingConfig | undefined): void {
    const was = this.cfg;
    this.cfg = cfg;
    if (cfg && !was) {
      for (const w of this.opts.workloads) tracers.set(w, this);
      this.unsubscribe = onRequest(this.opts.owner, (e) => this.onFinish(e));
      this.timer = setInterval(() => void this.flush(), this.opts.flushMs ?? 1000);
      this.timer.unref();
      this.opts.log?.('info', `tracing: exporting sampled spans to ${cfg.endpoint} (${cfg.samplingPercent}% of new traces)`);
    } else if (!cfg && was) {
      this.stop();
      void this.flush(was);
    }
  }

  get config(): TracingConfig | undefined {
    return this.cfg;
  }

  private stop(): void {
    for (const w of this.opts.workloads) if (tracers.get(w) === this) tracers.delete(w);
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Decides sampling, makes this hop's span id, and writes the context the upstream sees. */
  onDispatch(ex: TracedExchange): void {
    const cfg = this.cfg;
    if (!cfg) return;
    const h = ex.headers;
    const parent = parseTraceparent(h.traceparent) ?? parseB3(h);
    const sampled = parent ? parent.sampled : (this.opts.random ?? Math.random)() * 100 < cfg.samplingPercent;
    let t: HopTrace;
    if (parent) t = { traceId: parent.traceId, spanId: newSpanId(), parentSpanId: parent.spanId, sampled };
    else {
      const [traceId, spanId] = newIds();
      t = { traceId, spanId, sampled };
    }
    writeContext(h, t.traceId, t.spanId, t.parentSpanId, sampled);
    ex.trace = t;
  }

  private onFinish(e: RequestEvent): void {
    const t = e.ex.trace as HopTrace | undefined;
    if (!t?.sampled) return;
    if (this.buffer.length >= 8192) {
      this.dropped++;
      return;
    }
    this.buffer.push({ workload: e.ex.listener.workload, span: spanOf(e, t) });
    if (this.buffer.length >= (this.opts.maxBatch ?? 512)) void this.flush();
  }

  /** Sends buffered spans as one OTLP/HTTP JSON request, grouped by workload (service.name). */
  flush(cfg: TracingConfig | undefined = this.cfg): Promise<void> {
    if (!cfg || this.buffer.length === 0) return Promise.resolve();
    const batch = this.buffer;
    this.buffer = [];
    const byWorkload = new Map<string, OtlpSpan[]>();
    for (const b of batch) {
      let l = byWorkload.get(b.workload);
      if (!l) byWorkload.set(b.workload, (l = []));
      l.push(b.span);
    }
    const body = JSON.stringify({
      resourceSpans: [...byWorkload].map(([w, spans]) => {
        const i = w.indexOf('/');
        return {
          resource: { attributes: [...str('service.name', i < 0 ? w : w.slice(i + 1)), ...str('service.namespace', i < 0 ? undefined : w.slice(0, i)), ...str('telemetry.sdk.name', 'trellis-proxy')] },
          scopeSpans: [{ scope: { name: 'trellis-proxy' }, spans }],
        };
      }),
    });
    const p = fetch(cfg.endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(5000) })
      .then(async (r) => {
        await r.arrayBuffer().catch(() => undefined);
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        this.exported += batch.length;
      })
      .catch((err: Error) => {
        this.failures++;
        this.dropped += batch.length;
        if (Date.now() - this.lastWarn > 60_000) {
          this.lastWarn = Date.now();
          this.opts.log?.('warn', `tracing: cannot export ${batch.length} spans to ${cfg.endpoint}: ${err.message} (dropped; ${this.failures} failed exports so far)`);
        }
      })
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
    return p;
  }

  /** Stops tracing and sends what is buffered (bounded by the export timeout). */
  async close(): Promise<void> {
    const cfg = this.cfg;
    this.stop();
    this.cfg = undefined;
    await this.flush(cfg);
    await Promise.all([...this.inflight]);
  }
}
