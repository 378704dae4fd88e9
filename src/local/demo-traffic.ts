// The demo's load generator: steady requests through the mesh, tallying what the app-level responses prove.
import http from 'node:http';

export interface DemoTally {
  sent: number;
  ok: number;
  failed: number;
  /** reviews version seen by requests without the test-user header */
  normal: Record<string, number>;
  /** reviews version seen by requests carrying `user: test-user` */
  testUser: Record<string, number>;
  /** what the intruder got when it called reviews: status -> count, error codes */
  intruder: { attempts: number; denied: number; allowed: number; other: number };
  errors: Record<string, number>;
}

export function emptyTally(): DemoTally {
  return { sent: 0, ok: 0, failed: 0, normal: {}, testUser: {}, intruder: { attempts: 0, denied: 0, allowed: 0, other: 0 }, errors: {} };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

function get(port: number, headers: Record<string, string>, path: string): Promise<{ status: number; body: string; error?: string }> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers, agent, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), error: res.headers['x-trellis-error'] as string | undefined }),
      );
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, body: err.message, error: 'client_error' }));
    req.end();
  });
}

export interface TrafficOptions {
  /** The outbound listener of the load generator's own proxy (it is a mesh client). */
  outboundPort: number;
  /** The intruder app's own port: it calls reviews through its proxy on each hit. */
  intruderPort?: number;
  rps: number;
  testUserShare: number; // 0..1
}

/** Starts sending; returns a stop function. Requests go out on a fixed schedule, not back to back. */
export function startTraffic(opts: TrafficOptions, tally: DemoTally): () => void {
  let n = 0;
  const every = Math.max(1, Math.round(1000 / opts.rps));
  const timer = setInterval(() => {
    n++;
    const testUser = (n % Math.round(1 / opts.testUserShare)) === 0;
    const headers: Record<string, string> = { host: 'productpage' };
    if (testUser) headers.user = 'test-user';
    tally.sent++;
    get(opts.outboundPort, headers, '/productpage').then((r) => {
      if (r.status !== 200) {
        tally.failed++;
        const code = r.error ?? `http_${r.status}`;
        tally.errors[code] = (tally.errors[code] ?? 0) + 1;
        return;
      }
      tally.ok++;
      let version = 'unknown';
      try {
        version = (JSON.parse(r.body) as { reviews?: { version?: string } }).reviews?.version ?? 'unknown';
      } catch {
        /* counted as unknown */
      }
      const bucket = testUser ? tally.testUser : tally.normal;
      bucket[version] = (bucket[version] ?? 0) + 1;
    });
    if (opts.intruderPort && n % Math.max(1, Math.round(opts.rps)) === 0) {
      tally.intruder.attempts++;
      get(opts.intruderPort, {}, '/').then((r) => {
        let inner: { status?: number; error?: string | null } = {};
        try {
          inner = JSON.parse(r.body);
        } catch {
          /* other */
        }
        if (inner.status === 403 && inner.error === 'denied') tally.intruder.denied++;
        else if (inner.status === 200) tally.intruder.allowed++;
        else tally.intruder.other++;
      });
    }
  }, every);
  return () => clearInterval(timer);
}

export interface SummaryCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/** What `trellis demo --duration` must have seen for its exit code to be 0. */
export function checkTally(t: DemoTally, edges: { source: string; destination: string; requests: number; mtls: boolean }[]): SummaryCheck[] {
  const normalTotal = Object.values(t.normal).reduce((a, b) => a + b, 0);
  const v2 = t.normal.v2 ?? 0;
  const v1 = t.normal.v1 ?? 0;
  const share = normalTotal > 0 ? v2 / normalTotal : 0;
  // 3 standard deviations of a binomial share around 10%, at least 4 points.
  const tol = Math.max(0.04, 3 * Math.sqrt((0.1 * 0.9) / Math.max(1, normalTotal)));
  const tuTotal = Object.values(t.testUser).reduce((a, b) => a + b, 0);
  const meshEdges = edges.filter((e) => e.requests > 0 && e.source !== 'unknown');
  return [
    {
      name: 'traffic flows',
      ok: t.ok > 0 && t.failed <= t.sent * 0.01,
      detail: `${t.ok}/${t.sent} requests succeeded${t.failed ? `, failures: ${JSON.stringify(t.errors)}` : ''}`,
    },
    {
      name: 'canary split 90/10',
      ok: normalTotal >= 50 && v1 + v2 === normalTotal && Math.abs(share - 0.1) <= tol,
      detail: `reviews v1 ${v1}, v2 ${v2} of ${normalTotal} (v2 ${(share * 100).toFixed(1)}%, expected 10% ± ${(tol * 100).toFixed(1)})`,
    },
    {
      name: 'test-user routed to v2',
      ok: tuTotal > 0 && (t.testUser.v2 ?? 0) === tuTotal,
      detail: `${t.testUser.v2 ?? 0}/${tuTotal} test-user requests reached reviews v2`,
    },
    {
      name: 'mTLS on every edge',
      ok: meshEdges.length >= 4 && meshEdges.every((e) => e.mtls),
      detail: `${meshEdges.filter((e) => e.mtls).length}/${meshEdges.length} edges with traffic used mutual TLS`,
    },
    {
      name: 'intruder denied',
      ok: t.intruder.denied > 0 && t.intruder.allowed === 0,
      detail: `${t.intruder.denied} of ${t.intruder.attempts} intruder calls to reviews denied (403 denied), ${t.intruder.allowed} allowed`,
    },
  ];
}
