// `trellis analyze` as a child process: exit codes, output lines, JSON, and the control-plane mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const fixture = (p: string): string => `test/fixtures/api/${p}`;

function trellis(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', ...args],
      { cwd: ROOT, timeout: 20_000, env: { ...process.env, ...env } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('clean input: exit 0 and a summary line', async () => {
  const r = await trellis(['analyze', '-f', fixture('valid')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '42 resources analyzed: 0 errors, 0 warnings\n');
});

test('an error: exit 1, one line per diagnostic, -f repeatable, missing file reported', async () => {
  const r = await trellis(['analyze', '-f', fixture('invalid/jwt.yaml'), '-f', fixture('nope.yaml')]);
  assert.equal(r.code, 1);
  assert.equal(
    r.stdout,
    [
      'test/fixtures/api/invalid/jwt.yaml:6:5: error TRL0218 RequestAuthentication default/jwt spec.jwtRules[0]: jwtRule has no issuer (hint: set issuer to the "iss" claim the tokens carry)',
      "test/fixtures/api/invalid/jwt.yaml:8:5: error TRL0216 RequestAuthentication default/jwt spec.jwtRules[1].jwks: jwks is not a JSON Web Key Set: Expected property name or '}' in JSON at position 1",
      'test/fixtures/api/invalid/jwt.yaml:10:5: error TRL0216 RequestAuthentication default/jwt spec.jwtRules[2].jwksUri: jwksUri must be an http(s) URL, got "file:///x"',
      'test/fixtures/api/nope.yaml: error TRL0108: cannot read: no such file or directory',
      '1 resource analyzed: 4 errors, 0 warnings',
      '',
    ].join('\n'),
  );
});

test('-o json prints the diagnostics as data', async () => {
  const r = await trellis(['analyze', '-o', 'json', '-f', fixture('invalid/authz.yaml')]);
  assert.equal(r.code, 1);
  const body = JSON.parse(r.stdout);
  assert.equal(body.errors, 3);
  assert.equal(body.warnings, 2);
  assert.deepEqual(body.diagnostics[0], {
    code: 'TRL0402',
    severity: 'warning',
    message: 'action CUSTOM is not honoured: external authorizers are not implemented, so this policy is ignored',
    file: 'test/fixtures/api/invalid/authz.yaml',
    line: 5,
    column: 3,
    kind: 'AuthorizationPolicy',
    namespace: 'default',
    name: 'custom',
    field: 'spec.action',
  });
});

test('--help and bad options', async () => {
  const help = await trellis(['analyze', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: trellis analyze/);
  const bad = await trellis(['analyze', '--bogus']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error: .*bogus.*\(see --help\)\n$/);
});

test('without -f: analyzes what the control plane serves at /api/v1/resources', async () => {
  const resources = [
    { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'a' }, spec: { hosts: ['a'], http: [{ route: [{ destination: { host: 'a', subset: 'v1' } }] }] } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'a' }, spec: { ports: [{ port: 80 }] } },
  ];
  const server = createServer((req, res) => {
    if (req.url === '/api/v1/resources') res.end(JSON.stringify({ resources }));
    else res.writeHead(404).end('{"error":"not found"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const port = (server.address() as AddressInfo).port;
    const r = await trellis(['analyze', '--control', `127.0.0.1:${port}`]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stdout,
      'error TRL0303 VirtualService default/a spec.http[0].route[0].destination.subset: subset "v1" of host "a" is not defined: no DestinationRule for a.default.svc.cluster.local\n2 resources analyzed: 1 error, 0 warnings\n',
    );
    const down = await trellis(['analyze'], { TRELLIS_CONTROL: '127.0.0.1:1' });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^error: cannot reach the control plane at 127\.0\.0\.1:1/);
  } finally {
    server.close();
  }
});
