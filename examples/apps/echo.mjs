// Example app for the feature examples: answers with who it is; misbehaves on request so policies can be seen working.
// Query parameters: ?status=503 answers that status, ?delay=300 waits 300 ms first, ?reset=1 drops the connection.
// ?flaky=1 fails every other request with 503 (retries turn that into success).
// FAIL_STATUS=503 in the environment makes every answer that status (an endpoint to eject).
// /call/<service>/<path> calls another service through this workload's proxy (TRELLIS_OUTBOUND).
import http from 'node:http';

const name = process.env.NAME ?? process.env.TRELLIS_WORKLOAD ?? 'echo';
const version = process.env.VERSION ?? 'v1';
let served = 0;

function callThroughMesh(service, path, headers, res) {
  const out = new URL(process.env.TRELLIS_OUTBOUND);
  const req = http.request({ host: out.hostname, port: out.port, path, headers: { ...headers, host: service } }, (r) => {
    let body = '';
    r.on('data', (c) => (body += c));
    r.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: r.statusCode, error: r.headers['x-trellis-error'] ?? null, body }));
    });
  });
  req.on('error', (e) => {
    res.writeHead(502);
    res.end(e.message);
  });
  req.end();
}

http
  .createServer((req, res) => {
    served++;
    const url = new URL(req.url, 'http://x');
    if (url.pathname.startsWith('/call/')) {
      const [, , service, ...rest] = url.pathname.split('/');
      const fwd = {};
      for (const h of ['authorization', 'user', 'x-request-id', 'traceparent']) if (req.headers[h]) fwd[h] = req.headers[h];
      return callThroughMesh(service, '/' + rest.join('/') + url.search, fwd, res);
    }
    if (url.searchParams.get('reset')) return req.socket.destroy();
    let status = Number(url.searchParams.get('status') ?? process.env.FAIL_STATUS ?? 200);
    if (url.searchParams.get('flaky') && served % 2 === 1) status = 503;
    const delay = Number(url.searchParams.get('delay') ?? 0);
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () =>
      setTimeout(() => {
        const body = JSON.stringify({ name, version, served, method: req.method, path: url.pathname, bytes: Buffer.concat(chunks).length, headers: req.headers });
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(body);
      }, delay),
    );
  })
  .listen(Number(process.env.PORT), '127.0.0.1');
