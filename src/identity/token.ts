// Join tokens: ES256 JWTs granting one namespace/service account, signed with a key kept in the state dir.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, jwtVerify, decodeProtectedHeader, calculateJwkThumbprint, exportJWK, errors as joseErrors } from 'jose';
import { writeFileAtomicSync } from './fsutil.js';

export const TOKEN_ISSUER = 'trellis';
export const TOKEN_AUDIENCE = 'trellis-ca';
export const TOKEN_KEY_FILE = 'token-key.pem';
export const DEFAULT_TOKEN_TTL_SECONDS = 24 * 3600;

export type TokenProblem = 'malformed' | 'bad_signature' | 'expired' | 'wrong_issuer' | 'invalid_claims';

export class TokenError extends Error {
  constructor(
    readonly reason: TokenProblem,
    message: string,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

export interface TokenGrant {
  namespace: string;
  serviceAccount: string;
  expiresAt: Date;
  /** Set when the issuer knew the trust domain; tells a client which SPIFFE ID to ask for. */
  trustDomain?: string;
}

const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** '24h', '30m', '90s', '7d', '1h30m' or plain seconds -> seconds. Throws on anything else. */
export function parseDuration(text: string): number {
  const s = String(text).trim();
  if (/^\d+$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let end = 0;
  for (const m of s.matchAll(re)) {
    total += Number(m[1]) * UNITS[m[2]];
    end = (m.index ?? 0) + m[0].length;
  }
  if (s.length === 0 || end !== s.length) {
    throw new Error(`invalid duration "${text}" (use e.g. 90s, 30m, 24h, 7d)`);
  }
  return total;
}

const SEGMENT = /^[A-Za-z0-9._-]+$/;

export class TokenIssuer {
  private constructor(
    private readonly privateKey: KeyObject,
    private readonly publicKey: KeyObject,
    /** JWK thumbprint of the key: the token header's kid, so a token from another control plane is named as such. */
    readonly keyId: string,
  ) {}

  /** Loads `<stateDir>/token-key.pem`, creating it (mode 0600) on first start. */
  static async loadOrCreate(stateDir: string): Promise<TokenIssuer> {
    const file = join(stateDir, TOKEN_KEY_FILE);
    if (!existsSync(file)) {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      writeFileAtomicSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, 0o600);
    }
    return TokenIssuer.load(stateDir);
  }

  /** Loads an existing key; throws when the state dir has none. */
  static async load(stateDir: string): Promise<TokenIssuer> {
    const file = join(stateDir, TOKEN_KEY_FILE);
    let key: KeyObject;
    try {
      key = createPrivateKey(readFileSync(file, 'utf8'));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new Error(`no token signing key at ${file}`);
      throw new Error(`${file}: cannot read the token signing key (${(err as Error).message})`);
    }
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new Error(`${file}: the token signing key must be an EC P-256 key`);
    }
    const pub = createPublicKey(key);
    const kid = await calculateJwkThumbprint(await exportJWK(pub));
    return new TokenIssuer(key, pub, kid);
  }

  async create(opts: { namespace: string; serviceAccount: string; ttlSeconds?: number; trustDomain?: string }): Promise<string> {
    if (!SEGMENT.test(opts.namespace ?? '')) throw new Error(`invalid namespace "${opts.namespace}" (letters, digits, ".", "-", "_")`);
    if (!SEGMENT.test(opts.serviceAccount ?? '')) {
      throw new Error(`invalid service account "${opts.serviceAccount}" (letters, digits, ".", "-", "_")`);
    }
    const ttl = opts.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
    if (!Number.isFinite(ttl) || ttl <= 0) throw new Error(`the token lifetime must be positive, got ${ttl}`);
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, string> = { ns: opts.namespace, sa: opts.serviceAccount };
    if (opts.trustDomain) claims.td = opts.trustDomain;
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: this.keyId })
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setSubject(`${opts.namespace}/${opts.serviceAccount}`)
      .setIssuedAt(now)
      .setExpirationTime(now + Math.ceil(ttl))
      .sign(this.privateKey);
  }

  async verify(token: string): Promise<TokenGrant> {
    if (typeof token !== 'string' || token.split('.').length !== 3) {
      throw new TokenError('malformed', 'the token is not a JWT (expected three dot-separated parts)');
    }
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      throw new TokenError('malformed', 'the token header cannot be decoded');
    }
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.publicKey, {
        algorithms: ['ES256'],
        issuer: TOKEN_ISSUER,
        audience: TOKEN_AUDIENCE,
      }));
    } catch (err) {
      throw translate(err, kid, this.keyId);
    }
    const ns = payload.ns;
    const sa = payload.sa;
    if (typeof ns !== 'string' || typeof sa !== 'string' || !SEGMENT.test(ns) || !SEGMENT.test(sa)) {
      throw new TokenError('invalid_claims', 'the token does not name a namespace and service account');
    }
    const grant: TokenGrant = { namespace: ns, serviceAccount: sa, expiresAt: new Date(Number(payload.exp) * 1000) };
    if (typeof payload.td === 'string') grant.trustDomain = payload.td;
    return grant;
  }
}

function translate(err: unknown, kid: string | undefined, ourKid: string): TokenError {
  if (err instanceof joseErrors.JWTExpired) {
    const exp = Number((err.payload as { exp?: number }).exp);
    return new TokenError('expired', `the token expired${Number.isFinite(exp) ? ` at ${new Date(exp * 1000).toISOString()}` : ''}; create a new one with \`trellis token create\``);
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    if (kid && kid !== ourKid) {
      return new TokenError('wrong_issuer', `the token was signed by another control plane's key (kid ${kid}); create one with this control plane's state dir`);
    }
    return new TokenError('bad_signature', 'the token signature does not verify (tampered, or signed with another key)');
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'iss' || err.claim === 'aud') {
      return new TokenError('wrong_issuer', `the token's "${err.claim}" claim is not trellis's (${err.message})`);
    }
    return new TokenError('invalid_claims', `the token's "${err.claim}" claim is invalid: ${err.message}`);
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new TokenError('bad_signature', `token algorithm not accepted (${err.message})`);
  if (err instanceof joseErrors.JWTInvalid || err instanceof joseErrors.JWSInvalid) {
    return new TokenError('malformed', `the token is malformed: ${(err as Error).message}`);
  }
  return new TokenError('malformed', `the token cannot be verified: ${(err as Error).message}`);
}

/** Reads a token's claims WITHOUT verifying it: only for a client deciding which identity to ask for. */
export function peekTokenClaims(token: string): { namespace?: string; serviceAccount?: string; trustDomain?: string; expiresAt?: Date } {
  try {
    const part = token.split('.')[1];
    const p = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
    return {
      namespace: typeof p.ns === 'string' ? p.ns : undefined,
      serviceAccount: typeof p.sa === 'string' ? p.sa : undefined,
      trustDomain: typeof p.td === 'string' ? p.td : undefined,
      expiresAt: typeof p.exp === 'number' ? new Date(p.exp * 1000) : undefined,
    };
  } catch {
    return {};
  }
}
