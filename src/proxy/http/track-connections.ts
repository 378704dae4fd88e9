// Makes an http.Server that is fed sockets by hand track its connections as a listening one does.
import type { Server } from 'node:http';

/**
 * An http.Server fed sockets with `emit('connection')` (after protocol sniffing) never listens, so
 * Node never starts tracking its connections: closeIdleConnections() then does nothing and
 * headersTimeout/requestTimeout are not enforced. Node starts that tracking on 'listening'.
 */
export function trackConnections<S extends Server>(server: S): S {
  server.emit('listening');
  return server;
}
