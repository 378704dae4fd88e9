// The inbound listener: tells TLS from plaintext by the first byte, terminates mTLS, checks the peer SVID, picks the
// filter chain by the SNI-carried target port, then pipes bytes to the app (L4) or, when the chain has HTTP policy, parses HTTP (L7).
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { InboundChain, ListenerConfig } from '../config/types.js';
import type { StateStore } from '../state.js';
import type { WorkloadTls } from '../tls/identity.js';
import { checkPeerSvid } from '../tls/svid.js';
import { writeRawError } from '../errors.js';
import { labelKey } from '../../telemetry/registry.js';
import type { ProxyMetrics } from '../../telemetry/proxy-metrics.js';
import { ConnectionSet, listenOn, peek, type ManagedListener } from './base.js';
import { createInboundHttpServers, tagConnection, type InboundHttpContext } from '../http/inbound.js';
import { InboundPolicies } from '../inbound-policy/policy.js';
import type { FetchJwks } from '../authz/index.js';
import { LOCAL_RATELIMIT_TYPE } from '../../xds/protos.js';
import { MeteredPipe, type MeterDecision } from './inbound-metered.js';
import type { RequestHeadInfo } from '../upstream/h1-request.js';
import type { RequestLabels } from '../../telemetry/proxy-metrics.js';
import { requestChannel, type FinishedExchange } from '../../telemetry/request-events.js';
import { performance } from 'node:perf_hooks';
import { currentChain, refusedAtDestination, spiffeParts } from '../http/inbound.js';
import { splitWorkload } from '../http/outbound.js';

export interface InboundContext {
  store: StateStore;
  metrics: ProxyMetrics;
  identityFor(workload: string): WorkloadTls | undefined;
  log(level: 'debug' | 'info' | 'warn' | 'error', msg: string): void;
  /** For L7 mode: the HTTP context (pool to the app, drain state). */
  http: InboundHttpContext;
  /** 'auto': parse HTTP only when the chain has HTTP filters beyond the router (policy needs it); 'always': every HTTP chain. */
  l7: 'auto' | 'always';
  /** JWKS fetcher for RequestAuthentication remote key sets (default: HTTP GET). */
  fetchJwks?: FetchJwks;
}

interface Piped {
  chain: InboundChain;
  tlsConn: boolean;
  up: net.Socket;
  /** Last bytes from the app (responses still flowing). */
  lastActive: number;
  retireAt?: number;
}

/** How often idle rate-limit buckets are forgotten and L4 connections that config moved to L7 are checked. */
const TICK_MS = 1000;
/** A retired L4 connection is closed once quiet this long (most likely between requests), at the latest after RETIRE_MAX_MS. */
const RETIRE_QUIET_MS = 200;
const RETIRE_MAX_MS = 10_000;

const HTTP_METHOD = /^[A-Z]{3,10} /;
const SNI_PORT = /^outbound_\.(\d+)_\./;

/** Which chain takes a connection: TLS by SNI port, plaintext to the first plaintext chain (explicit mode has no original destination). */
export function selectChain(chains: InboundChain[], tlsConn: boolean, sni: string | undefined): InboundChain | undefined {
  if (tlsConn) {
    const tlsChains = chains.filter((c) => c.transport !== 'raw_buffer');
    const m = sni ? SNI_PORT.exec(sni) : null;
    if (m) {
      const port = Number(m[1]);
      return tlsChains.find((c) => c.destinationPort === port);
    }
    return tlsChains[0];
  }
  return chains.find((c) => c.transport !== 'tls');
}

function appAddress(store: StateStore, chain: InboundChain): { host: string; port: number } | undefined {
  const cs = store.current.clusters.get(chain.cluster);
  const ep = cs?.endpoints[0];
  if (ep) return { host: ep.address, port: ep.port };
  // inbound|<appPort>|ns/name: the app on localhost, even before CDS delivered the cluster.
  const m = /^inbound\|(\d+)\|/.exec(chain.cluster);
  return m ? { host: '127.0.0.1', port: Number(m[1]) } : undefined;
}

export function createInboundListener(ctx: InboundContext, config: ListenerConfig): ManagedListener {
  const name = config.name;
  const current = (): ListenerConfig => ctx.store.current.listeners.get(name) ?? config;
  const wtls = (): WorkloadTls | undefined => ctx.identityFor(config.workload);
  const m = ctx.metrics;
  const tcpKey = (policy: string, principal: string) =>
    labelKey({ reporter: 'destination', destination_workload: config.workload, source_principal: principal, connection_security_policy: policy });
  /** Counts a piped connection's close and bytes, once. */
  const tcpDone = (key: string, down: net.Socket) => {
    let counted = false;
    return () => {
      if (counted) return;
      counted = true;
      m.tcpClosed.inc(key);
      m.tcpReceived.inc(key, down.bytesRead);
      m.tcpSent.inc(key, down.bytesWritten);
    };
  };
  const refuse = (reason: string) => m.tlsFailures.inc(labelKey({ direction: 'inbound', reason }));
  const policies = new InboundPolicies({ workload: config.workload, fetchJwks: ctx.fetchJwks, log: ctx.log });
  /** L4-piped HTTP connections and the chain each was accepted on: a config that adds HTTP policy retires them. */
  const piped = new Map<net.Socket, Piped>();

  const tlsServer = tls.createServer({
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ['h2', 'http/1.1', 'trellis-tcp'],
    SNICallback: (_servername, cb) => {
      const t = wtls();
      if (!t) cb(new Error(`no certificate for workload ${config.workload}`));
      else cb(null, t.server);
    },
    // Without SNI the default context applies; it is replaced on rotation below.
    ...(wtls() ? { secureContext: wtls()!.server } : {}),
  });
  const onUpdated = () => {
    const t = wtls();
    if (!t) return;
    const mat = t.source.current();
    try {
      tlsServer.setSecureContext({ key: mat.keyPem, cert: mat.certChainPem.join('\n'), ca: t.bundlePem() });
    } catch (err) {
      ctx.log('error', `listener ${name}: cannot install rotated certificate: ${(err as Error).message}`);
    }
  };
  wtls()?.on('updated', onUpdated);
  tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException) => {
    refuse(err.code === 'ECONNRESET' ? 'reset' : 'handshake');
    ctx.log('debug', `listener ${name}: TLS handshake refused: ${err.message}`);
  });
  tlsServer.on('secureConnection', (s: tls.TLSSocket) => {
    m.tlsHandshakes.inc('direction="inbound"');
    s.on('error', () => s.destroy());
    const t = wtls();
    const v = checkPeerSvid(s, t);
    if (!v.ok) {
      refuse(v.reason);
      ctx.log('info', `listener ${name}: refused peer: ${v.detail}`);
      return void s.destroy();
    }
    const chain = selectChain(current().chains, true, (s as tls.TLSSocket & { servername?: string | false }).servername || undefined);
    if (!chain) {
      refuse('no_filter_chain');
      ctx.log('info', `listener ${name}: no filter chain for SNI ${(s as { servername?: string }).servername}`);
      return void s.destroy();
    }
    if (!l7(chain)) pipeToApp(s, chain, 'mutual_tls', v.spiffeId);
    else if (metered(chain) && s.alpnProtocol === 'http/1.1') meterToApp(s, chain, v.spiffeId);
    else toHttp(s, chain, v.spiffeId);
  });

  /**
   * A chain whose only HTTP policy is a local rate limit on every path (no authorization, no JWT) is served by
   * MeteredPipe for mTLS HTTP/1.1 callers: the bytes pass unchanged, each request takes a token. Anything more
   * (an authorization rule, a path-scoped limit, `--inbound-l7 always`) takes the full HTTP stack.
   */
  const metered = (chain: InboundChain): boolean => {
    if (ctx.l7 !== 'auto' || chain.protocol !== 'HTTP') return false;
    const f = chain.httpFilters;
    if (f.length !== 1 || f[0] !== LOCAL_RATELIMIT_TYPE) return false;
    const p = policies.forChain(chain);
    return p.denyAll === undefined && p.stripHeaders.length === 0 && p.limiter !== undefined && !p.limiter.pathScoped;
  };
  const meteredPipes = new Set<MeteredPipe>();
  const rateKeys = { total: labelKey({ limit: 'total' }), per_caller: labelKey({ limit: 'per_caller' }) };
  const meterToApp = (down: tls.TLSSocket, accepted: InboundChain, peer: string) => {
    const addr = appAddress(ctx.store, accepted);
    if (!addr) return void down.destroy();
    const key = tcpKey('mutual_tls', peer);
    m.tcpOpened.inc(key);
    const up = net.connect(addr.port, addr.host);
    up.setNoDelay(true);
    let chain = accepted;
    let handedOff = false;
    const done = tcpDone(key, down);
    const [sns, sname] = spiffeParts(peer);
    const [dns, dname] = splitWorkload(config.workload);
    /** Every label but the status and error code is fixed for the connection: one key per pair seen. */
    const keys = new Map<string, { key: string; labels: RequestLabels }>();
    const keyFor = (status: number, errorCode: string) => {
      const c = `${status}|${errorCode}`;
      let k = keys.get(c);
      if (k === undefined) {
        const labels: RequestLabels = {
          reporter: 'destination',
          source_workload: sname,
          source_namespace: sns,
          source_principal: peer,
          destination_workload: dname,
          destination_namespace: dns,
          destination_service: 'unknown',
          destination_principal: wtls()?.spiffeId ?? 'unknown',
          route: chain.cluster || 'unknown',
          response_code: String(status),
          grpc_status: '',
          error_code: errorCode,
          connection_security_policy: 'mutual_tls',
        };
        k = { key: m.requestKey(labels), labels };
        keys.set(c, k);
      }
      return k;
    };
    /** Tap, access log and tracing see metered requests too (only built while one of them listens). */
    const publish = (head: RequestHeadInfo, startMs: number, status: number, errorCode: string, decidedBy?: string, reason?: string) => {
      if (!requestChannel.hasSubscribers) return;
      const q = head.target.indexOf('?');
      const rid = head.headers['x-request-id'];
      const host = head.headers.host;
      const ex: FinishedExchange = {
        startMs,
        ...(errorCode ? {} : { dispatchMs: startMs }),
        method: head.method,
        authority: typeof host === 'string' ? host : '',
        path: q < 0 ? head.target : head.target.slice(0, q),
        query: q < 0 ? '' : head.target.slice(q + 1),
        requestId: typeof rid === 'string' ? rid : '',
        routeName: chain.cluster,
        errorCode,
        ...(decidedBy ? { decidedBy } : {}),
        ...(reason ? { decisionReason: reason } : {}),
        listener: current(),
        ...(errorCode ? {} : { endpoint: { address: addr.host, port: addr.port } }),
        req: { headers: head.headers, httpVersion: head.http10 ? '1.0' : '1.1' },
        res: { statusCode: status, getHeader: () => undefined },
        headers: head.headers,
      };
      requestChannel.publish({ owner: m, direction: 'inbound', labels: keyFor(status, errorCode).labels, ex, endMs: performance.now(), endEpochMs: Date.now() });
    };
    const pipe: MeteredPipe = new MeteredPipe(down, up, {
      where: `inbound ${name}`,
      peer,
      decide(): MeterDecision {
        const next = currentChain(current(), chain, true);
        if (!next) return { kind: 'gone' };
        chain = next;
        if (!metered(next)) return { kind: 'l7' };
        return { kind: 'meter', limiter: policies.forChain(next).limiter, route: next.routeName ?? '' };
      },
      refused(code, status, detail) {
        if (detail.limit) m.rateLimited.inc(rateKeys[detail.limit]);
        refusedAtDestination(m, peer, config.workload, wtls()?.spiffeId, code, status);
        if (detail.rule) ctx.log('debug', `listener ${name}: ${code} by ${detail.rule} for ${peer}`);
        if (detail.head) publish(detail.head, detail.startMs ?? performance.now(), status, code, detail.rule, detail.reason);
      },
      observed(status, seconds, requestBytes, responseBytes, head, startMs) {
        m.observeRequest(keyFor(status, '').key, seconds, requestBytes, responseBytes);
        publish(head, startMs, status, '');
      },
      handoff(pending) {
        handedOff = true;
        meteredPipes.delete(pipe);
        done();
        if (pending !== undefined && pending.length > 0) down.unshift(pending);
        ctx.log('debug', `listener ${name}: connection from ${peer} moves to the HTTP stack: its filter chain now needs it`);
        toHttp(down, chain, peer);
        down.resume();
      },
    });
    meteredPipes.add(pipe);
    up.on('error', (err: NodeJS.ErrnoException) => {
      if (handedOff) return;
      // The app is not there: the caller gets an explicit answer naming it, not a bare reset.
      if (!up.connecting || down.bytesWritten > 0 || !down.writable) return void down.destroy();
      writeRawError(down, 'upstream_connect_failure', `listener ${name}: app at ${addr.host}:${addr.port} (${accepted.cluster}) refused the connection: ${err.code ?? err.message}`);
    });
    up.on('close', () => {
      if (handedOff) return;
      meteredPipes.delete(pipe);
      done();
    });
    down.on('close', () => {
      if (handedOff) return;
      meteredPipes.delete(pipe);
      up.destroy();
      done();
    });
    pipe.start();
  };

  const pipeToApp = (down: net.Socket, chain: InboundChain, policy: 'mutual_tls' | 'none', principal: string) => {
    const addr = appAddress(ctx.store, chain);
    if (!addr) return void down.destroy();
    const key = tcpKey(policy, principal);
    m.tcpOpened.inc(key);
    const up = net.connect(addr.port, addr.host);
    up.setNoDelay(true);
    if (chain.protocol !== 'TCP') {
      const entry: Piped = { chain, tlsConn: policy === 'mutual_tls', up, lastActive: 0 };
      piped.set(down, entry);
      down.once('close', () => piped.delete(down));
    }
    let connected = false;
    up.once('connect', () => (connected = true));
    const done = tcpDone(key, down);
    up.on('error', (err: NodeJS.ErrnoException) => {
      // The app is not there: an HTTP/1.1 caller gets an explicit answer naming it, not a bare reset.
      const h1 = chain.protocol === 'HTTP' && (!(down as tls.TLSSocket).alpnProtocol || (down as tls.TLSSocket).alpnProtocol === 'http/1.1');
      if (!connected && h1 && down.writable && down.bytesWritten === 0) {
        down.unpipe(up);
        writeRawError(down, 'upstream_connect_failure', `listener ${name}: app at ${addr.host}:${addr.port} (${chain.cluster}) refused the connection: ${err.code ?? err.message}`);
        return;
      }
      down.destroy();
    });
    down.on('error', () => up.destroy());
    up.on('close', () => {
      if (connected || !down.writableEnded) down.destroy();
      done();
    });
    down.on('close', () => {
      up.destroy();
      done();
    });
    down.pipe(up);
    up.pipe(down);
  };

  let servers: ReturnType<typeof createInboundHttpServers> | undefined;
  const l7 = (chain: InboundChain) => chain.protocol !== 'TCP' && (ctx.l7 === 'always' || chain.httpFilters.length > 0);
  /** Hands a connection to the HTTP servers; plaintext h2c is told apart by its preface. */
  const toHttp = (sock: net.Socket, chain: InboundChain, peer: string | undefined) => {
    servers ??= createInboundHttpServers(ctx.http, config, policies, ctx.log);
    tagConnection(sock, { listenerName: name, chain, peer });
    const key = tcpKey(peer ? 'mutual_tls' : 'none', peer ?? 'unknown');
    m.tcpOpened.inc(key);
    sock.once('close', () => m.tcpClosed.inc(key));
    const alpn = (sock as tls.TLSSocket).alpnProtocol;
    if (peer !== undefined) {
      if (alpn === 'h2') servers.h2.emit('connection', sock);
      else servers.h1.emit('connection', sock);
      return;
    }
    peek(sock, 3, (first) => {
      if (first.subarray(0, 3).toString('latin1') === 'PRI') servers!.h2.emit('connection', sock);
      else {
        servers!.h1.emit('connection', sock);
        sock.resume();
      }
    });
    sock.resume();
  };

  /**
   * Every second: forget idle rate-limit callers and policies no chain uses; close L4-piped HTTP connections
   * whose chain now needs L7 (a new AuthorizationPolicy must not be bypassed by a pooled connection).
   */
  let seenVersion = -1;
  const tick = () => {
    policies.sweep();
    const state = ctx.store.current;
    if (state.version !== seenVersion) {
      seenVersion = state.version;
      const l = state.listeners.get(name);
      if (l) policies.retain(l.chains);
    }
    retirePiped();
  };
  /**
   * A retired connection stops carrying requests at once (bytes from the caller are no longer passed on, so
   * nothing reaches the app unchecked); responses already on their way finish, then it closes. The caller's
   * pool sees a closed connection and reconnects, landing on the L7 path.
   */
  let recheck: NodeJS.Timeout | undefined;
  const retirePiped = () => {
    if (piped.size === 0) return;
    const chains = current().chains;
    const now = Date.now();
    let retiring = false;
    for (const [sock, e] of piped) {
      if (e.retireAt === undefined) {
        if (chains.includes(e.chain)) continue;
        const next = chains.find((c) => c.destinationPort === e.chain.destinationPort && (e.tlsConn ? c.transport !== 'raw_buffer' : c.transport !== 'tls'));
        if (next && !l7(next)) {
          e.chain = next;
          continue;
        }
        e.retireAt = now + RETIRE_MAX_MS;
        e.lastActive = now;
        sock.unpipe(e.up);
        sock.pause();
        e.up.on('data', () => (e.lastActive = Date.now()));
        ctx.log('info', `listener ${name}: closing an L4 connection to ${e.chain.cluster}: its filter chain changed and now needs HTTP policy`);
      }
      if (now - e.lastActive >= RETIRE_QUIET_MS || now >= e.retireAt) {
        piped.delete(sock);
        sock.destroy();
      } else retiring = true;
    }
    if (retiring && !recheck) {
      recheck = setTimeout(() => {
        recheck = undefined;
        retirePiped();
      }, RETIRE_QUIET_MS / 2);
      recheck.unref();
    }
  };
  const timer = setInterval(tick, TICK_MS);
  timer.unref();
  // Config changes are checked at once, not only on the next tick.
  /** Policies are built when config arrives (their problems logged then), not by the first request. */
  const prebuild = () => {
    for (const c of current().chains) {
      if (!l7(c)) continue;
      try {
        policies.forChain(c);
      } catch (err) {
        ctx.log('error', `listener ${name}: inbound policy for ${c.cluster} could not be built: ${(err as Error).message}`);
      }
    }
  };
  const onStoreChange = () =>
    setImmediate(() => {
      prebuild();
      retirePiped();
    });
  prebuild();
  // One per inbound listener: node mode may host many, which is not a leak.
  ctx.store.setMaxListeners(Math.max(ctx.store.getMaxListeners(), ctx.store.listenerCount('change') + 10));
  ctx.store.on('change', onStoreChange);
  const stopTimers = () => {
    clearInterval(timer);
    if (recheck) clearTimeout(recheck);
    ctx.store.off('change', onStoreChange);
  };

  const conns = new ConnectionSet();
  const server = net.createServer((socket) => {
    conns.add(socket);
    socket.on('error', () => socket.destroy());
    socket.setNoDelay(true);
    peek(socket, 1, (first) => {
      if (first.length === 0) return void socket.destroy();
      const chains = current().chains;
      if (first[0] === 0x16) {
        if (!chains.some((c) => c.transport !== 'raw_buffer')) return void socket.destroy();
        tlsServer.emit('connection', socket);
        return;
      }
      const chain = selectChain(chains, false, undefined);
      if (chain) {
        if (l7(chain)) return toHttp(socket, chain, undefined);
        socket.resume();
        return pipeToApp(socket, chain, 'none', 'unknown');
      }
      refuse('plaintext');
      const tlsChain = chains.find((c) => c.transport !== 'raw_buffer');
      const why = `listener ${name} requires mutual TLS (mtls ${tlsChain?.mtls ?? 'STRICT'}, decided by ${tlsChain?.decidedBy ?? 'default'})`;
      peek(socket, 8, (head) => {
        if (HTTP_METHOD.test(head.toString('latin1'))) writeRawError(socket, 'mtls_required', why);
        else socket.destroy();
      });
      socket.resume();
    });
  });
  server.on('error', () => {});
  return {
    name,
    config,
    server,
    port: () => (server.address() as net.AddressInfo | null)?.port ?? config.port,
    listen: () => listenOn(server, config.address, config.port, `listener ${name}`),
    stopAccepting: () => {
      server.close();
      wtls()?.off('updated', onUpdated);
      stopTimers();
    },
    async drain(timeoutMs) {
      server.close();
      wtls()?.off('updated', onUpdated);
      stopTimers();
      servers?.drain();
      for (const p of meteredPipes) p.drain();
      const t = servers ? setInterval(() => servers!.drain(), 50) : undefined;
      await conns.wait(timeoutMs);
      if (t) clearInterval(t);
    },
    connections: () => conns.sockets.size,
  };
}
