// End to end: with Mesh spec.tracing, a request through three services (apps forward the trace headers) becomes one
// trace whose spans link parent to child, received over OTLP/HTTP JSON by a receiver started here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Resource } from '../../src/api/types.js';
import { startTestMesh } from '../telemetry/mesh.js';
import { eventually } from './helpers.js';

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: { stringValue?: string; intValue?: string; boolValue?: boolean } }[];
  service: string;
}

/** A minimal OTLP/HTTP JSON receiver collecting spans. */
async function otlpReceiver() {
  const spans: Span[] = [];
  const bodies: string[] = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      bodies.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
      const msg = JSON.parse(body) as { resourceSpans: { resource: { attributes: Span['attributes'] }; scopeSpans: { spans: Span[] }[] }[] };
      for (const rs of msg.resourceSpans) {
        const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
        for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, service });
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return { spans, bodies, port: (srv.address() as AddressInfo).port, close: () => new Promise<void>((r) => srv.close(() => r())) };
}

const attr = (s: Span, k: string) => {
  const v = s.attributes.find((a) => a.key === k)?.value;
  return v?.stringValue ?? v?.intValue ?? v?.boolValue;
};

test('a request through three services is one trace: a SERVER and CLIENT span per proxy hop, linked parent to child', { timeout: 60_000 }, async () => {
  const otlp = await otlpReceiver();
  const mesh: Resource = {
    apiVersion: 'trellis.dev/v1alpha1',
    kind: 'Mesh',
    metadata: { name: 'default', namespace: 'trellis-system' },
    spec: { tracing: { endpoint: `http://127.0.0.1:${otlp.port}/v1/traces`, sampling: 100 } },
  } as Resource;
  const m = await startTestMesh([{ name: 'a', next: 'b' }, { name: 'b', next: 'c' }, { name: 'c' }], [mesh]);
  try {
    // The caller sits outside the mesh and sends plaintext to a's inbound (PERMISSIVE), with no trace context.
    const inboundA = (await m.cp.registry.snapshot()).workloads.find((w) => w.name === 'a')!.proxy!.inboundPort;
    const started = await eventually(
      async () => {
        const r = await new Promise<{ status: number; body: string }>((resolve, reject) =>
          http.get({ host: '127.0.0.1', port: inboundA, path: '/hop?x=1', agent: false }, (res) => {
            let body = '';
            res.on('data', (c) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          }).on('error', reject),
        );
        return r.status === 200 ? r : undefined;
      },
      10_000,
      'a request through a -> b -> c',
    );
    assert.match(started.body, /name\W+c\W/);

    // a: SERVER; a->b: CLIENT; b: SERVER; b->c: CLIENT; c: SERVER.
    const spans = await eventually(async () => (otlp.spans.length >= 5 ? otlp.spans : undefined), 10_000, `five spans (got ${otlp.spans.length})`);
    assert.equal(spans.length, 5, JSON.stringify(spans.map((s) => [s.service, s.kind, s.name])));
    assert.match(otlp.bodies[0], /^POST \/v1\/traces application\/json/);
    const traceIds = new Set(spans.map((s) => s.traceId));
    assert.equal(traceIds.size, 1, 'all spans in one trace');
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const roots = spans.filter((s) => !s.parentSpanId);
    assert.equal(roots.length, 1);
    assert.equal(roots[0].service, 'a');
    assert.equal(roots[0].kind, 2);
    // Walk the chain from the root: kinds alternate SERVER, CLIENT, ... and services follow the call path.
    const chain: Span[] = [roots[0]];
    for (;;) {
      const child = spans.find((s) => s.parentSpanId === chain[chain.length - 1].spanId);
      if (!child) break;
      chain.push(child);
    }
    assert.deepEqual(
      chain.map((s) => `${s.service}:${s.kind === 2 ? 'server' : 'client'}`),
      ['a:server', 'a:client', 'b:server', 'b:client', 'c:server'],
    );
    for (const s of spans) if (s.parentSpanId) assert.ok(byId.has(s.parentSpanId), `span ${s.spanId} has a parent in the trace`);
    // OpenTelemetry HTTP attributes and the mesh identities.
    const client = chain[1];
    assert.equal(attr(client, 'http.request.method'), 'GET');
    assert.equal(attr(client, 'url.path'), '/hop');
    assert.equal(attr(client, 'http.response.status_code'), '200');
    assert.equal(attr(client, 'server.address'), 'b');
    assert.equal(attr(client, 'trellis.destination.principal'), 'spiffe://cluster.local/ns/default/sa/b');
    assert.equal(attr(chain[2], 'trellis.source.principal'), 'spiffe://cluster.local/ns/default/sa/a');
    assert.equal(attr(chain[2], 'trellis.mtls'), true);
    // x-request-id was added at the edge and is the same on every hop.
    const ids = new Set(spans.map((s) => attr(s, 'trellis.request_id')));
    assert.equal(ids.size, 1);
    assert.ok([...ids][0]);
  } finally {
    await m.close();
    await otlp.close();
  }
});

test('an incoming sampled traceparent is continued; a B3 one too; sampling 0 records nothing new', { timeout: 60_000 }, async () => {
  const otlp = await otlpReceiver();
  const mesh: Resource = {
    apiVersion: 'trellis.dev/v1alpha1',
    kind: 'Mesh',
    metadata: { name: 'default', namespace: 'trellis-system' },
    spec: { tracing: { endpoint: `http://127.0.0.1:${otlp.port}/v1/traces`, sampling: 0 } },
  } as Resource;
  const m = await startTestMesh([{ name: 'a' }, { name: 'b' }], [mesh]);
  const get = (headers: Record<string, string>) =>
    new Promise<number>((resolve, reject) =>
      http.get({ host: '127.0.0.1', port: m.outbound('a'), path: '/', headers: { host: 'b', ...headers }, agent: false }, (res) => res.resume().on('end', () => resolve(res.statusCode ?? 0))).on('error', reject),
    );
  try {
    await eventually(async () => ((await get({})) === 200 ? true : undefined), 10_000, 'mesh ready');
    for (let i = 0; i < 5; i++) assert.equal(await get({}), 200);
    assert.equal(await get({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'vendor=x' }), 200);
    assert.equal(await get({ 'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7', 'x-b3-spanid': 'e457b5a2e4d86bd1', 'x-b3-sampled': '1' }), 200);
    const spans = await eventually(async () => (otlp.spans.length >= 4 ? otlp.spans : undefined), 10_000, 'spans of the two sampled requests');
    await new Promise((r) => setTimeout(r, 1200));
    // Exactly the two requests that came sampled: a CLIENT span in a and a SERVER span in b each; nothing for the others.
    assert.equal(otlp.spans.length, 4);
    const w3c = spans.filter((s) => s.traceId === '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.equal(w3c.length, 2);
    assert.equal(w3c.find((s) => s.kind === 3)!.parentSpanId, '00f067aa0ba902b7');
    const b3 = spans.filter((s) => s.traceId === '80f198ee56343ba864fe8b2a57d3eff7');
    assert.equal(b3.length, 2);
    assert.equal(b3.find((s) => s.kind === 3)!.parentSpanId, 'e457b5a2e4d86bd1');
  } finally {
    await m.close();
    await otlp.close();
  }
});
