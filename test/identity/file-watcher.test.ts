import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { runCert } from '../../src/cli/cert.js';
import { startCa } from './ca-server.js';

const { FileWatcherCertificateProvider, createCertificateProviderServerCredentials, createCertificateProviderChannelCredentials } =
  grpc.experimental;

/** Calls a method no server implements: UNIMPLEMENTED means the mTLS handshake succeeded. */
function probe(address: string, creds: grpc.ChannelCredentials): Promise<grpc.status> {
  const client = new grpc.Client(address, creds);
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      '/trellis.test.Nothing/Call',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      { deadline: Date.now() + 3000 },
      (err) => {
        client.close();
        resolve(err?.code ?? grpc.status.OK);
      },
    );
  });
}

test('files written by trellis cert work with grpc-js file_watcher certificate providers (mTLS)', async () => {
  const srv = await startCa();
  const dir = mkdtempSync(join(tmpdir(), 'trellis-fw-'));
  const server = new grpc.Server();
  const providers: InstanceType<typeof FileWatcherCertificateProvider>[] = [];
  const watch = (d: string, withIdentity = true) => {
    const p = new FileWatcherCertificateProvider({
      caCertificateFile: join(d, 'ca.pem'),
      ...(withIdentity ? { certificateFile: join(d, 'cert.pem'), privateKeyFile: join(d, 'key.pem') } : {}),
      refreshIntervalMs: 60_000,
    });
    providers.push(p);
    return p;
  };
  try {
    for (const sa of ['server', 'client']) {
      const token = await srv.tokens.create({ namespace: 'default', serviceAccount: sa });
      await runCert({ caAddress: srv.address, token, spiffeId: `spiffe://cluster.local/ns/default/sa/${sa}`, outDir: join(dir, sa), once: true, log: () => undefined });
    }
    const sp = watch(join(dir, 'server'));
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', createCertificateProviderServerCredentials(sp, sp, true), (e, p) => (e ? reject(e) : resolve(p))),
    );
    const address = `127.0.0.1:${port}`;
    const cp = watch(join(dir, 'client'));
    const verify = { checkServerIdentity: () => undefined };
    assert.equal(await probe(address, createCertificateProviderChannelCredentials(cp, cp, verify)), grpc.status.UNIMPLEMENTED);
    const anon = watch(join(dir, 'client'), false);
    assert.equal(await probe(address, createCertificateProviderChannelCredentials(anon, null, verify)), grpc.status.UNAVAILABLE, 'no client certificate: refused');
  } finally {
    server.forceShutdown();
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
