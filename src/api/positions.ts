// Field-path -> source position lookup kept on each loaded resource, so any later check can say file:line:column.
import type { Resource } from './types.js';

export interface Position {
  line: number;
  column: number;
}

const POSITIONS = Symbol.for('trellis.api.positions');

/** Appends a key or index to a field path: spec.http[0].route, metadata.labels["app.kubernetes.io/name"]. */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (/^[A-Za-z0-9_][A-Za-z0-9_-]*$/.test(key)) return base ? `${base}.${key}` : key;
  return `${base}[${JSON.stringify(key)}]`;
}

/** Stores the lookup as a non-enumerable property: JSON and spreads do not carry it, nothing else sees it. */
export function attachPositions(r: Resource, positions: Map<string, Position>): void {
  Object.defineProperty(r, POSITIONS, { value: positions, enumerable: false, configurable: true, writable: true });
}

/**
 * Where a field was written. Falls back to the nearest enclosing field that has a position,
 * then to the document start; undefined only for resources that did not come from a file.
 */
export function positionOf(r: Resource, fieldPath: string): Position | undefined {
  const positions = (r as unknown as { [POSITIONS]?: Map<string, Position> })[POSITIONS];
  if (positions) {
    let p = fieldPath;
    while (p) {
      const hit = positions.get(p);
      if (hit) return hit;
      p = parentPath(p);
    }
  }
  return r.source ? { line: r.source.line, column: r.source.column } : undefined;
}

function parentPath(p: string): string {
  if (p.endsWith(']')) {
    // Index or quoted key: cut at the matching '[' (quoted keys cannot contain an unescaped '"]').
    const open = p.endsWith('"]') ? p.lastIndexOf('["') : p.lastIndexOf('[');
    return open >= 0 ? p.slice(0, open) : '';
  }
  const dot = p.lastIndexOf('.');
  const br = p.lastIndexOf(']');
  return dot > br ? p.slice(0, dot) : br >= 0 ? p.slice(0, br + 1) : '';
}
