// Store kept in memory, changed through the HTTP API (`trellis apply|delete`); starts from optional seed resources.
import type { Resource } from '../api/types.js';
import type { ChangeResult, Store, StoreError, StoreListener, StoreSnapshot } from './store.js';
import { ConfigState, type Validator } from './state.js';

export class MemoryStore implements Store {
  readonly kind = 'memory';
  private readonly state: ConfigState;

  constructor(opts: { validate?: Validator } = {}) {
    this.state = new ConfigState(opts.validate);
  }

  async start(): Promise<void> {}

  async list(): Promise<Resource[]> {
    return [...this.state.snapshot().resources];
  }

  async get(key: string): Promise<Resource | undefined> {
    return this.state.get(key);
  }

  async apply(resources: Resource[]): Promise<ChangeResult> {
    return this.state.apply(resources);
  }

  async delete(keys: string[]): Promise<ChangeResult> {
    return this.state.delete(keys);
  }

  watch(listener: StoreListener): () => void {
    return this.state.watch(listener);
  }

  snapshot(): StoreSnapshot {
    return this.state.snapshot();
  }

  /** Records a refusal that happened outside apply (e.g. bad seed files at start) so the API shows it. */
  recordError(message: string, diagnostics: StoreError['diagnostics']): void {
    this.state.recordError(message, diagnostics);
  }

  lastError(): StoreError | undefined {
    return this.state.lastError();
  }

  async close(): Promise<void> {}
}
