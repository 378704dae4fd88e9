// The route layer's public types: what a request looks like to the router and the decisions it returns.
import type { HeaderOps } from './headers.js';

/** Request headers as Node gives them: lowercase names, repeated headers as arrays. */
export type IncomingHeaders = Record<string, string | string[] | undefined>;

export interface RouteRequest {
  /** Host header or :authority, possibly with :port. */
  authority: string;
  /** Normalized path without the query. */
  path: string;
  /** Raw query string without the leading '?' ('' when none). */
  query: string;
  method: string;
  headers: IncomingHeaders;
}

export interface RetryPolicy {
  retryOn: Set<string>;
  numRetries: number;
  /** 0 = the route timeout applies to each try. */
  perTryTimeoutMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  retriableStatusCodes: number[];
}

export interface FaultPolicy {
  delay?: { ms: number; probability: number };
  /** Exactly one of httpStatus / grpcStatus is set. */
  abort?: { httpStatus?: number; grpcStatus?: number; probability: number };
  maxActiveFaults?: number;
}

/** One consistent-hash input, in Envoy's RouteAction.hash_policy order; `terminal` stops at the first that yields. */
export type HashPolicy =
  | { kind: 'header'; name: string; terminal: boolean; rewrite?: { re: RegExp; substitution: string } }
  /** ttlMs/path: Envoy generates the cookie when absent; kept here for a layer that does (see warnings). */
  | { kind: 'cookie'; name: string; terminal: boolean; ttlMs?: number; path?: string }
  | { kind: 'source_ip'; terminal: boolean }
  | { kind: 'query_parameter'; name: string; terminal: boolean };

export interface PathRewrite {
  /** Replace the matched prefix `from` (its length; matching may have been case-insensitive) with `to`. */
  prefix?: { from: string; to: string };
  /** Replace every match of `re` (global) in the path. */
  regex?: { re: RegExp; substitution: string };
  /** New Host / :authority. */
  host?: string;
}

export interface ForwardDecision {
  kind: 'forward';
  routeName: string;
  virtualHost: string;
  cluster: string;
  /** 0 = no timeout. */
  timeoutMs: number;
  idleTimeoutMs?: number;
  retry?: RetryPolicy;
  rewrite?: PathRewrite;
  requestHeaders: HeaderOps;
  responseHeaders: HeaderOps;
  mirrors: { cluster: string; fraction: number }[];
  hashPolicies: HashPolicy[];
  fault?: FaultPolicy;
  /**
   * typed_per_filter_config of the route over its virtual host's (weighted cluster's over both), left
   * packed, for filters other than the router to decode once (e.g. per-route RBAC). Shared and frozen.
   */
  filterConfig: Readonly<Record<string, unknown>>;
}

export interface RedirectDecision {
  kind: 'redirect';
  routeName: string;
  status: number;
  location: string;
  responseHeaders: HeaderOps;
}

export interface DirectDecision {
  kind: 'direct';
  routeName: string;
  status: number;
  body?: string;
  responseHeaders: HeaderOps;
}

export interface NoRouteDecision {
  kind: 'no_route';
  reason: string;
}

/**
 * The router's answer. Forward and direct decisions are shared, frozen objects (one per route, or per
 * weighted cluster): read them, never mutate them.
 */
export type RouteDecision = ForwardDecision | RedirectDecision | DirectDecision | NoRouteDecision;
