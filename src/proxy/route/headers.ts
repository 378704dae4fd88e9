// Header mutations (Envoy *_headers_to_add / *_headers_to_remove) compiled flat, and path rewriting.
import { asArray, asMsg, asString, wrappedBool, type Msg } from './proto.js';
import type { PathRewrite } from './types.js';

/**
 * Flattened header mutations, applied in this order: remove, set, add, setIfAbsent, setIfPresent.
 * Names are lowercase. Conflicts between configuration levels are resolved at compile time.
 */
export interface HeaderOps {
  /** Overwrite (OVERWRITE_IF_EXISTS_OR_ADD). */
  set: [string, string][];
  /** Append a value (APPEND_IF_EXISTS_OR_ADD, the default). */
  add: [string, string][];
  remove: string[];
  /** Only when the header is absent (ADD_IF_ABSENT). */
  setIfAbsent: [string, string][];
  /** Overwrite only when the header is present (OVERWRITE_IF_EXISTS). */
  setIfPresent: [string, string][];
}

export const EMPTY_HEADER_OPS: HeaderOps = Object.freeze({
  set: Object.freeze([]) as unknown as [string, string][],
  add: Object.freeze([]) as unknown as [string, string][],
  remove: Object.freeze([]) as unknown as string[],
  setIfAbsent: Object.freeze([]) as unknown as [string, string][],
  setIfPresent: Object.freeze([]) as unknown as [string, string][],
}) as HeaderOps;

/** One configuration level's raw mutations (route config, virtual host, route, or weighted cluster). */
export interface HeaderLevel {
  toAdd?: unknown; // HeaderValueOption[]
  toRemove?: unknown; // string[]
}

type Action = 'append' | 'overwrite' | 'if_absent' | 'if_present';

interface LevelOps {
  remove: string[];
  entries: { name: string; value: string; action: Action }[];
}

function decodeLevel(level: HeaderLevel, warnings: string[], where: string): LevelOps {
  const remove: string[] = [];
  for (const r of asArray(level.toRemove)) {
    const n = asString(r);
    if (n) remove.push(n.toLowerCase());
  }
  const entries: LevelOps['entries'] = [];
  for (const raw of asArray(level.toAdd)) {
    const hvo = asMsg(raw) ?? {};
    const header = asMsg(hvo.header) ?? {};
    const name = asString(header.key)?.toLowerCase();
    if (!name) {
      warnings.push(`${where}: header to add without a key ignored`);
      continue;
    }
    let value = asString(header.value);
    if (value === undefined && header.raw_value !== undefined) {
      const rv = header.raw_value;
      value = typeof rv === 'string' ? rv : rv instanceof Uint8Array ? Buffer.from(rv).toString('utf8') : undefined;
    }
    value ??= '';
    if (value === '' && wrappedBool(hvo.keep_empty_value) !== true) continue; // Envoy drops empty values by default
    if (/%[A-Z_]+(\([^)]*\))?%/.test(value)) {
      warnings.push(`${where}: header ${name}: Envoy substitution variables are not supported; value used literally`);
    }
    entries.push({ name, value, action: actionOf(hvo) });
  }
  return { remove, entries };
}

function actionOf(hvo: Msg): Action {
  // The legacy `append` BoolValue wins when present; unset it means "append" (Envoy's default).
  const legacy = hvo.append === undefined || hvo.append === null ? undefined : wrappedBool(hvo.append);
  if (legacy !== undefined) return legacy ? 'append' : 'overwrite';
  switch (hvo.append_action) {
    case 'OVERWRITE_IF_EXISTS_OR_ADD':
    case 2:
      return 'overwrite';
    case 'ADD_IF_ABSENT':
    case 1:
      return 'if_absent';
    case 'OVERWRITE_IF_EXISTS':
    case 3:
      return 'if_present';
    default:
      return 'append';
  }
}

/**
 * Merges levels given in Envoy's evaluation order (each level: remove, then add). A later level that
 * removes or overwrites a header wipes what earlier levels did to it; appends accumulate in order.
 * Envoy evaluates route -> virtual host -> route config unless `most_specific_header_mutations_wins`,
 * which reverses it; the caller passes the levels already ordered.
 */
export function compileHeaderOps(levels: HeaderLevel[], warnings: string[], where: string): HeaderOps {
  const decoded = levels.map((l) => decodeLevel(l, warnings, where));
  if (decoded.every((d) => d.remove.length === 0 && d.entries.length === 0)) return EMPTY_HEADER_OPS;
  const claimed = new Set<string>(); // names wiped by a later level
  const perLevel: HeaderOps[] = [];
  for (let i = decoded.length - 1; i >= 0; i--) {
    const d = decoded[i];
    const ops: HeaderOps = { set: [], add: [], remove: [], setIfAbsent: [], setIfPresent: [] };
    const claimsHere = new Set<string>();
    for (const n of d.remove) {
      if (claimed.has(n) || ops.remove.includes(n)) continue;
      ops.remove.push(n);
      claimsHere.add(n);
    }
    const lastSet = new Map<string, number>();
    for (const e of d.entries) {
      if (claimed.has(e.name)) continue;
      if (e.action === 'overwrite') {
        // A later overwrite in the same level replaces the earlier one, and drops earlier appends of it.
        const prev = lastSet.get(e.name);
        if (prev !== undefined) ops.set[prev][1] = e.value;
        else {
          lastSet.set(e.name, ops.set.length);
          ops.set.push([e.name, e.value]);
        }
        ops.add = ops.add.filter(([n]) => n !== e.name);
        claimsHere.add(e.name);
      } else if (e.action === 'append') ops.add.push([e.name, e.value]);
      else if (e.action === 'if_absent') ops.setIfAbsent.push([e.name, e.value]);
      else ops.setIfPresent.push([e.name, e.value]);
    }
    for (const n of claimsHere) claimed.add(n);
    perLevel.unshift(ops);
  }
  const out: HeaderOps = { set: [], add: [], remove: [], setIfAbsent: [], setIfPresent: [] };
  for (const ops of perLevel) {
    for (const r of ops.remove) if (!out.remove.includes(r)) out.remove.push(r);
    for (const s of ops.set) {
      // an earlier level's set of the same name cannot survive (claimed), so no duplicates here
      out.set.push(s);
    }
    out.add.push(...ops.add);
    out.setIfAbsent.push(...ops.setIfAbsent);
    out.setIfPresent.push(...ops.setIfPresent);
  }
  // A name removed and then set by a later level: the removal is moot; keep ops minimal.
  out.remove = out.remove.filter((r) => !out.set.some(([n]) => n === r));
  return deepFreezeOps(out);
}

function deepFreezeOps(ops: HeaderOps): HeaderOps {
  for (const p of ops.set) Object.freeze(p);
  for (const p of ops.add) Object.freeze(p);
  for (const p of ops.setIfAbsent) Object.freeze(p);
  for (const p of ops.setIfPresent) Object.freeze(p);
  Object.freeze(ops.setIfPresent);
  Object.freeze(ops.set);
  Object.freeze(ops.add);
  Object.freeze(ops.remove);
  Object.freeze(ops.setIfAbsent);
  return Object.freeze(ops);
}

/** Applies compiled ops to a header object in place (Node's IncomingHttpHeaders / OutgoingHttpHeaders shape). */
export function applyHeaderOps(headers: Record<string, string | string[] | number | undefined>, ops: HeaderOps): void {
  const remove = ops.remove;
  for (let i = 0; i < remove.length; i++) delete headers[remove[i]];
  const set = ops.set;
  for (let i = 0; i < set.length; i++) headers[set[i][0]] = set[i][1];
  const add = ops.add;
  for (let i = 0; i < add.length; i++) {
    const name = add[i][0];
    const cur = headers[name];
    if (cur === undefined) headers[name] = add[i][1];
    else if (Array.isArray(cur)) cur.push(add[i][1]);
    else headers[name] = [String(cur), add[i][1]];
  }
  const ifAbsent = ops.setIfAbsent;
  for (let i = 0; i < ifAbsent.length; i++) {
    if (headers[ifAbsent[i][0]] === undefined) headers[ifAbsent[i][0]] = ifAbsent[i][1];
  }
  const ifPresent = ops.setIfPresent;
  for (let i = 0; i < ifPresent.length; i++) {
    if (headers[ifPresent[i][0]] !== undefined) headers[ifPresent[i][0]] = ifPresent[i][1];
  }
}

/** The upstream path after a route's prefix or regex rewrite (path without query). */
export function rewritePath(path: string, rewrite: PathRewrite | undefined): string {
  if (!rewrite) return path;
  if (rewrite.prefix) {
    const rest = path.slice(rewrite.prefix.from.length);
    // Envoy keeps the result a valid origin-form path
    const out = rewrite.prefix.to + rest;
    return out === '' ? '/' : out;
  }
  if (rewrite.regex) {
    rewrite.regex.re.lastIndex = 0;
    return path.replace(rewrite.regex.re, rewrite.regex.substitution);
  }
  return path;
}
