import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import token from '../../src/cli/token.js';
import cert, { runCert } from '../../src/cli/cert.js';
import { CliError } from '../../src/cli/common.js';
import { TokenIssuer } from '../../src/identity/token.js';
import { certificateExpiry } from '../../src/identity/cert-manager.js';
import { parseCertificate } from '../../src/identity/x509.js';
import { pemToDers } from '../../src/identity/pem.js';
import { startCa } from './ca-server.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'trellis-cli-'));
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Runs a verb in-process with console.log captured. */
async function run(verb: (argv: string[]) => Promise<number>, argv: string[]): Promise<{ code: number; out: string[] }> {
  const out: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => out.push(a.map(String).join(' '));
  try {
    return { code: await verb(argv), out: out.join('\n').split('\n') };
  } finally {
    console.log = orig;
  }
}

test('trellis token create prints a verifiable token alone on the last line; -o json', async () => {
  const srv = await startCa();
  try {
    const r = await run(token, ['create', '--namespace', 'shop', '--service-account', 'cart', '--ttl', '2h', '--state-dir', srv.stateDir]);
    assert.equal(r.code, 0);
    const last = r.out.at(-1)!;
    assert.match(last, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const grant = await srv.tokens.verify(last);
    assert.equal(grant.namespace, 'shop');
    assert.equal(grant.serviceAccount, 'cart');
    assert.equal(grant.trustDomain, 'cluster.local');
    assert.ok(Math.abs(grant.expiresAt.getTime() - Date.now() - 7200_000) < 3000);
    assert.match(r.out[0], /spiffe:\/\/cluster.local\/ns\/shop\/sa\/cart/);

    const j = await run(token, ['create', '--service-account', 'web', '--state-dir', srv.stateDir, '-o', 'json']);
    const obj = JSON.parse(j.out.join('\n'));
    assert.equal(obj.spiffeId, 'spiffe://cluster.local/ns/default/sa/web');
    assert.equal((await srv.tokens.verify(obj.token)).serviceAccount, 'web');
  } finally {
    await srv.close();
  }
});

test('trellis token create: clear errors', async () => {
  const empty = tmp();
  await assert.rejects(run(token, ['create', '--service-account', 'web', '--state-dir', empty]), (e: unknown) => {
    assert.ok(e instanceof CliError);
    assert.match(e.message, /no token signing key at .*token-key.pem: run `trellis control` first or pass --state-dir/);
    return true;
  });
  const dir = tmp();
  await TokenIssuer.loadOrCreate(dir);
  await assert.rejects(run(token, ['create', '--state-dir', dir]), /--service-account is required/);
  await assert.rejects(run(token, ['create', '--service-account', 'a', '--ttl', 'soon', '--state-dir', dir]), /--ttl: invalid duration/);
  await assert.rejects(run(token, ['create', '--service-account', 'a/b', '--state-dir', dir]), /invalid service account/);
  await assert.rejects(run(token, ['list']), /unknown subcommand/);
  assert.equal((await run(token, ['--help'])).code, 0);
});

test('trellis cert --once writes cert.pem, key.pem (0600) and ca.pem that openssl accepts', async () => {
  const srv = await startCa();
  const out = join(tmp(), 'certs');
  try {
    const t = await srv.tokens.create({ namespace: 'default', serviceAccount: 'web', trustDomain: 'cluster.local' });
    const r = await run(cert, ['--workload', 'default/web', '--token', t, '--out', out, '--control', srv.address, '--once', '-o', 'json']);
    assert.equal(r.code, 0);
    const info = JSON.parse(r.out.join('\n'));
    assert.equal(info.spiffeId, 'spiffe://cluster.local/ns/default/sa/web');
    assert.equal(info.private_key_file, join(out, 'key.pem'));
    assert.equal(statSync(join(out, 'key.pem')).mode & 0o777, 0o600);
    const v = execFileSync('openssl', ['verify', '-CAfile', join(out, 'ca.pem'), join(out, 'cert.pem')], { encoding: 'utf8' });
    assert.match(v, /cert.pem: OK/);
    // The key matches the certificate.
    const pubFromKey = execFileSync('openssl', ['pkey', '-in', join(out, 'key.pem'), '-pubout'], { encoding: 'utf8' });
    const pubFromCert = execFileSync('openssl', ['x509', '-in', join(out, 'cert.pem'), '-noout', '-pubkey'], { encoding: 'utf8' });
    assert.equal(pubFromKey, pubFromCert);
    assert.deepEqual(readdir(out), ['ca.pem', 'cert.pem', 'key.pem'], 'no temp files left');
  } finally {
    await srv.close();
  }
});

test('trellis cert refuses a workload outside the token\'s grant, and reports refusals in one line', async () => {
  const srv = await startCa();
  try {
    const t = await srv.tokens.create({ namespace: 'default', serviceAccount: 'web' });
    await assert.rejects(run(cert, ['--workload', 'other/web', '--token', t, '--out', tmp(), '--control', srv.address, '--once']), /grants namespace "default" but --workload is in "other"/);
    await assert.rejects(
      run(cert, ['--workload', 'default/web', '--service-account', 'admin', '--token', t, '--out', tmp(), '--control', srv.address, '--once']),
      (e: unknown) => e instanceof CliError && /refused: the token grants .*sa\/web but the CSR asks for .*sa\/admin/.test(e.message),
    );
    await assert.rejects(run(cert, ['--workload', 'default/web', '--token', 'bad', '--out', tmp(), '--control', srv.address, '--once']), /--token: not a join token/);
    const foreign = await (await TokenIssuer.loadOrCreate(tmp())).create({ namespace: 'default', serviceAccount: 'web' });
    await assert.rejects(run(cert, ['--workload', 'default/web', '--token', foreign, '--out', tmp(), '--control', srv.address, '--once']), /another control plane/);
    await assert.rejects(run(cert, ['--token', t, '--out', tmp()]), /--workload NS\/NAME is required/);
  } finally {
    await srv.close();
  }
});

test('trellis cert keeps the files fresh while it runs, and waits out a CA outage', async () => {
  const stateDir = tmp();
  let srv = await startCa({ stateDir });
  const port = Number(srv.address.split(':')[1]);
  const out = join(tmp(), 'live');
  const ac = new AbortController();
  const logs: string[] = [];
  try {
    const t = await srv.tokens.create({ namespace: 'default', serviceAccount: 'web' });
    const running = runCert(
      { caAddress: srv.address, token: t, spiffeId: 'spiffe://cluster.local/ns/default/sa/web', outDir: out, ttlSeconds: 3, once: false, log: (l) => logs.push(l) },
      ac.signal,
    );
    await waitFor(() => existsSync(join(out, 'ca.pem')), 3000);
    const first = readFileSync(join(out, 'cert.pem'), 'utf8');
    const firstKey = readFileSync(join(out, 'key.pem'), 'utf8');
    await waitFor(() => readFileSync(join(out, 'cert.pem'), 'utf8') !== first, 4000);
    assert.notEqual(readFileSync(join(out, 'key.pem'), 'utf8'), firstKey, 'key rotated with the certificate');
    const second = readFileSync(join(out, 'cert.pem'), 'utf8');
    const { notAfter } = certificateExpiry(second);
    assert.ok(notAfter.getTime() > certificateExpiry(first).notAfter.getTime());

    await srv.close();
    await waitFor(() => logs.some((l) => /retrying in .*still serving/.test(l)), 4000);
    assert.equal(readFileSync(join(out, 'cert.pem'), 'utf8'), second, 'files untouched while the CA is away');
    srv = await startCa({ stateDir, port });
    await waitFor(() => readFileSync(join(out, 'cert.pem'), 'utf8') !== second, 6000);
    assert.deepEqual(parseCertificate(pemToDers(readFileSync(join(out, 'cert.pem'), 'utf8'))[0]).uriSans, ['spiffe://cluster.local/ns/default/sa/web']);
    ac.abort();
    await running;
  } finally {
    ac.abort();
    await srv.close();
  }
});

function readdir(d: string): string[] {
  return (execFileSync('ls', ['-A', d], { encoding: 'utf8' }) as string).trim().split('\n').sort();
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}
