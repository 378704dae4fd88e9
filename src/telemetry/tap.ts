// Tap: streams every matching finished request of one proxy as NDJSON to admin clients (nothing sampled away).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { accessLogEntry, type AccessLogEntry } from './access-log.js';
import { onRequest, type RequestEvent } from './request-events.js';

export interface TapFilter {
  /** "ns/name": requests of this hosted workload (as caller or as destination). */
  workload?: string;
  /** Path prefix. */
  path?: string;
  method?: string;
  /** Destination service: a short name ("reviews"), "reviews.ns", a FQDN, or a destination workload "ns/name". */
  to?: string;
}

export type TapEvent = AccessLogEntry & { workload: string };

export function parseTapFilter(q: URLSearchParams): TapFilter {
  const f: TapFilter = {};
  for (const k of ['workload', 'path', 'method', 'to'] as const) {
    const v = q.get(k);
    if (v) f[k] = k === 'method' ? v.toUpperCase() : v;
  }
  return f;
}

function serviceMatches(to: string, service: string | undefined, workload: string | undefined): boolean {
  if (to.includes('/')) return workload === to;
  if (!service) return false;
  if (service === to) return true;
  // "reviews" or "reviews.default" name the FQDN reviews.default.svc.cluster.local.
  return service.startsWith(`${to}.`) && (to.includes('.') || service.split('.').length >= 2);
}

export function tapMatches(f: TapFilter, e: RequestEvent): boolean {
  const { ex, labels } = e;
  if (f.workload && ex.listener.workload !== f.workload) return false;
  if (f.method && ex.method !== f.method) return false;
  if (f.path && !ex.path.startsWith(f.path)) return false;
  if (f.to) {
    const dw = labels.destination_workload && labels.destination_workload !== 'unknown' ? `${labels.destination_namespace}/${labels.destination_workload}` : undefined;
    const svc = labels.destination_service !== 'unknown' ? labels.destination_service : ex.cluster?.config.service;
    if (!serviceMatches(f.to, svc, dw)) return false;
  }
  return true;
}

const MAX_BACKLOG = 8 * 1024 * 1024;

/** GET /tap handler for the proxy's admin server: one JSON object per line, a comment-free stream until the client leaves. */
export function tapHandler(owner: object) {
  return (req: IncomingMessage, res: ServerResponse, q: URLSearchParams): void => {
    const filter = parseTapFilter(q);
    const limit = Number(q.get('limit') ?? 0);
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' });
    // Headers go out now so the client knows it is attached before the first request arrives.
    res.write(`${JSON.stringify({ tap: 'attached', filter })}\n`);
    let sent = 0;
    let dropped = 0;
    const unsubscribe = onRequest(owner, (e) => {
      if (!tapMatches(filter, e)) return;
      // A reader that cannot keep up loses requests past the backlog, and is told how many.
      if (res.writableLength > MAX_BACKLOG) {
        dropped++;
        return;
      }
      if (dropped) {
        res.write(`${JSON.stringify({ dropped })}\n`);
        dropped = 0;
      }
      const ev: TapEvent = { workload: e.ex.listener.workload, ...accessLogEntry(e) };
      res.write(`${JSON.stringify(ev)}\n`);
      if (limit > 0 && ++sent >= limit) stop();
    });
    const stop = () => {
      unsubscribe();
      if (!res.writableEnded) res.end();
    };
    req.on('close', unsubscribe);
    res.on('close', unsubscribe);
  };
}
