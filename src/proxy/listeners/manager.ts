// Reconciles bound listeners with the state: binds new ones, keeps unchanged ones, drains replaced or removed ones.
import type { ListenerConfig } from '../config/types.js';
import type { ProxyState } from '../state.js';
import type { ManagedListener } from './base.js';

export type ListenerFactory = (cfg: ListenerConfig) => ManagedListener;

export class ListenerManager {
  readonly active = new Map<string, ManagedListener>();
  readonly errors = new Map<string, string>();
  private draining = new Set<Promise<void>>();

  constructor(
    private readonly factory: ListenerFactory,
    private readonly drainTimeoutMs: number,
    private readonly log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void,
  ) {}

  /** A listener keeps its socket while address, port and kind stay; handlers read the newest config per connection. */
  async reconcile(state: ProxyState): Promise<void> {
    const work: Promise<void>[] = [];
    for (const [name, cfg] of state.listeners) {
      const cur = this.active.get(name);
      if (cur && cur.config.address === cfg.address && cur.config.port === cfg.port && cur.config.kind === cfg.kind) continue;
      work.push(this.bind(name, cfg, cur));
    }
    for (const [name, cur] of this.active) {
      if (!state.listeners.has(name)) {
        this.active.delete(name);
        this.retire(cur);
      }
    }
    for (const name of this.errors.keys()) if (!state.listeners.has(name)) this.errors.delete(name);
    await Promise.all(work);
  }

  private async bind(name: string, cfg: ListenerConfig, old: ManagedListener | undefined): Promise<void> {
    const l = this.factory(cfg);
    try {
      // Bind the new one first: if the port is unchanged but the kind changed, free the old port before binding.
      if (old && old.config.port === cfg.port && old.config.address === cfg.address) {
        old.stopAccepting();
        this.retire(old);
      }
      await l.listen();
      this.errors.delete(name);
      this.active.set(name, l);
      if (old && this.active.get(name) === l && (old.config.port !== cfg.port || old.config.address !== cfg.address)) this.retire(old);
      this.log('info', `listener ${name} on ${cfg.address}:${l.port()} (${cfg.kind})`);
    } catch (err) {
      this.errors.set(name, (err as Error).message);
      this.log('error', (err as Error).message);
    }
  }

  private retire(l: ManagedListener): void {
    const p = l.drain(this.drainTimeoutMs).then(() => {
      this.draining.delete(p);
    });
    this.draining.add(p);
  }

  /** Stops accepting everywhere, lets open connections finish up to the timeout. */
  async drainAll(timeoutMs: number): Promise<void> {
    const all = [...this.active.values()].map((l) => l.drain(timeoutMs));
    this.active.clear();
    await Promise.all([...all, ...this.draining]);
  }

  portOf(name: string): number | undefined {
    return this.active.get(name)?.port();
  }
}
