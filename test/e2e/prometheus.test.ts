// End to end with the real Prometheus server: it finds proxies through the control plane's HTTP service discovery,
// scrapes them and the control plane, and PromQL returns the request rate and success ratio that was sent.
// Needs Debian's `prometheus` package (prometheus and promtool on PATH); skipped without it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { freePorts } from '../../src/local/ports.js';
import { startTestMesh } from '../telemetry/mesh.js';
import { eventually } from './helpers.js';

const have = (bin: string) => spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0;
const skip = !have('prometheus') || !have('promtool') ? 'prometheus/promtool not installed (Debian package "prometheus")' : false;

function promtoolCheck(text: string): { status: number | null; out: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

async function query(port: number, q: string): Promise<number | undefined> {
  const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(2000) });
  const body = (await r.json()) as { status: string; data?: { result: { value: [number, string] }[] } };
  if (body.status !== 'success' || !body.data?.result.length) return undefined;
  const v = Number(body.data.result[0].value[1]);
  return Number.isFinite(v) ? v : undefined;
}

test('Prometheus scrapes the mesh; PromQL gives the request rate and success ratio sent to a service', { skip, timeout: 90_000 }, async () => {
  const mesh = await startTestMesh([{ name: 'frontend' }, { name: 'backend' }]);
  const dir = mkdtempSync(join(tmpdir(), 'trellis-prom-'));
  let prom: ReturnType<typeof spawn> | undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  let load: NodeJS.Timeout | undefined;
  try {
    // Every exposition passes promtool's checks (names, types, help, histogram shape).
    const done: number[] = [];
    const one = (path: string) =>
      new Promise<void>((resolve, reject) =>
        http
          .get({ host: '127.0.0.1', port: mesh.outbound('frontend'), path, headers: { host: 'backend' }, agent }, (res) =>
            res.resume().on('end', () => {
              done.push(Date.now());
              resolve();
            }),
          )
          .on('error', reject),
      );
    await one('/');
    await one('/fail');
    const expositions = [
      ...[...mesh.proxies.values()].map((p) => `http://127.0.0.1:${p.metricsPort()}/metrics`),
      `http://${mesh.control}/metrics`,
    ];
    for (const url of expositions) {
      const text = await (await fetch(url)).text();
      const r = promtoolCheck(text);
      assert.equal(r.status, 0, `promtool check metrics on ${url}:\n${r.out}`);
    }

    const [promPort] = await freePorts(1);
    const config = [
      'global: {scrape_interval: 1s, evaluation_interval: 1s}',
      'scrape_configs:',
      '  - job_name: trellis-proxies',
      `    http_sd_configs: [{url: "http://${mesh.control}/api/v1/prometheus/targets", refresh_interval: 1s}]`,
      '  - job_name: trellis-control',
      `    static_configs: [{targets: ["${mesh.control}"]}]`,
      '',
    ].join('\n');
    writeFileSync(join(dir, 'prometheus.yml'), config);
    const r = spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let promLog = '';
    prom.stderr!.on('data', (d) => (promLog += d));
    await eventually(async () => ((await fetch(`http://127.0.0.1:${promPort}/-/ready`)).ok ? true : undefined), 20_000, `prometheus ready (log: ${promLog})`);

    // 20 requests/s to backend, one in four to a path the app answers with 500.
    let sent = 0;
    load = setInterval(() => {
      sent++;
      one(sent % 4 === 0 ? '/fail' : '/ok').catch(() => {});
    }, 50);

    const targetsUp = await eventually(
      async () => {
        const up = await query(promPort, 'sum(up{job="trellis-proxies"})');
        return up === 2 ? up : undefined;
      },
      20_000,
      'both proxies discovered and up in Prometheus',
    );
    assert.equal(targetsUp, 2);
    await eventually(async () => ((await query(promPort, 'up{job="trellis-control"}')) === 1 ? true : undefined), 10_000, 'the control plane scraped');
    // rate() over 10 s needs 10 s of samples from the moment the targets were first scraped.
    const upAt = Date.now();

    const rateQ = 'sum(rate(trellis_requests_total{reporter="source",destination_service=~"backend.*"}[10s]))';
    const ratioQ =
      'sum(rate(trellis_requests_total{reporter="source",destination_service=~"backend.*",response_code!~"5.."}[10s])) / sum(rate(trellis_requests_total{reporter="source",destination_service=~"backend.*"}[10s]))';
    // Wait until a full 10 s window of load is in the TSDB, then read both.
    const rate = await eventually(
      async () => {
        if (Date.now() - upAt < 12_000) return undefined;
        const v = await query(promPort, rateQ);
        return v !== undefined && v > 0 ? v : undefined;
      },
      30_000,
      'a request rate from PromQL',
    );
    // What was actually sent (a loaded machine delivers fewer than 20/s): completions in the 10 s before the last scrape.
    const now = Date.now();
    const sentRate = done.filter((t) => t > now - 11_000 && t <= now - 1000).length / 10;
    assert.ok(Math.abs(rate - sentRate) / sentRate < 0.3, `PromQL rate ${rate} req/s, the test sent ${sentRate} req/s`);
    assert.ok(rate > 5, `rate ${rate}`);
    const ratio = await query(promPort, ratioQ);
    assert.ok(ratio !== undefined && ratio > 0.65 && ratio < 0.85, `success ratio ${ratio}, expected about 0.75`);
    // Latency histograms work with histogram_quantile, and the destination side reports too.
    const p99 = await query(promPort, 'histogram_quantile(0.99, sum by (le) (rate(trellis_request_duration_seconds_bucket{reporter="source"}[10s])))');
    assert.ok(p99 !== undefined && p99 > 0 && p99 < 5, `p99 ${p99}`);
    const dest = await query(promPort, 'sum(rate(trellis_requests_total{reporter="destination",destination_workload="backend"}[10s]))');
    assert.ok(dest !== undefined && dest > 10, `destination-reported rate ${dest}`);
  } finally {
    if (load) clearInterval(load);
    agent.destroy();
    if (prom && prom.exitCode === null) {
      prom.kill('SIGTERM');
      await new Promise((r) => prom!.once('exit', r));
    }
    await mesh.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
