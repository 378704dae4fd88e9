// An outbound TCP upstream listener (Consul-style local port): each connection goes to one endpoint of the cluster over mTLS with ALPN trellis-tcp.
import * as net from 'node:net';
import type { ListenerConfig } from '../config/types.js';
import type { ProxyState, StateStore } from '../state.js';
import type { WorkloadTls } from '../tls/identity.js';
import { isMutual, meshMeta } from '../policy-api.js';
import { openUpstream, type UpstreamError } from '../upstream/connect.js';
import { labelKey } from '../../telemetry/registry.js';
import type { ProxyMetrics } from '../../telemetry/proxy-metrics.js';
import { ConnectionSet, listenOn, type ManagedListener } from './base.js';

export interface TcpContext {
  store: StateStore;
  metrics: ProxyMetrics;
  identityFor(workload: string): WorkloadTls | undefined;
  log(level: 'debug' | 'info' | 'warn' | 'error', msg: string): void;
}

export function createOutboundTcpListener(ctx: TcpContext, config: ListenerConfig): ManagedListener {
  const name = config.name;
  const conns = new ConnectionSet();
  const m = ctx.metrics;
  const server = net.createServer((down) => {
    conns.add(down);
    down.on('error', () => down.destroy());
    const first = ctx.store.current.clusters.get((ctx.store.current.listeners.get(name) ?? config).tcpCluster ?? '');
    // On-demand EDS: the first connection to a cluster waits (up to its connect timeout) for its endpoints.
    if (first?.fetchEndpoints) {
      down.pause();
      return void first.fetchEndpoints(first.config.connectTimeoutMs).then((st) => !down.destroyed && connect(down, st));
    }
    connect(down, ctx.store.current);
  });
  const connect = (down: net.Socket, state: ProxyState) => {
    const l = state.listeners.get(name) ?? config;
    const cs = l.tcpCluster ? state.clusters.get(l.tcpCluster) : undefined;
    const ep = cs?.balancer.pick({});
    if (!cs || !ep) {
      ctx.log('info', `listener ${name}: ${cs ? `cluster ${cs.config.name} has no healthy endpoint` : `cluster ${l.tcpCluster} unknown`}; closing connection`);
      return void down.destroy();
    }
    const key = labelKey({
      reporter: 'source',
      source_workload: l.workload,
      destination_service: cs.config.service ?? cs.config.name,
      destination_principal: meshMeta(ep).identity ?? 'unknown',
      connection_security_policy: isMutual(ep) ? 'mutual_tls' : 'none',
    });
    m.tcpOpened.inc(key);
    cs.balancer.onRequestStart(ep);
    down.pause();
    const up = openUpstream(cs.config, ep, ctx.identityFor(l.workload), ['trellis-tcp']);
    let closed = false;
    const done = () => {
      if (closed) return;
      closed = true;
      cs.balancer.onRequestEnd(ep);
      m.tcpClosed.inc(key);
      m.tcpSent.inc(key, down.bytesRead);
      m.tcpReceived.inc(key, down.bytesWritten);
    };
    up.on('error', (err: UpstreamError) => {
      ctx.log('info', `listener ${name}: ${err.message}`);
      down.destroy();
    });
    up.once('trellis:ready', () => {
      down.pipe(up);
      up.pipe(down);
      down.resume();
    });
    up.on('close', () => {
      down.destroy();
      done();
    });
    down.on('close', () => {
      up.destroy();
      done();
    });
  };
  server.on('error', () => {});
  return {
    name,
    config,
    server,
    port: () => (server.address() as net.AddressInfo | null)?.port ?? config.port,
    listen: () => listenOn(server, config.address, config.port, `listener ${name}`),
    stopAccepting: () => server.close(),
    async drain(timeoutMs) {
      server.close();
      await conns.wait(timeoutMs);
    },
    connections: () => conns.sockets.size,
  };
}
