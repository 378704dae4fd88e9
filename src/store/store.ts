// The Store contract every config backend (memory, files; later etcd, Kubernetes) implements.
import type { Resource } from '../api/types.js';
import type { Diagnostic } from '../api/diagnostics.js';

/** A full, immutable view of the config at one revision. */
export interface StoreSnapshot {
  revision: number;
  resources: readonly Resource[];
}

export type ChangeAction = 'created' | 'configured' | 'unchanged' | 'deleted';

export interface ResourceChange {
  key: string;
  kind: string;
  namespace: string;
  name: string;
  action: ChangeAction;
}

/** What one accepted apply/delete did. */
export interface ChangeResult {
  revision: number;
  changes: ResourceChange[];
  /** Warnings (non-fatal diagnostics) about the resulting config. */
  warnings: Diagnostic[];
}

/** The last time the store refused a change (bad file, invalid apply); shown in the HTTP API. */
export interface StoreError {
  at: string; // ISO time
  message: string;
  diagnostics: Diagnostic[];
}

export type StoreListener = (snapshot: StoreSnapshot) => void;

export interface Store {
  readonly kind: string;
  /** Loads initial state; must be awaited before use. */
  start(): Promise<void>;
  list(): Promise<Resource[]>;
  get(key: string): Promise<Resource | undefined>;
  /** Atomic: validated together with the rest of the config; on any error nothing changes and StoreRejectedError is thrown. */
  apply(resources: Resource[]): Promise<ChangeResult>;
  /** Atomic delete by resourceKey; unknown keys are reported as errors and nothing changes. */
  delete(keys: string[]): Promise<ChangeResult>;
  /** Calls the listener now with the current snapshot, then on every change. Returns unsubscribe. */
  watch(listener: StoreListener): () => void;
  snapshot(): StoreSnapshot;
  lastError(): StoreError | undefined;
  close(): Promise<void>;
}

/** A change refused as a whole; carries every diagnostic that explains why. */
export class StoreRejectedError extends Error {
  constructor(
    message: string,
    readonly diagnostics: Diagnostic[],
    readonly status = 400,
  ) {
    super(message);
  }
}
