// Per-destination retry budget (Linkerd-style): retries stay within ratio x requests + a floor per second, over a sliding window.
import { parseDurationSeconds } from '../../api/duration.js';
import { trellisMetadata } from '../config/struct.js';

export interface RetryBudgetOptions {
  /** Retries allowed as a share of requests in the window (0.2 = 20%). */
  ratio?: number;
  /** Retries always allowed per second, whatever the request rate. */
  minPerSecond?: number;
  /** Window length in seconds (whole one-second buckets). */
  windowSeconds?: number;
}

export const DEFAULT_RETRY_BUDGET: Required<RetryBudgetOptions> = Object.freeze({ ratio: 0.2, minPerSecond: 10, windowSeconds: 10 });

/**
 * Counts first tries and retries in one-second buckets; O(1) per call (a bucket is cleared when the
 * clock moves past it). A retry is allowed while, counting it, retries in the window stay at or below
 * ratio x requests + minPerSecond x windowSeconds. Retries never count as requests, so retries cannot
 * feed the budget that allows them.
 */
export class RetryBudget {
  readonly ratio: number;
  readonly minPerSecond: number;
  readonly windowSeconds: number;
  private readonly requests: Float64Array;
  private readonly retries: Float64Array;
  private head = 0;
  private headSecond = -Infinity;
  private requestSum = 0;
  private retrySum = 0;
  /** Retries refused because the budget was spent (a metric). */
  exhausted = 0;
  /** Retries allowed so far (a metric). */
  allowed = 0;

  constructor(opts: RetryBudgetOptions = {}) {
    this.ratio = finiteOr(opts.ratio, DEFAULT_RETRY_BUDGET.ratio, 0);
    this.minPerSecond = finiteOr(opts.minPerSecond, DEFAULT_RETRY_BUDGET.minPerSecond, 0);
    this.windowSeconds = Math.max(1, Math.floor(finiteOr(opts.windowSeconds, DEFAULT_RETRY_BUDGET.windowSeconds, 1)));
    this.requests = new Float64Array(this.windowSeconds);
    this.retries = new Float64Array(this.windowSeconds);
  }

  /** Counts a first try (call once per request, never for retries). `nowMs` from a monotonic clock. */
  onRequest(nowMs: number): void {
    this.advance(nowMs);
    this.requests[this.head]++;
    this.requestSum++;
  }

  /** True (and the retry is counted) when the budget allows one more retry now. */
  tryRetry(nowMs: number): boolean {
    this.advance(nowMs);
    if (this.retrySum + 1 > this.ratio * this.requestSum + this.minPerSecond * this.windowSeconds) {
      this.exhausted++;
      return false;
    }
    this.retries[this.head]++;
    this.retrySum++;
    this.allowed++;
    return true;
  }

  /** Requests and retries currently in the window (for describe/admin). */
  window(nowMs: number): { requests: number; retries: number; limit: number } {
    this.advance(nowMs);
    return { requests: this.requestSum, retries: this.retrySum, limit: this.ratio * this.requestSum + this.minPerSecond * this.windowSeconds };
  }

  private advance(nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    let steps = second - this.headSecond;
    // A clock that goes backwards keeps counting into the current bucket.
    if (!(steps > 0)) return;
    this.headSecond = second;
    const n = this.windowSeconds;
    if (steps >= n) {
      this.requests.fill(0);
      this.retries.fill(0);
      this.requestSum = 0;
      this.retrySum = 0;
      return;
    }
    while (steps-- > 0) {
      this.head = this.head + 1 === n ? 0 : this.head + 1;
      this.requestSum -= this.requests[this.head];
      this.retrySum -= this.retries[this.head];
      this.requests[this.head] = 0;
      this.retries[this.head] = 0;
    }
  }
}

function finiteOr(v: number | undefined, dflt: number, min: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= min ? v : dflt;
}

type Obj = Record<string, unknown>;

/**
 * Budget options for a cluster from its `metadata.filter_metadata.trellis.retryBudget`
 * ({ retryRatio: percent, minRetriesPerSecond, ttl: "10s" }, the Mesh `defaults.retryBudget` shape), else defaults.
 */
export function retryBudgetOptionsFromCluster(cluster: Obj | undefined): Required<RetryBudgetOptions> {
  const rb = trellisMetadata(cluster).retryBudget as Obj | undefined;
  if (!rb || typeof rb !== 'object') return DEFAULT_RETRY_BUDGET;
  const ratioPct = num(rb.retryRatio);
  const min = num(rb.minRetriesPerSecond);
  const ttl = typeof rb.ttl === 'string' ? (parseDurationSeconds(rb.ttl) ?? num(rb.ttl)) : num(rb.ttl);
  return {
    ratio: ratioPct !== undefined && ratioPct >= 0 ? ratioPct / 100 : DEFAULT_RETRY_BUDGET.ratio,
    minPerSecond: min !== undefined && min >= 0 ? min : DEFAULT_RETRY_BUDGET.minPerSecond,
    // The window counts whole seconds: a sub-second ttl is the shortest window (1 s), not the 10 s default.
    windowSeconds: ttl !== undefined && ttl > 0 ? Math.max(1, Math.floor(ttl)) : DEFAULT_RETRY_BUDGET.windowSeconds,
  };
}

function num(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

