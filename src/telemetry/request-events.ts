// The one per-request hook: finished requests go out on diagnostics_channel `trellis:request` only while someone listens
// (tap, access log, tracing); the request path pays a property read otherwise.
import diagnostics_channel from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import type { RequestLabels } from './proxy-metrics.js';
import { traceDispatch, type TracedExchange } from './tracing.js';

type HeaderMap = Record<string, string | string[] | undefined>;

/** What telemetry reads from a finished exchange (the proxy's Exchange has all of it). */
export interface FinishedExchange {
  startMs: number;
  /** When the request was handed to the upstream side (performance.now() ms); unset for local answers. */
  dispatchMs?: number;
  method: string;
  authority: string;
  path: string;
  query: string;
  requestId: string;
  routeName: string;
  errorCode: string;
  decidedBy?: string;
  decisionReason?: string;
  listener: { name: string; workload: string; kind?: string };
  cluster?: { config: { name: string; service?: string } };
  endpoint?: { address: string; port: number };
  req: { headers: HeaderMap; httpVersion?: string };
  res: { statusCode: number; getHeader(name: string): unknown };
  /** Headers sent upstream (trace context as forwarded). */
  headers: HeaderMap;
  /** Trace span state set by tracing when a request starts (opaque here). */
  trace?: unknown;
}

export interface RequestEvent {
  /** The proxy's metrics object: several proxies may share a process (tests, embedding), each subscriber filters by it. */
  owner: object;
  direction: 'outbound' | 'inbound';
  labels: RequestLabels;
  ex: FinishedExchange;
  endMs: number;
  /** Wall-clock time of the end (ms since epoch). */
  endEpochMs: number;
}

export const requestChannel = diagnostics_channel.channel('trellis:request');

/**
 * Wraps the terminal (forwarding) handler: the exchange records when it left for the upstream, gets an
 * x-request-id if it still has none (a caller outside the mesh), and this hop's trace context when tracing is on.
 */
export function timeDispatch<E extends TracedExchange & { dispatchMs?: number; requestId: string }>(next: (ex: E) => void): (ex: E) => void {
  return (ex) => {
    ex.dispatchMs = performance.now();
    if (!ex.requestId) ex.headers['x-request-id'] = ex.requestId = randomUUID();
    traceDispatch(ex);
    next(ex);
  };
}

/** Subscribes to one proxy's finished requests; returns the unsubscribe function. */
export function onRequest(owner: object, fn: (e: RequestEvent) => void): () => void {
  const listener = (msg: unknown) => {
    const e = msg as RequestEvent;
    if (e.owner === owner) fn(e);
  };
  requestChannel.subscribe(listener);
  return () => requestChannel.unsubscribe(listener);
}

/** "spiffe://td/ns/N/sa/S" stays; empty or "unknown" becomes undefined. */
export function known(v: string | undefined): string | undefined {
  return v && v !== 'unknown' ? v : undefined;
}
