// Mesh-wide HTTP connection manager settings shared by the inbound and outbound HCMs: path normalization and the access log.
import { TYPED_STRUCT_TYPE } from '../../xds/protos.js';
import type { MeshSettings, PathNormalization } from '../model.js';
import { pack as packAny } from './pack.js';
import { toStruct } from './util.js';

export const FILE_ACCESS_LOG_TYPE = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
export const FILE_ACCESS_LOG_NAME = 'envoy.access_loggers.file';

/** Trellis's default: Istio's BASE plus merged slashes, so `//admin` cannot slip past a rule written for `/admin`. */
export const DEFAULT_PATH_NORMALIZATION: PathNormalization = 'MERGE_SLASHES';

/**
 * Istio meshConfig pathNormalization as Envoy HCM fields, always written out (Envoy's own defaults differ). %2F / %5C
 * are refused (REJECT_REQUEST, 400) under every mode except DECODE_AND_MERGE_SLASHES, which decodes them.
 */
export function pathNormalizationFields(mode: PathNormalization | undefined): Record<string, unknown> {
  const m = mode ?? DEFAULT_PATH_NORMALIZATION;
  return {
    normalize_path: { value: m !== 'NONE' },
    merge_slashes: m === 'MERGE_SLASHES' || m === 'DECODE_AND_MERGE_SLASHES',
    path_with_escaped_slashes_action: m === 'DECODE_AND_MERGE_SLASHES' ? 'UNESCAPE_AND_FORWARD' : 'REJECT_REQUEST',
  };
}

/**
 * Envoy command operators approximating the Trellis access log record, so an Envoy given this config logs similar
 * lines. Trellis proxies read only the format kind (json or text) and write their own, complete record.
 */
function jsonFormat(direction: 'inbound' | 'outbound'): Record<string, string> {
  return {
    start_time: '%START_TIME%',
    direction,
    method: '%REQ(:METHOD)%',
    authority: '%REQ(:AUTHORITY)%',
    path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
    protocol: '%PROTOCOL%',
    status: '%RESPONSE_CODE%',
    error_code: '%RESP(X-TRELLIS-ERROR)%',
    route: '%ROUTE_NAME%',
    cluster: '%UPSTREAM_CLUSTER%',
    endpoint: '%UPSTREAM_HOST%',
    request_id: '%REQ(X-REQUEST-ID)%',
    traceparent: '%REQ(TRACEPARENT)%',
    bytes_received: '%BYTES_RECEIVED%',
    bytes_sent: '%BYTES_SENT%',
    duration_ms: '%DURATION%',
  };
}

function textFormat(direction: 'inbound' | 'outbound'): string {
  return (
    `%START_TIME% ${direction} "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESP(X-TRELLIS-ERROR)%` +
    ' authority=%REQ(:AUTHORITY)% route=%ROUTE_NAME% cluster=%UPSTREAM_CLUSTER% endpoint=%UPSTREAM_HOST%' +
    ' request_id=%REQ(X-REQUEST-ID)% bytes_received=%BYTES_RECEIVED% bytes_sent=%BYTES_SENT% duration_ms=%DURATION%\n'
  );
}

/**
 * HCM access_log for Mesh spec.accessLog when enabled: one Envoy file access logger (FileAccessLog, carried in a
 * TypedStruct); path /dev/stdout unless the Mesh names a file. Empty when the Mesh has no block or turns it off.
 */
export function hcmAccessLog(mesh: MeshSettings | undefined, direction: 'inbound' | 'outbound'): { access_log?: object[] } {
  const a = mesh?.accessLog;
  if (!a?.enabled) return {};
  const log_format = a.format === 'text' ? { text_format_source: { inline_string: textFormat(direction) } } : { json_format: jsonFormat(direction) };
  const value = toStruct({ path: a.path ?? '/dev/stdout', log_format });
  return { access_log: [{ name: FILE_ACCESS_LOG_NAME, typed_config: packAny(TYPED_STRUCT_TYPE, { type_url: FILE_ACCESS_LOG_TYPE, value }) }] };
}

/** Listener metadata marking an explicit `accessLog.enabled: false` (it also turns off `trellis up`'s default log). */
export function accessLogMetadata(mesh: MeshSettings | undefined): { accessLog?: string } {
  return mesh?.accessLog && !mesh.accessLog.enabled ? { accessLog: 'off' } : {};
}
