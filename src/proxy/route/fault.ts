// Decodes Envoy's HTTPFault (per-route `typed_per_filter_config['envoy.filters.http.fault']`) into a FaultPolicy.
import { FAULT_TYPE, unpackAny, type AnyMessage } from '../../xds/protos.js';
import { asMsg, asString, durationMs, fractionalPercent, wrappedNumber, type Msg } from './proto.js';
import type { FaultPolicy } from './types.js';

export const FAULT_FILTER_NAME = 'envoy.filters.http.fault';

/** Unwraps a typed_per_filter_config entry: an Any (packed), a FilterConfig wrapper, or an already-decoded message. */
export function decodeFilterConfig(entry: unknown, typeUrl: string): Msg | string | undefined {
  let m = asMsg(entry);
  if (!m) return undefined;
  if (m.type_url === 'type.googleapis.com/envoy.config.route.v3.FilterConfig' || (m.config && !m.type_url)) {
    // FilterConfig{config: Any, is_optional, disabled}
    let fc: Msg = m;
    if (m.type_url) {
      try {
        fc = unpackAny(m as unknown as AnyMessage);
      } catch (e) {
        return `cannot decode FilterConfig: ${(e as Error).message}`;
      }
    }
    if (fc.disabled === true) return undefined;
    m = asMsg(fc.config);
    if (!m) return undefined;
  }
  const url = asString(m.type_url);
  if (url === undefined) return m; // already decoded
  if (url !== typeUrl) return `expected ${typeUrl}, got ${url}`;
  if (typeof m.value === 'object' && m.value !== null && !(m.value instanceof Uint8Array)) return asMsg(m.value);
  try {
    return unpackAny(m as unknown as AnyMessage);
  } catch (e) {
    return `cannot decode ${url}: ${(e as Error).message}`;
  }
}

/** HTTPFault -> FaultPolicy; unsupported parts are reported, never thrown. */
export function decodeFault(entry: unknown, warnings: string[], where: string): FaultPolicy | undefined {
  const f = decodeFilterConfig(entry, FAULT_TYPE);
  if (f === undefined) return undefined;
  if (typeof f === 'string') {
    warnings.push(`${where}: fault filter config ignored: ${f}`);
    return undefined;
  }
  const out: FaultPolicy = {};
  const delay = asMsg(f.delay);
  if (delay) {
    if (delay.header_delay !== undefined) warnings.push(`${where}: fault delay from a request header is not supported`);
    const ms = durationMs(delay.fixed_delay);
    if (ms !== undefined) out.delay = { ms, probability: fractionalPercent(delay.percentage) };
  }
  const abort = asMsg(f.abort);
  if (abort) {
    const probability = fractionalPercent(abort.percentage);
    const status = Number(abort.http_status);
    if (abort.http_status !== undefined && (!Number.isInteger(status) || status < 200 || status > 599)) {
      warnings.push(`${where}: fault abort status ${String(abort.http_status)} is not in 200..599; abort ignored`);
    } else if (abort.http_status !== undefined) out.abort = { httpStatus: status, probability };
    else if (abort.grpc_status !== undefined) out.abort = { grpcStatus: Number(abort.grpc_status), probability };
    else if (abort.header_abort !== undefined) warnings.push(`${where}: fault abort from a request header is not supported`);
  }
  const max = wrappedNumber(f.max_active_faults);
  if (max !== undefined && f.max_active_faults !== undefined) out.maxActiveFaults = max;
  for (const k of ['headers', 'downstream_nodes', 'upstream_cluster', 'response_rate_limit'] as const) {
    const v = f[k];
    if (v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0)) {
      warnings.push(`${where}: fault field '${k}' is not supported and was ignored`);
    }
  }
  if (!out.delay && !out.abort) return undefined;
  return Object.freeze(out);
}

