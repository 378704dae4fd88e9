// Test helper: a CA with CertificateService on 127.0.0.1, port 0.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CertificateAuthority } from '../../src/identity/ca.js';
import { TokenIssuer } from '../../src/identity/token.js';
import { addCertificateService, type SignedInfo } from '../../src/identity/ca-service.js';

export interface TestCa {
  address: string;
  ca: CertificateAuthority;
  tokens: TokenIssuer;
  stateDir: string;
  signed: string[];
  signedInfo: SignedInfo[];
  refused: string[];
  close(): Promise<void>;
}

export async function startCa(opts: { maxTtlSeconds?: number; stateDir?: string; port?: number } = {}): Promise<TestCa> {
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'trellis-casrv-'));
  const ca = await CertificateAuthority.loadOrCreate({ stateDir, trustDomain: 'cluster.local' });
  const tokens = await TokenIssuer.loadOrCreate(stateDir);
  const server = new grpc.Server();
  const signed: string[] = [];
  const signedInfo: SignedInfo[] = [];
  const refused: string[] = [];
  addCertificateService(server, {
    ca,
    tokens,
    maxTtlSeconds: opts.maxTtlSeconds ?? 3600,
    onSigned: (id, info) => {
      signed.push(id);
      signedInfo.push(info);
    },
    onRefused: (r) => refused.push(r),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${opts.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    ca,
    tokens,
    stateDir,
    signedInfo,
    signed,
    refused,
    close: async () => {
      server.forceShutdown();
      if (!opts.stateDir) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
