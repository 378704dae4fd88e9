// Prometheus metrics of the control plane, on a registry of its own so several control planes can share a process.
import client from 'prom-client';

export interface ControlMetrics {
  registry: client.Registry;
  connectedProxies: client.Gauge;
  xdsConnected: client.Gauge;
  pushes: client.Counter<'type'>;
  pushLatency: client.Histogram;
  nacks: client.Counter<'type'>;
  csrsSigned: client.Counter;
  csrsRefused: client.Counter;
  configRejected: client.Counter;
  certificateExpiry: client.Gauge<'kind'>;
}

export function createControlMetrics(): ControlMetrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  dropTotalGauges(registry);
  const m = {
    registry,
    connectedProxies: new client.Gauge({ name: 'trellis_control_connected_proxies', help: 'xDS streams currently open', registers: [registry] }),
    xdsConnected: new client.Gauge({ name: 'trellis_xds_connected', help: 'xDS clients connected to this control plane', registers: [registry] }),
    pushes: new client.Counter({ name: 'trellis_control_xds_pushes_total', help: 'xDS responses sent', labelNames: ['type'], registers: [registry] }),
    pushLatency: new client.Histogram({
      name: 'trellis_control_push_latency_seconds',
      help: 'Time from a config or registry change to the response leaving for a proxy',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    nacks: new client.Counter({ name: 'trellis_control_xds_nacks_total', help: 'xDS responses rejected by a proxy', labelNames: ['type'], registers: [registry] }),
    csrsSigned: new client.Counter({ name: 'trellis_control_csr_signed_total', help: 'Certificate signing requests signed', registers: [registry] }),
    csrsRefused: new client.Counter({ name: 'trellis_control_csr_refused_total', help: 'Certificate signing requests refused', registers: [registry] }),
    configRejected: new client.Counter({ name: 'trellis_control_config_rejected_total', help: 'Config changes refused by validation', registers: [registry] }),
    certificateExpiry: new client.Gauge({
      name: 'trellis_certificate_expiry_seconds',
      help: 'Seconds until the CA certificate expires',
      labelNames: ['kind'],
      registers: [registry],
    }),
  };
  return m as ControlMetrics;
}

/**
 * prom-client also exports three gauges with a `_total` suffix, which Prometheus reserves for counters (promtool check
 * metrics refuses them); their values are the sums of nodejs_active_{handles,requests,resources}{type}, which stay.
 */
function dropTotalGauges(registry: client.Registry): void {
  for (const kind of ['handles', 'requests', 'resources']) registry.removeSingleMetric(`nodejs_active_${kind}_total`);
}
