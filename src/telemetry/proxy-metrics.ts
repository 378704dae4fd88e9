// The proxy's metric families with the names and labels SPEC.md fixes.
import { Registry, labelKey, type Counter, type Gauge, type Histogram } from './registry.js';
import { registerProcessMetrics } from './process-metrics.js';
import { requestChannel, type FinishedExchange } from './request-events.js';
import { performance } from 'node:perf_hooks';

export interface RequestLabels {
  reporter: 'source' | 'destination';
  source_workload: string;
  source_namespace: string;
  source_principal: string;
  destination_workload: string;
  destination_namespace: string;
  destination_service: string;
  destination_principal: string;
  route: string;
  response_code: string;
  grpc_status: string;
  error_code: string;
  connection_security_policy: 'mutual_tls' | 'none';
}

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly requests: Counter;
  readonly duration: Histogram;
  readonly requestBytes: Histogram;
  readonly responseBytes: Histogram;
  readonly tcpOpened: Counter;
  readonly tcpClosed: Counter;
  readonly tcpSent: Counter;
  readonly tcpReceived: Counter;
  readonly certExpiry: Gauge;
  readonly xdsConnected: Gauge;
  readonly tlsFailures: Counter;
  /** Inbound authorization outcomes: {action: ALLOW|DENY|NONE|CONFIG, decision: allow|deny}. */
  readonly authzDecisions: Counter;
  /** Requests refused by a local rate limit: {limit: total|per_caller}. */
  readonly rateLimited: Counter;
  /** Time a request spent in this proxy (total minus the upstream's time), for `trellis cost`. */
  readonly overhead: Histogram;
  /** mTLS handshakes completed, by direction (inbound: this proxy accepted; upstream: it connected). */
  readonly tlsHandshakes: Counter;

  constructor() {
    const r = this.registry;
    this.requests = r.counter('trellis_requests_total', 'Requests handled by the proxy');
    this.duration = r.histogram('trellis_request_duration_seconds', 'Request duration');
    const sizes = [100, 1000, 10_000, 100_000, 1_000_000, 10_000_000];
    this.requestBytes = r.histogram('trellis_request_bytes', 'Request body size', sizes);
    this.responseBytes = r.histogram('trellis_response_bytes', 'Response body size', sizes);
    this.tcpOpened = r.counter('trellis_tcp_connections_opened_total', 'TCP connections opened');
    this.tcpClosed = r.counter('trellis_tcp_connections_closed_total', 'TCP connections closed');
    this.tcpSent = r.counter('trellis_tcp_sent_bytes_total', 'Bytes sent to the peer of a TCP connection');
    this.tcpReceived = r.counter('trellis_tcp_received_bytes_total', 'Bytes received from the peer of a TCP connection');
    this.certExpiry = r.gauge('trellis_certificate_expiry_seconds', 'Seconds until the certificate expires');
    this.xdsConnected = r.gauge('trellis_xds_connected', '1 while the proxy holds an ADS stream to the control plane');
    this.tlsFailures = r.counter('trellis_tls_handshake_failures_total', 'Inbound or upstream mTLS peers refused, by reason');
    this.authzDecisions = r.counter('trellis_authz_decisions_total', 'Inbound authorization decisions, by deciding action and outcome');
    this.rateLimited = r.counter('trellis_rate_limited_total', 'Inbound requests refused by a local rate limit, by limit kind');
    this.overhead = r.histogram('trellis_proxy_overhead_seconds', 'Time a request spent in the proxy itself (total duration minus upstream time)', [
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    ]);
    this.tlsHandshakes = r.counter('trellis_tls_handshakes_total', 'mTLS handshakes completed, by direction');
    this.xdsConnected.set('', 0);
    registerProcessMetrics(r);
  }

  /** Labels of trellis_proxy_info besides pid (mode, version). */
  setInfo(labels: Record<string, string>): void {
    const g = this.registry.find('trellis_proxy_info') as Gauge | undefined;
    if (!g) return;
    g.values = Object.create(null);
    g.set(labelKey({ pid: String(process.pid), ...labels }), 1);
  }

  private keys = new Map<string, string>();

  /** The labels of the request being recorded (requestKey runs just before `finished`, synchronously). */
  private lastLabels: RequestLabels | undefined;

  /** Label keys are cached by a cheap composite so the hot path does no rendering. */
  requestKey(l: RequestLabels): string {
    this.lastLabels = l;
    const c = `${l.reporter}|${l.source_workload}|${l.source_namespace}|${l.source_principal}|${l.destination_workload}|${l.destination_namespace}|${l.destination_service}|${l.destination_principal}|${l.route}|${l.response_code}|${l.grpc_status}|${l.error_code}|${l.connection_security_policy}`;
    let k = this.keys.get(c);
    if (k === undefined) {
      k = labelKey(l as unknown as Record<string, string>);
      if (this.keys.size < 50_000) this.keys.set(c, k);
    }
    return k;
  }

  /**
   * A request the listener refused before it became an exchange (hostile or malformed head, headers too large):
   * counted in trellis_requests_total like any answered request, with the labels known at that point ('unknown' for the rest).
   */
  refusedRequest(labels: Partial<Omit<RequestLabels, 'response_code' | 'error_code' | 'grpc_status'>> & Pick<RequestLabels, 'reporter'>, errorCode: string, status: number): void {
    const u = (v: string | undefined) => v || 'unknown';
    // The same label order as requestKey, so that a refused request and an answered one with equal labels are one series.
    const l: RequestLabels = {
      reporter: labels.reporter,
      source_workload: u(labels.source_workload),
      source_namespace: u(labels.source_namespace),
      source_principal: u(labels.source_principal),
      destination_workload: u(labels.destination_workload),
      destination_namespace: u(labels.destination_namespace),
      destination_service: u(labels.destination_service),
      destination_principal: u(labels.destination_principal),
      route: u(labels.route),
      response_code: String(status),
      grpc_status: '',
      error_code: errorCode,
      connection_security_policy: labels.connection_security_policy ?? 'none',
    };
    this.requests.inc(labelKey(l as unknown as Record<string, string>));
  }

  /** One finished request: count, duration and (declared) body sizes. */
  observeRequest(key: string, seconds: number, requestBytes: number, responseBytes: number): void {
    this.requests.inc(key);
    this.duration.observe(key, seconds);
    this.requestBytes.observe(key, requestBytes);
    this.responseBytes.observe(key, responseBytes);
  }

  /**
   * A request finished (after observeRequest): records the time it spent in the proxy (total minus upstream time, for
   * forwarded requests) and publishes it for tap, access logs and tracing when any of them listens.
   */
  finished(direction: 'outbound' | 'inbound', ex: FinishedExchange): void {
    const end = performance.now();
    const labels = this.lastLabels;
    this.lastLabels = undefined;
    if (ex.dispatchMs !== undefined && labels) {
      // Upstream time runs from dispatch to the end of the response, so what remains is routing, policy and queuing here.
      this.overhead.observe(direction === 'outbound' ? 'direction="outbound"' : 'direction="inbound"', (ex.dispatchMs - ex.startMs) / 1000);
    }
    if (requestChannel.hasSubscribers && labels) requestChannel.publish({ owner: this, direction, labels, ex, endMs: end, endEpochMs: Date.now() });
  }

  render(): string {
    return this.registry.render();
  }
}
