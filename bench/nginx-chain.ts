// nginx configurations for the benchmark (a fixed-body app, an mTLS outbound hop and an mTLS inbound hop) and a starter that waits for the worker.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { noteDescendants, start, type Tracked } from './children.js';

export const NGINX = process.env.NGINX ?? 'nginx';

export interface NginxFiles {
  dir: string;
  name: string;
}

/** The part every instance shares: one worker, no daemon, files under dir, no access log. */
function main(f: NginxFiles, http: string): string {
  const p = (x: string) => join(f.dir, `${f.name}-${x}`);
  mkdirSync(p('tmp'), { recursive: true });
  return `daemon off;
master_process on;
worker_processes 1;
${process.getuid?.() === 0 ? 'user root;' : ''}
pid ${p('nginx.pid')};
error_log ${p('error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  client_body_temp_path ${p('tmp')}/body;
  proxy_temp_path ${p('tmp')}/proxy;
  fastcgi_temp_path ${p('tmp')}/fastcgi;
  uwsgi_temp_path ${p('tmp')}/uwsgi;
  scgi_temp_path ${p('tmp')}/scgi;
${http}
}
`;
}

/** The app: answers every request with the same body (the same app behind every variant). */
export function appConfig(f: NginxFiles, port: number, bodyBytes: number): string {
  return main(
    f,
    `  server {
    listen 127.0.0.1:${port};
    location / {
      default_type text/plain;
      return 200 '${'x'.repeat(bodyBytes)}';
    }
  }`,
  );
}

export interface TlsFiles {
  cert: string;
  key: string;
  ca: string;
}

/**
 * Outbound hop: plain HTTP in, HTTPS with a client certificate out, pooled upstream connections.
 * nginx checks a server certificate's name against DNS names or the CN only; an SVID carries its identity in a URI
 * SAN, so the server certificate cannot be verified here (proxy_ssl_verify off). With keep-alive this only changes
 * the (rare) handshakes.
 */
export function outboundConfig(f: NginxFiles, port: number, upstreamPort: number, tls: TlsFiles): string {
  return main(
    f,
    `  upstream inbound_hop {
    server 127.0.0.1:${upstreamPort};
    keepalive 32;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass https://inbound_hop;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_ssl_certificate ${tls.cert};
      proxy_ssl_certificate_key ${tls.key};
      proxy_ssl_trusted_certificate ${tls.ca};
      proxy_ssl_verify off;
      proxy_ssl_protocols TLSv1.2 TLSv1.3;
      proxy_ssl_session_reuse on;
    }
  }`,
  );
}

/** Inbound hop: TLS with a required, verified client certificate; plain HTTP to the app over pooled connections. */
export function inboundConfig(f: NginxFiles, port: number, appPort: number, tls: TlsFiles): string {
  return main(
    f,
    `  upstream app {
    server 127.0.0.1:${appPort};
    keepalive 32;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    ssl_client_certificate ${tls.ca};
    ssl_verify_client on;
    ssl_verify_depth 3;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }`,
  );
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface NginxInstance {
  tracked: Tracked;
  /** master + worker */
  pids: number[];
}

/** Writes the config, starts nginx in the foreground and waits until its worker exists and the port accepts. */
export async function startNginx(f: NginxFiles, conf: string, port: number, timeoutMs = 10_000): Promise<NginxInstance> {
  const path = join(f.dir, `${f.name}.conf`);
  writeFileSync(path, conf);
  const t = start(`nginx ${f.name}`, NGINX, ['-p', f.dir, '-e', join(f.dir, `${f.name}-startup.log`), '-c', path]);
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (t.spawnError) throw new Error(`cannot run ${NGINX} (${t.spawnError.message}): install nginx or set NGINX`);
    if (t.proc.exitCode !== null) {
      let log = '';
      for (const x of ['startup.log', 'error.log']) {
        try {
          log += readFileSync(join(f.dir, `${f.name}-${x}`), 'utf8');
        } catch {
          /* not written */
        }
      }
      throw new Error(`nginx ${f.name} exited with ${t.proc.exitCode}: ${log.trim().split('\n').slice(-3).join(' | ')}`);
    }
    const workers = noteDescendants(t);
    if (workers.length && (await canConnect(port))) return { tracked: t, pids: [t.proc.pid!, ...workers] };
    if (Date.now() > end) throw new Error(`nginx ${f.name}: not accepting on ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
