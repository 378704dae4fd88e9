// Request and decision shapes for the proxy's layer-7 authorization.

/** What authorization sees of a request. Built once by the proxy's inbound path, after JWT verification. */
export interface AuthzRequest {
  /** Peer SPIFFE ID from the verified client certificate; undefined for plaintext. */
  principal?: string;
  /** The client's address as Envoy's `remote_ip` (X-Forwarded-For when trusted, else the peer); `remoteIpBlocks`, `remote.ip`. */
  sourceIp: string;
  /** The socket peer's address (`ipBlocks`, `source.ip`). */
  directRemoteIp: string;
  destinationPort: number;
  destinationIp?: string;
  sni?: string;
  method: string;
  /** Normalized path without the query: the same string routing uses. */
  path: string;
  /** Host / :authority as received (a port may follow). */
  host: string;
  /** Lowercase header names, as Node gives them. */
  headers: Record<string, string | string[] | undefined>;
  /** The verified token, when one was presented and accepted. */
  jwt?: { payload: Record<string, unknown>; principal: string /* iss/sub */ };
}

export interface AuthzDecision {
  allowed: boolean;
  /**
   * Which kind of policy decided: DENY (a DENY rule matched), ALLOW (ALLOW policies exist: allowed if one matched,
   * denied if none did), NONE (no enforcing policy applies, or none decided).
   */
  action: 'ALLOW' | 'DENY' | 'NONE';
  /** The deciding rule's key, `ns[<ns>]-policy[<name>]-rule[<i>]`; absent when no rule matched. */
  decidedBy?: string;
  /** One line for access logs and `x-trellis-error` bodies. */
  reason: string;
  /** AUDIT rules that matched (and `dry-run:`-prefixed shadow rules that matched). */
  auditMatches?: string[];
}
