// HTTP/2 conformance: h2spec in strict mode against the proxy's h2c listener; every failure must be listed in docs/h2spec.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { startMesh } from '../proxy/helpers/mesh.js';

function findH2spec(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), join(homedir(), 'go', 'bin')];
  for (const d of dirs) if (d && existsSync(join(d, 'h2spec'))) return join(d, 'h2spec');
  return undefined;
}

/** Case ids ("http2/6.5.3/1") that failed, read from h2spec's JUnit report. */
export function failedCases(junit: string): string[] {
  const out: string[] = [];
  const re = /<testcase\b[^>]*?package="([^"]*)"[^>]*?classname="([^"]*)"[^>]*?(?:\/>|>([\s\S]*?)<\/testcase>)/g;
  for (let m = re.exec(junit); m; m = re.exec(junit)) {
    if (m[3] && /<(failure|error)\b/.test(m[3])) out.push(`${m[1]} ${m[2]}`.trim());
  }
  return out;
}

/** Documented failures: lines of docs/h2spec.md of the form "- `<listener>: <id>` ..." (ids as printed by this test). */
function documented(): string[] {
  const doc = readFileSync(new URL('../../docs/h2spec.md', import.meta.url), 'utf8');
  return [...doc.matchAll(/^- `([^`]+)`/gm)].map((m) => m[1]);
}

function run(bin: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

const bin = findH2spec();

const skip = bin ? false : 'h2spec not found in PATH or ~/go/bin (go install github.com/summerwind/h2spec/cmd/h2spec@latest)';

/** Runs h2spec --strict on a port; returns the failed case ids and the tail of its output. */
async function h2spec(port: number): Promise<{ failed: string[]; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'h2spec-'));
  try {
    const report = join(dir, 'report.xml');
    // Async spawn: the proxy under test runs in this process and must keep serving.
    const r = await run(bin!, ['--strict', '-h', '127.0.0.1', '-p', String(port), '-P', '/', '--timeout', '2', '-j', report], 220_000);
    assert.ok(existsSync(report), `h2spec wrote no report (exit ${r.code}): ${r.out.slice(-2000)}`);
    return { failed: failedCases(readFileSync(report, 'utf8')), out: r.out.slice(-6000) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function checkAgainstDocs(where: string, failed: string[], out: string): void {
  const known = new Set(documented());
  const unexpected = failed.filter((f) => !known.has(`${where}: ${f}`));
  console.log(`h2spec ${where}: ${failed.length} failures\n${failed.join('\n')}`);
  assert.deepEqual(unexpected, [], `h2spec failures on the ${where} listener not listed in docs/h2spec.md:\n${unexpected.join('\n')}\n\n${out}`);
}

test('h2spec --strict against the outbound h2c listener: no failures beyond docs/h2spec.md', { skip, timeout: 240_000 }, async () => {
  const mesh = await startMesh();
  try {
    const { failed, out } = await h2spec(mesh.outPort);
    checkAgainstDocs('outbound', failed, out);
  } finally {
    await mesh.close();
  }
});

test('h2spec --strict against the inbound listener (PERMISSIVE, plaintext h2c, L7 always): no failures beyond docs/h2spec.md', { skip, timeout: 240_000 }, async () => {
  const mesh = await startMesh({ mtls: 'PERMISSIVE', inboundL7: 'always' });
  try {
    const { failed, out } = await h2spec(mesh.inPort);
    checkAgainstDocs('inbound', failed, out);
  } finally {
    await mesh.close();
  }
});
