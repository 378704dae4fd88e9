// A bookinfo-like demo app in plain Node: one file, the role chosen by argv[2]. It forwards trace headers.
import http from 'node:http';

const role = process.argv[2];
const port = Number(process.env.PORT);
const outbound = process.env.TRELLIS_OUTBOUND ? new URL(process.env.TRELLIS_OUTBOUND) : undefined;
const version = process.env.VERSION ?? 'v1';

// Apps must forward these so the mesh can stitch one trace across hops (the mesh cannot do it for them).
const PROPAGATE = ['x-request-id', 'traceparent', 'tracestate', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'b3', 'user'];

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** Calls another service through the local proxy's outbound listener, routed by Host. */
function call(service, path, incoming) {
  return new Promise((resolve) => {
    if (!outbound) return resolve({ status: 0, body: 'no TRELLIS_OUTBOUND' });
    const headers = { host: service };
    for (const h of PROPAGATE) if (incoming[h] !== undefined) headers[h] = incoming[h];
    const req = http.request(
      { host: outbound.hostname, port: outbound.port, path, headers, agent, timeout: 5000 },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, error: res.headers['x-trellis-error'], body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
    req.end();
  });
}

function json(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const handlers = {
  async productpage(req, res) {
    const [details, reviews] = await Promise.all([call('details', '/details/0', req.headers), call('reviews', '/reviews/0', req.headers)]);
    const ok = details.status === 200 && reviews.status === 200;
    let parsed;
    try {
      parsed = JSON.parse(reviews.body);
    } catch {
      parsed = { error: reviews.body };
    }
    json(res, ok ? 200 : 502, { product: 'The Comedy of Errors', details: details.status, reviews: parsed, reviewsStatus: reviews.status });
  },
  async details(_req, res) {
    json(res, 200, { id: 0, author: 'William Shakespeare', year: 1595, type: 'paperback', pages: 200 });
  },
  async reviews(req, res) {
    const out = { version, reviews: [{ reviewer: 'Reviewer1', text: 'An extremely entertaining play by Shakespeare.' }] };
    if (version !== 'v1') {
      const r = await call('ratings', '/ratings/0', req.headers);
      out.ratings = r.status === 200 ? JSON.parse(r.body) : { error: r.error ?? r.status };
      out.color = process.env.COLOR ?? (version === 'v2' ? 'black' : 'red');
    }
    json(res, 200, out);
  },
  async ratings(_req, res) {
    json(res, 200, { id: 0, ratings: { Reviewer1: 5 } });
  },
  /** A caller that is not allowed to reach reviews: shows the authorization policy refusing it. */
  async intruder(req, res) {
    const r = await call('reviews', '/reviews/0', req.headers);
    json(res, 200, { status: r.status, error: r.error ?? null });
  },
};

const handler = handlers[role];
if (!handler || !port) {
  console.error(`usage: PORT=n node bookinfo.mjs ${Object.keys(handlers).join('|')}`);
  process.exit(2);
}
http
  .createServer((req, res) => {
    if (req.url === '/healthz') return json(res, 200, { ok: true });
    handler(req, res).catch((err) => json(res, 500, { error: String(err) }));
  })
  .listen(port, '127.0.0.1', () => console.log(`${role} ${version} listening on 127.0.0.1:${port}`));
