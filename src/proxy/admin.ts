// Admin (loopback only: config dump, certificates, log level) and readiness/metrics (/ready, /metrics) HTTP servers.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expandAnys } from '../xds/protos.js';

export interface AdminSource {
  configDump(): unknown;
  certificates(): { workload: string; spiffeId: string; notAfter: string; expiresInSeconds: number }[];
  logLevel(): string;
  setLogLevel(level: string): string | undefined;
  readiness(): { ready: boolean; reason: string };
  metrics(): string;
  /** Per-cluster breaker, outlier and retry-budget state (GET /resilience; describe reads ejections here). */
  resilience?(): unknown;
  /** Streams live requests as NDJSON (GET /tap?workload=&path=&method=&to=). */
  tap?(req: http.IncomingMessage, res: http.ServerResponse, query: URLSearchParams): void;
}

function send(res: http.ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8', extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

function json(res: http.ServerResponse, value: unknown): void {
  send(res, 200, JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n', 'application/json');
}

export function createAdminServer(src: AdminSource): http.Server {
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    switch (url.pathname) {
      case '/config_dump':
        return json(res, expandAnys(src.configDump()));
      case '/certs':
        return json(res, src.certificates());
      case '/logging': {
        const level = url.searchParams.get('level');
        if (level && req.method === 'POST') {
          const err = src.setLogLevel(level);
          if (err) return send(res, 400, `${err}\n`);
        }
        return send(res, 200, `${src.logLevel()}\n`);
      }
      case '/resilience':
        return src.resilience ? json(res, src.resilience()) : send(res, 404, 'resilience state not available\n');
      case '/tap':
        return src.tap ? src.tap(req, res, url.searchParams) : send(res, 404, 'tap not available\n');
      case '/ready':
      case '/metrics':
        return readinessHandler(src)(req, res);
      case '/':
        return send(res, 200, 'trellis proxy admin: /config_dump /certs /logging[?level=L, POST] /resilience /tap[?workload=&path=&method=&to=] /ready /metrics\n');
      default:
        return send(res, 404, `unknown admin path ${url.pathname}\n`);
    }
  });
}

function readinessHandler(src: AdminSource) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/ready' || path === '/healthz/ready') {
      const r = src.readiness();
      if (r.ready) return send(res, 200, 'ready\n');
      return send(res, 503, `not_ready: ${r.reason}\n`, undefined, { 'x-trellis-error': 'not_ready' });
    }
    if (path === '/metrics' || path === '/stats/prometheus') return send(res, 200, src.metrics(), 'text/plain; version=0.0.4; charset=utf-8');
    send(res, 404, `unknown path ${path} (try /ready or /metrics)\n`);
  };
}

export function createReadinessServer(src: AdminSource): http.Server {
  return http.createServer(readinessHandler(src));
}

export function listenHttp(server: http.Server, port: number, host: string, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`${what}: cannot listen on ${host}:${port}: ${err.code ?? err.message}`)));
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}
