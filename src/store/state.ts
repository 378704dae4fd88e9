// In-memory config state shared by store backends: validate-then-commit, revisions and watchers.
import type { Resource } from '../api/types.js';
import type { Diagnostic } from '../api/diagnostics.js';
import { analyzeResources } from '../api/analyze.js';
import { validateResource } from '../api/validate.js';
import { resourceKey } from '../api/names.js';
import type { ChangeResult, ResourceChange, StoreError, StoreListener, StoreSnapshot } from './store.js';
import { StoreRejectedError } from './store.js';

export function isErrorDiagnostic(d: Diagnostic): boolean {
  return (d as { severity?: string }).severity === 'error';
}

/** Stable JSON of what a resource means (source positions excluded), to tell "configured" from "unchanged". */
export function resourceFingerprint(r: Resource): string {
  const x = r as unknown as Record<string, unknown>;
  return stableStringify({ apiVersion: x.apiVersion, kind: x.kind, metadata: x.metadata, spec: x.spec, data: x.data });
}

function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function describe(r: Resource, action: ResourceChange['action']): ResourceChange {
  const m = (r as { metadata?: { name?: string; namespace?: string } }).metadata ?? {};
  return { key: resourceKey(r), kind: r.kind, namespace: m.namespace ?? 'default', name: m.name ?? '', action };
}

export type Validator = (resources: Resource[]) => Diagnostic[];

/** Per-resource validation plus cross-resource analysis of the whole resulting set (analysis includes validation). */
export const validateConfig: Validator = (resources) => analyzeResources(resources);

/**
 * Holds the current good config. Every change is computed as a whole new set, validated as a whole,
 * and only then swapped in, so a rejected change leaves no trace.
 */
export class ConfigState {
  private current = new Map<string, Resource>();
  private revision = 0;
  private listeners = new Set<StoreListener>();
  private error: StoreError | undefined;
  private frozen: StoreSnapshot = { revision: 0, resources: [] };
  private readonly validate: Validator;
  /**
   * Per-resource diagnostics of committed resource objects. A resource's own validation depends on nothing else and
   * the store keeps the objects it committed unchanged, so a change re-validates only new or replaced resources:
   * one changed endpoint among 5,000 resources no longer re-validates them all (~50 ms). Cross-resource analysis
   * still runs over the whole set. Objects of a rejected change are not remembered (their sender may fix them).
   */
  private readonly ownDiagnostics = new WeakMap<Resource, Diagnostic[]>();
  private pendingDiagnostics = new Map<Resource, Diagnostic[]>();

  constructor(validate?: Validator) {
    this.validate = validate ?? ((rs) => analyzeResources(rs, { validate: (list) => this.validateEach(list) }));
  }

  private validateEach(resources: Resource[]): Diagnostic[] {
    const out: Diagnostic[] = [];
    for (const r of resources) {
      let d = this.ownDiagnostics.get(r) ?? this.pendingDiagnostics.get(r);
      if (!d) this.pendingDiagnostics.set(r, (d = validateResource(r)));
      for (const x of d) out.push(x);
    }
    return out;
  }

  snapshot(): StoreSnapshot {
    return this.frozen;
  }

  get(key: string): Resource | undefined {
    return this.current.get(key);
  }

  lastError(): StoreError | undefined {
    return this.error;
  }

  recordError(message: string, diagnostics: Diagnostic[]): void {
    this.error = { at: new Date().toISOString(), message, diagnostics };
  }

  clearError(): void {
    this.error = undefined;
  }

  watch(listener: StoreListener): () => void {
    this.listeners.add(listener);
    listener(this.frozen);
    return () => this.listeners.delete(listener);
  }

  /** Upserts resources. */
  apply(resources: Resource[]): ChangeResult {
    const next = new Map(this.current);
    const changes: ResourceChange[] = [];
    const seen = new Set<string>();
    for (const r of resources) {
      const key = resourceKey(r);
      if (seen.has(key)) throw new StoreRejectedError(`${key} appears twice in one change`, []);
      seen.add(key);
      const old = next.get(key);
      const action = !old ? 'created' : resourceFingerprint(old) === resourceFingerprint(r) ? 'unchanged' : 'configured';
      changes.push(describe(r, action));
      next.set(key, r);
    }
    return this.commit(next, changes);
  }

  /** Deletes by key; an unknown key rejects the whole change. */
  delete(keys: string[]): ChangeResult {
    const next = new Map(this.current);
    const changes: ResourceChange[] = [];
    const missing = keys.filter((k) => !next.has(k));
    if (missing.length) throw new StoreRejectedError(`not found: ${missing.join(', ')}`, [], 404);
    for (const k of keys) {
      changes.push(describe(next.get(k)!, 'deleted'));
      next.delete(k);
    }
    return this.commit(next, changes);
  }

  /** Replaces everything (file store reload). */
  replace(resources: Resource[]): ChangeResult {
    const next = new Map<string, Resource>();
    const changes: ResourceChange[] = [];
    for (const r of resources) {
      const key = resourceKey(r);
      if (next.has(key)) throw new StoreRejectedError(`${key} is defined twice`, []);
      next.set(key, r);
      const old = this.current.get(key);
      if (!old) changes.push(describe(r, 'created'));
      else if (resourceFingerprint(old) !== resourceFingerprint(r)) changes.push(describe(r, 'configured'));
    }
    for (const [k, r] of this.current) if (!next.has(k)) changes.push(describe(r, 'deleted'));
    return this.commit(next, changes);
  }

  private commit(next: Map<string, Resource>, changes: ResourceChange[]): ChangeResult {
    const all = [...next.values()];
    let diagnostics: Diagnostic[];
    const pending = (this.pendingDiagnostics = new Map());
    try {
      diagnostics = this.validate(all);
    } catch (err) {
      throw new StoreRejectedError(`validation failed: ${(err as Error).message}`, []);
    }
    const errors = diagnostics.filter(isErrorDiagnostic);
    if (errors.length) {
      throw new StoreRejectedError(`config rejected: ${errors.length} error(s)`, diagnostics);
    }
    const warnings = diagnostics.filter((d) => !isErrorDiagnostic(d));
    if (changes.every((c) => c.action === 'unchanged')) return { revision: this.revision, changes, warnings };
    for (const [r, d] of pending) if (next.get(resourceKey(r)) === r) this.ownDiagnostics.set(r, d);
    pending.clear();
    this.current = next;
    this.revision++;
    this.frozen = Object.freeze({ revision: this.revision, resources: Object.freeze(all) });
    for (const l of [...this.listeners]) {
      try {
        l(this.frozen);
      } catch {
        /* a broken listener must not undo a committed change */
      }
    }
    return { revision: this.revision, changes, warnings };
  }
}
