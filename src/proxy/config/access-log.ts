// Reads the Mesh access log setting from listeners (HCM access_log, Envoy file logger) and decides the proxy's log.
import { TYPED_STRUCT_TYPE } from '../../xds/protos.js';
import { structToObject, trellisMetadata } from './struct.js';

type Obj = Record<string, any>;
type Unpack = (any: { type_url: string; value: Uint8Array }) => Obj;

export const FILE_ACCESS_LOG_TYPE = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';

export type AccessLogFormat = 'json' | 'text';

/** What the config says: a log (target "-" = stdout), explicitly off, or nothing (no Mesh accessLog block). */
export type MeshAccessLog = { kind: 'on'; target: string; format: AccessLogFormat } | { kind: 'off' } | { kind: 'unset' };

function typed(tc: Obj | undefined, unpack: Unpack): Obj | undefined {
  if (!tc) return undefined;
  if (typeof tc.type_url === 'string' && tc.value instanceof Uint8Array) return unpack(tc as { type_url: string; value: Uint8Array });
  return tc;
}

/** A FileAccessLog config (plain object) -> target and format; Envoy's default format is text. */
function fileLog(cfg: Obj): { target: string; format: AccessLogFormat } {
  const p = typeof cfg.path === 'string' ? cfg.path.trim() : '';
  const target = p === '' || p === '/dev/stdout' || p === '-' ? '-' : p;
  const lf = cfg.log_format ?? {};
  return { target, format: lf.json_format !== undefined || lf.typed_json_format !== undefined || cfg.json_format !== undefined ? 'json' : 'text' };
}

/**
 * The first file access log among the listeners' HCMs (the setting is mesh-wide), or `off` when a listener carries
 * the explicit-off mark (trellis metadata accessLog: "off"). Loggers this proxy cannot read go to `problems`.
 */
export function accessLogFromListeners(listeners: Iterable<Obj>, unpack: Unpack, hcmType: string, problems: string[] = []): MeshAccessLog {
  let off = false;
  for (const l of listeners) {
    if (trellisMetadata(l).accessLog === 'off') off = true;
    for (const fc of l.filter_chains ?? []) {
      for (const f of fc.filters ?? []) {
        if (f.typed_config?.type_url !== hcmType) continue;
        let hcm: Obj | undefined;
        try {
          hcm = typed(f.typed_config, unpack);
        } catch {
          continue; // the listener parser reports an HCM it cannot decode
        }
        for (const [i, al] of ((hcm?.access_log ?? []) as Obj[]).entries()) {
          const where = `listener ${l.name} access_log[${i}] (${al.name ?? 'unnamed'})`;
          try {
            const tc = typed(al.typed_config, unpack);
            if (al.typed_config?.type_url === TYPED_STRUCT_TYPE && tc?.type_url === FILE_ACCESS_LOG_TYPE) {
              return { kind: 'on', ...fileLog(structToObject(tc.value)) };
            }
            problems.push(`${where}: ${al.typed_config?.type_url ?? 'no typed_config'} is not supported (only a file logger in a TypedStruct); ignored`);
          } catch (err) {
            problems.push(`${where}: cannot decode: ${(err as Error).message}; ignored`);
          }
        }
      }
    }
  }
  return off ? { kind: 'off' } : { kind: 'unset' };
}

/**
 * The log the proxy writes: its --access-log flag wins (target; the Mesh's format when it sets one, else JSON); else
 * the Mesh's setting; else, when the Mesh has no accessLog block, the launcher's default (`trellis up`: stdout, JSON).
 */
export function effectiveAccessLog(
  mesh: MeshAccessLog,
  flag: string | undefined,
  fallback: string | undefined,
): { target: string; format: AccessLogFormat } | undefined {
  if (flag) return { target: flag, format: mesh.kind === 'on' ? mesh.format : 'json' };
  if (mesh.kind === 'on') return { target: mesh.target, format: mesh.format };
  if (mesh.kind === 'unset' && fallback) return { target: fallback, format: 'json' };
  return undefined;
}
