// Per-generation memoization: values derived from an input object are cached on that object's identity.
// The control plane hands the compiler one immutable CompileInput per config/registry generation, so parts
// shared by every proxy (indexes, clusters, endpoints) are computed once per generation, not once per proxy.

const cache = new WeakMap<object, Map<string, unknown>>();

/** Returns the value cached under `key` for `owner`, computing it with `make` the first time. */
export function memo<V>(owner: object, key: string, make: () => V): V {
  let m = cache.get(owner);
  if (!m) cache.set(owner, (m = new Map()));
  if (m.has(key)) return m.get(key) as V;
  const v = make();
  m.set(key, v);
  return v;
}
