// Re-exports the Prometheus text parser, which lives with the rest of telemetry (shared by the demo and the control plane).
export * from '../telemetry/prom-text.js';
