// SPIFFE ID parsing and formatting per the SPIFFE-ID spec, with a reason for every rejection.

export type SpiffeIdProblem =
  | 'too_long'
  | 'wrong_scheme'
  | 'empty_trust_domain'
  | 'invalid_trust_domain'
  | 'no_path'
  | 'empty_segment'
  | 'dot_segment'
  | 'percent_encoding'
  | 'bad_character'
  | 'trailing_slash';

export class SpiffeIdError extends Error {
  constructor(
    readonly reason: SpiffeIdProblem,
    message: string,
  ) {
    super(message);
    this.name = 'SpiffeIdError';
  }
}

export interface SpiffeId {
  trustDomain: string;
  /** The path including its leading '/'. */
  path: string;
  namespace?: string;
  serviceAccount?: string;
}

const SCHEME = 'spiffe://';
const MAX_BYTES = 2048;
const TD_CHAR = /^[a-z0-9._-]$/;
const SEGMENT_CHAR = /^[A-Za-z0-9._-]$/;

/** Checks a trust domain name alone; returns a problem description or undefined. */
export function trustDomainProblem(td: string): string | undefined {
  if (td.length === 0) return 'the trust domain is empty';
  for (const ch of td) {
    if (!TD_CHAR.test(ch)) return `the trust domain "${td}" has the character "${ch}" (allowed: lowercase letters, digits, ".", "-", "_")`;
  }
  return undefined;
}

export function parseSpiffeId(uri: string): SpiffeId {
  if (typeof uri !== 'string') throw new SpiffeIdError('wrong_scheme', 'a SPIFFE ID must be a string');
  if (Buffer.byteLength(uri, 'utf8') > MAX_BYTES) {
    throw new SpiffeIdError('too_long', `the SPIFFE ID is longer than ${MAX_BYTES} bytes`);
  }
  if (!uri.startsWith(SCHEME)) {
    throw new SpiffeIdError('wrong_scheme', `"${short(uri)}" does not start with "spiffe://"`);
  }
  const rest = uri.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const td = slash < 0 ? rest : rest.slice(0, slash);
  if (td.length === 0) throw new SpiffeIdError('empty_trust_domain', `"${short(uri)}" has an empty trust domain`);
  const tdProblem = trustDomainProblem(td);
  if (tdProblem) throw new SpiffeIdError('invalid_trust_domain', `"${short(uri)}": ${tdProblem}`);
  if (slash < 0) {
    throw new SpiffeIdError('no_path', `"${short(uri)}" has no path (expected e.g. /ns/<namespace>/sa/<account>)`);
  }
  const path = rest.slice(slash);
  const segments = path.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i];
    if (seg.length === 0) {
      if (i === segments.length - 1) throw new SpiffeIdError('trailing_slash', `"${short(uri)}" ends with "/"`);
      throw new SpiffeIdError('empty_segment', `"${short(uri)}" has an empty path segment ("//")`);
    }
    if (seg === '.' || seg === '..') {
      throw new SpiffeIdError('dot_segment', `"${short(uri)}" has a "${seg}" path segment`);
    }
    for (const ch of seg) {
      if (SEGMENT_CHAR.test(ch)) continue;
      if (ch === '%') throw new SpiffeIdError('percent_encoding', `"${short(uri)}" uses percent-encoding, which SPIFFE IDs forbid`);
      throw new SpiffeIdError(
        'bad_character',
        `"${short(uri)}" has the character ${JSON.stringify(ch)} in its path (allowed: letters, digits, ".", "-", "_")`,
      );
    }
  }
  const id: SpiffeId = { trustDomain: td, path };
  if (segments.length === 4 && segments[0] === 'ns' && segments[2] === 'sa') {
    id.namespace = segments[1];
    id.serviceAccount = segments[3];
  }
  return id;
}

/** spiffe://<td>/ns/<ns>/sa/<sa>; throws SpiffeIdError when the parts do not make a valid ID. */
export function formatSpiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  const id = `${SCHEME}${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
  const parsed = parseSpiffeId(id);
  if (parsed.namespace !== namespace || parsed.serviceAccount !== serviceAccount) {
    throw new SpiffeIdError('bad_character', `namespace "${namespace}" and service account "${serviceAccount}" must be single path segments`);
  }
  return id;
}

function short(s: string): string {
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}
