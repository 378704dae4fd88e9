// Reads the tracing settings the control plane put in listeners' HCM `tracing` block (OpenTelemetry provider, OTLP/HTTP).
import type { TracingConfig } from './tracing.js';

type Obj = Record<string, any>;
type Unpack = (any: { type_url: string; value: Uint8Array }) => Obj;

function typed(tc: Obj | undefined, unpack: Unpack): Obj | undefined {
  if (!tc) return undefined;
  if (typeof tc.type_url === 'string' && tc.value !== undefined) return unpack(tc as { type_url: string; value: Uint8Array });
  return tc;
}

/** The first HCM tracing block with an OTLP/HTTP endpoint among the proxy's listeners (it is mesh-wide). */
export function tracingFromListeners(listeners: Iterable<Obj>, unpack: Unpack, hcmType: string): TracingConfig | undefined {
  for (const l of listeners) {
    for (const fc of l.filter_chains ?? []) {
      for (const f of fc.filters ?? []) {
        if (f.typed_config?.type_url !== hcmType) continue;
        const hcm = typed(f.typed_config, unpack);
        const t = hcm?.tracing;
        if (!t) continue;
        const provider = typed(t.provider?.typed_config, unpack);
        const endpoint = provider?.http_service?.http_uri?.uri;
        if (typeof endpoint !== 'string' || !endpoint) continue;
        const raw = Number(t.random_sampling?.value ?? 100);
        return { endpoint, samplingPercent: Number.isFinite(raw) ? Math.min(100, Math.max(0, raw)) : 100 };
      }
    }
  }
  return undefined;
}
