// Request mirroring: fire-and-forget copies to the route's mirror clusters (Host suffixed -shadow); responses discarded, never waited for.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { UpstreamPool } from '../upstream/pool.js';
import { h1Request, type H1Exchange } from '../upstream/h1-client.js';
import type { UpstreamClient } from '../upstream/client-choice.js';
import type { ClusterState } from '../state.js';
import type { ResilienceRegistry } from '../resilience/index.js';
import type { Exchange } from './exchange.js';

export interface PickedMirror {
  cluster: ClusterState;
}

/** Shadow traffic gets a bounded life even when the route has no timeout. */
const MIRROR_MAX_MS = 15_000;

/** Which mirror policies fire for this request (each by its own percentage); undefined when none. */
export function pickMirrors(ex: Exchange): PickedMirror[] | undefined {
  let out: PickedMirror[] | undefined;
  for (const m of ex.decision!.mirrors) {
    if (m.fraction < 1 && !(Math.random() < m.fraction)) continue;
    const cs = ex.state.clusters.get(m.cluster);
    if (cs === undefined) continue;
    (out ??= []).push({ cluster: cs });
  }
  return out;
}

/** Envoy's shadow host: "-shadow" appended to the host, before any port. */
export function shadowHost(authority: string): string {
  const i = authority.lastIndexOf(':');
  if (i > 0 && authority.indexOf(']') < i && /^\d+$/.test(authority.slice(i + 1))) return `${authority.slice(0, i)}-shadow${authority.slice(i)}`;
  return `${authority}-shadow`;
}

/**
 * Sends the copies; `body` is the buffered request body (requests whose body was streamed are not
 * mirrored). A copy takes a breaker 'requests' slot of its own cluster in `reg`, and is skipped when full.
 */
export function fireMirrors(ex: Exchange, pool: UpstreamPool, reg: ResilienceRegistry | undefined, mirrors: PickedMirror[], body: Buffer | undefined, client: UpstreamClient = 'h1'): void {
  for (const m of mirrors) {
    try {
      fireOne(ex, pool, reg, m.cluster, body, client);
    } catch {
      // A mirror never fails the main request.
    }
  }
}

function fireOne(ex: Exchange, pool: UpstreamPool, reg: ResilienceRegistry | undefined, cs: ClusterState, body: Buffer | undefined, client: UpstreamClient): void {
  // On-demand EDS: the first copy to a mirror cluster goes once its endpoints arrived (the main request never waits).
  if (cs.fetchEndpoints) {
    void cs.fetchEndpoints(cs.config.connectTimeoutMs).then((st) => {
      const now = st.clusters.get(cs.config.name);
      if (now && !now.fetchEndpoints) fireMirrors(ex, pool, reg, [{ cluster: now }], body, client);
    });
    return;
  }
  const ep = cs.balancer.pick();
  if (ep === undefined) return;
  const r = reg?.get(cs.config.name);
  if (r !== undefined && !r.breaker.tryAcquire('requests')) return;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    clearTimeout(timer);
    r?.breaker.release('requests');
    cs.balancer.onRequestEnd(ep);
  };
  const headers: Record<string, string | string[] | undefined> = {};
  for (const k in ex.headers) if (k.charCodeAt(0) !== 58 /* : */) headers[k] = ex.headers[k];
  const host = shadowHost(ex.authority);
  const path = ex.query ? `${ex.path}?${ex.query}` : ex.path;
  const ms = ex.decision!.timeoutMs > 0 ? Math.min(ex.decision!.timeoutMs, MIRROR_MAX_MS) : MIRROR_MAX_MS;
  let abort: () => void = () => {};
  const timer = setTimeout(() => abort(), ms);
  timer.unref();
  cs.balancer.onRequestStart(ep);
  const p = cs.config.protocol;
  if (p === 'GRPC' || p === 'HTTP2') {
    delete headers.host;
    headers[':method'] = ex.method;
    headers[':path'] = path;
    headers[':authority'] = host;
    headers[':scheme'] = 'http';
    let stream: http2.ClientHttp2Stream;
    try {
      const session = pool.session(cs.config, ep, ex.caller);
      stream = session.request(headers as http2.OutgoingHttpHeaders);
    } catch {
      return release();
    }
    abort = () => stream.close(http2.constants.NGHTTP2_CANCEL);
    stream.on('error', release);
    stream.on('close', release);
    stream.resume();
    stream.end(body);
    return;
  }
  headers.host = host;
  if (client === 'h1') {
    let x: H1Exchange | undefined;
    try {
      x = h1Request(pool.h1(cs.config, ep, ex.caller), { method: ex.method, path, headers, body }, {
        // The response is read and dropped; the connection goes back to the pool.
        onResponse: () => x?.discard(),
        onData: () => {},
        onEnd: release,
        onError: release,
      });
    } catch {
      return release();
    }
    const sent = x;
    // abort() calls no handler: release here.
    abort = () => {
      sent.abort();
      release();
    };
    return;
  }
  const req = http.request({ agent: pool.agent(cs.config, ep, ex.caller), host: ep.address, port: ep.port, method: ex.method, path, headers: headers as http.OutgoingHttpHeaders, setHost: false });
  abort = () => req.destroy();
  req.on('error', release);
  let responded = false;
  req.on('response', (res) => {
    responded = true;
    res.on('end', release);
    res.on('error', release);
    res.on('close', release);
    res.resume();
  });
  req.on('close', () => {
    if (!responded) release();
  });
  req.end(body);
}
