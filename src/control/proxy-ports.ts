// Deterministic proxy port allocation for workloads that name none, persisted so restarts keep the same ports.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ProxyPorts {
  inboundPort: number;
  outboundPort: number;
  adminPort: number;
}

export const PORT_BASE = 15100;
const BLOCK = 3;

/**
 * Hands out blocks of three consecutive ports from PORT_BASE, in the order workloads are first seen
 * (callers sort them, so the result is deterministic), skipping ports configured explicitly elsewhere.
 */
export class ProxyPortAllocator {
  private readonly assigned = new Map<string, ProxyPorts>();
  private readonly file: string | undefined;

  constructor(stateDir?: string) {
    if (stateDir) {
      this.file = join(stateDir, 'proxy-ports.json');
      try {
        const data = JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, ProxyPorts>;
        for (const [k, v] of Object.entries(data)) {
          if (Number.isInteger(v?.inboundPort) && Number.isInteger(v?.outboundPort)) this.assigned.set(k, v);
        }
      } catch {
        /* first start, or unreadable: allocate afresh */
      }
    }
  }

  get(key: string): ProxyPorts | undefined {
    return this.assigned.get(key);
  }

  /** Ports for `key`, allocating (and persisting) a block if it has none yet. */
  allocate(key: string, reserved: () => ReadonlySet<number>): ProxyPorts {
    const have = this.assigned.get(key);
    if (have) return have;
    const used = new Set(reserved());
    for (const p of this.assigned.values()) for (const n of [p.inboundPort, p.outboundPort, p.adminPort]) used.add(n);
    let base = PORT_BASE;
    while ([0, 1, 2].some((i) => used.has(base + i))) base += BLOCK;
    const ports: ProxyPorts = { outboundPort: base, inboundPort: base + 1, adminPort: base + 2 };
    this.assigned.set(key, ports);
    this.persist();
    return ports;
  }

  private persist(): void {
    if (!this.file) return;
    try {
      mkdirSync(join(this.file, '..'), { recursive: true });
      const tmp = `${this.file}.tmp`;
      writeFileSync(tmp, JSON.stringify(Object.fromEntries([...this.assigned].sort()), null, 2) + '\n');
      renameSync(tmp, this.file);
    } catch {
      /* ports still work for this run; they may differ after a restart */
    }
  }
}
