// Opens one upstream connection: mTLS to a peer proxy (SNI carries the target port, peer SPIFFE ID checked) or plain TCP.
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { ClusterConfig } from '../config/types.js';
import { isMutual, meshMeta, type EndpointInfo } from '../policy-api.js';
import type { WorkloadTls } from '../tls/identity.js';
import { checkPeerSvid } from '../tls/svid.js';

export interface UpstreamError extends Error {
  /** upstream_timeout and bad_request come only from the HTTP/1.1 client (H1Error: no head in time, a request it refuses to write). */
  trellisCode?: 'upstream_connect_failure' | 'upstream_reset' | 'upstream_timeout' | 'overflow' | 'bad_request';
}

/** `outbound_.<targetPort>_.<subset>_.<fqdn>` — the inbound proxy picks its filter chain by this port. */
export function upstreamSni(cluster: ClusterConfig, ep: EndpointInfo): string {
  const port = meshMeta(ep).targetPort ?? cluster.port ?? ep.port;
  return `outbound_.${port}_.${cluster.subset ?? ''}_.${cluster.service ?? cluster.name}`;
}

function fail(socket: net.Socket, msg: string): void {
  const err = new Error(msg) as UpstreamError;
  err.trellisCode = 'upstream_connect_failure';
  socket.destroy(err);
}

/**
 * Connects synchronously-returning (the HTTP agent needs the socket at once). The socket emits
 * 'trellis:ready' once connected and, for mTLS, the peer's SVID matched the endpoint's identity;
 * any failure before that destroys it with an error whose `trellisCode` is upstream_connect_failure.
 */
export function openUpstream(cluster: ClusterConfig, ep: EndpointInfo, caller: WorkloadTls | undefined, alpn: string[]): net.Socket {
  const meta = meshMeta(ep);
  const mutual = isMutual(ep);
  let socket: net.Socket;
  const where = `cluster ${cluster.name} endpoint ${ep.address}:${ep.port}`;
  if (mutual) {
    if (!caller) {
      const s = new net.Socket();
      process.nextTick(fail, s, `${where}: no workload certificate to present`);
      return s;
    }
    const t = tls.connect({
      host: ep.address,
      port: ep.port,
      servername: upstreamSni(cluster, ep),
      ALPNProtocols: alpn,
      secureContext: caller.client,
      // Chain is validated by OpenSSL against the bundle; the SPIFFE ID replaces hostname checks.
      checkServerIdentity: () => undefined,
    });
    t.once('secureConnect', () => {
      clearTimeout(timer);
      const v = checkPeerSvid(t, caller);
      if (!v.ok) return fail(t, `${where}: peer ${v.detail}`);
      if (meta.identity && v.spiffeId !== meta.identity) {
        return fail(t, `${where}: peer is ${v.spiffeId}, expected ${meta.identity}`);
      }
      (t as net.Socket & { trellisPeer?: string }).trellisPeer = v.spiffeId;
      t.emit('trellis:ready');
    });
    socket = t;
  } else {
    socket = net.connect({ host: ep.address, port: ep.port });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.emit('trellis:ready');
    });
  }
  socket.setNoDelay(true);
  const timer = setTimeout(fail, cluster.connectTimeoutMs, socket, `${where}: connect timeout after ${cluster.connectTimeoutMs}ms`);
  socket.once('close', () => clearTimeout(timer));
  socket.on('error', (err: UpstreamError) => {
    clearTimeout(timer);
    if (!err.trellisCode) {
      const ready = (socket as net.Socket & { trellisReadyFired?: boolean }).trellisReadyFired;
      err.trellisCode = ready ? 'upstream_reset' : 'upstream_connect_failure';
      err.message = `${where}: ${err.message}`;
    }
  });
  socket.once('trellis:ready', () => {
    (socket as net.Socket & { trellisReadyFired?: boolean }).trellisReadyFired = true;
  });
  return socket;
}
