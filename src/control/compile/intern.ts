// Cross-generation interning: a compiled object whose inputs did not change is handed out again by reference.
// The ADS server recognises a resource it already encoded by identity, so an unchanged cluster, load assignment
// or listener costs neither a re-encode nor a resend after a config or registry change elsewhere.

/** A content fingerprint, or the parts a value is made of (compared element by element, by identity). */
export type Fingerprint = string | readonly unknown[];

interface Entry {
  fp: Fingerprint;
  value: unknown;
  tick: number;
}

function same(a: Fingerprint, b: Fingerprint): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Entries unused for this many generations are dropped (a generation = one CompileInput). */
const KEEP_GENERATIONS = 3;

export class Interner {
  private readonly entries = new Map<string, Entry>();
  private tick = 0;

  /** The value last made for `key` if its fingerprint was `fp`, else a fresh one from `make` (remembered). */
  get<V>(key: string, fp: Fingerprint, make: () => V): V {
    const e = this.entries.get(key);
    if (e && same(e.fp, fp)) {
      e.tick = this.tick;
      return e.value as V;
    }
    const value = make();
    this.entries.set(key, { fp, value, tick: this.tick });
    return value;
  }

  /** Starts a generation and forgets what recent generations did not use. */
  nextGeneration(): void {
    this.tick++;
    for (const [k, e] of this.entries) if (e.tick < this.tick - KEEP_GENERATIONS) this.entries.delete(k);
  }

  get size(): number {
    return this.entries.size;
  }
}
