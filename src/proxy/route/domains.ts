// Virtual-host selection by Host/:authority as Envoy does it: exact, then `*.suffix`, then `prefix.*`, then `*`.

interface Suffix<T> {
  suffix: string;
  value: T;
}
interface Prefix<T> {
  prefix: string;
  value: T;
}

/** One lookup structure over a set of (lowercased) domain patterns. */
class DomainSet<T> {
  readonly exact = new Map<string, T>();
  suffixes: Suffix<T>[] = []; // longest first
  prefixes: Prefix<T>[] = []; // longest first

  /** Returns false when the pattern is already taken (the first virtual host keeps it). */
  add(domain: string, value: T): boolean {
    if (domain.length > 1 && domain.startsWith('*')) {
      const suffix = domain.slice(1);
      if (this.suffixes.some((s) => s.suffix === suffix)) return false;
      this.suffixes.push({ suffix, value });
    } else if (domain.length > 1 && domain.endsWith('*')) {
      const prefix = domain.slice(0, -1);
      if (this.prefixes.some((p) => p.prefix === prefix)) return false;
      this.prefixes.push({ prefix, value });
    } else {
      if (this.exact.has(domain)) return false;
      this.exact.set(domain, value);
    }
    return true;
  }

  seal(): void {
    // Envoy: the longest wildcard wins; a stable sort keeps the config order among equals.
    this.suffixes.sort((a, b) => b.suffix.length - a.suffix.length);
    this.prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  find(host: string): T | undefined {
    const e = this.exact.get(host);
    if (e !== undefined) return e;
    const s = this.suffixes;
    for (let i = 0; i < s.length; i++) {
      // the wildcard must stand for at least one character
      if (host.length > s[i].suffix.length && host.endsWith(s[i].suffix)) return s[i].value;
    }
    const p = this.prefixes;
    for (let i = 0; i < p.length; i++) {
      if (host.length > p[i].prefix.length && host.startsWith(p[i].prefix)) return p[i].value;
    }
    return undefined;
  }
}

const PORT_RE = /:\d+$/;

/** True when a domain pattern or host carries a `:port`. */
export function hasPort(domain: string): boolean {
  return PORT_RE.test(domain);
}

/**
 * Canonical lowercase form: trailing dot of the name dropped (`a.b.:80` -> `a.b:80`, `a.b.` -> `a.b`).
 */
export function canonicalHost(host: string): string {
  let h = host.toLowerCase();
  const colon = h.lastIndexOf(':');
  if (colon > 0 && h.charCodeAt(h.length - 1) !== 93 /* ] */ && PORT_RE.test(h)) {
    if (h.charCodeAt(colon - 1) === 46 /* . */) h = h.slice(0, colon - 1) + h.slice(colon);
  } else if (h.length > 1 && h.charCodeAt(h.length - 1) === 46) h = h.slice(0, -1);
  return h;
}

/**
 * Maps hosts to virtual hosts. A host with `:port` first tries the port-qualified patterns; failing
 * that, its bare name is tried against virtual hosts that carry no port-qualified domain at all (so
 * `reviews:9999` does not land on a virtual host declared for `reviews:9080`). `*` is the last resort.
 */
export class DomainIndex<T> {
  private readonly all = new DomainSet<T>();
  private readonly portless = new DomainSet<T>();
  private wildcard: T | undefined;
  /** Raw authority -> result; hosts seen by a proxy are few, so this turns lookups into one Map.get. */
  private readonly cache = new Map<string, T | null>();

  /** Adds a virtual host's domains; returns the patterns that were duplicates (ignored). */
  addVirtualHost(domains: string[], value: T): string[] {
    const dupes: string[] = [];
    const canon = domains.map(canonicalHost);
    const anyPort = canon.some(hasPort);
    for (const d of canon) {
      if (d === '*') {
        if (this.wildcard !== undefined) dupes.push(d);
        else this.wildcard = value;
        continue;
      }
      if (!this.all.add(d, value)) dupes.push(d);
      if (!anyPort) this.portless.add(d, value);
    }
    return dupes;
  }

  seal(): void {
    this.all.seal();
    this.portless.seal();
  }

  find(authority: string): T | undefined {
    const c = this.cache.get(authority);
    if (c !== undefined) return c === null ? undefined : c;
    const found = this.lookup(authority);
    // bounded: a client spraying random Host headers cannot grow it without limit
    if (this.cache.size >= 1024) this.cache.clear();
    this.cache.set(authority, found === undefined ? null : found);
    return found;
  }

  private lookup(authority: string): T | undefined {
    const host = canonicalHost(authority);
    const hit = this.all.find(host);
    if (hit !== undefined) return hit;
    if (PORT_RE.test(host)) {
      const bare = host.slice(0, host.lastIndexOf(':'));
      const b = this.portless.find(bare);
      if (b !== undefined) return b;
    }
    return this.wildcard;
  }
}
