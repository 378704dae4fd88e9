// Test helper: the small slice of the Reflect metadata API that @peculiar/x509's tsyringe dependency checks for (reflect-metadata is not installed).
const store = new WeakMap<object, Map<unknown, unknown>>();
const R = Reflect as unknown as Record<string, unknown>;

function own(target: object, create: boolean): Map<unknown, unknown> | undefined {
  let m = store.get(target);
  if (!m && create) store.set(target, (m = new Map()));
  return m;
}

if (typeof R.getMetadata !== 'function') {
  R.defineMetadata = (key: unknown, value: unknown, target: object) => own(target, true)!.set(key, value);
  R.getOwnMetadata = (key: unknown, target: object) => own(target, false)?.get(key);
  R.hasOwnMetadata = (key: unknown, target: object) => own(target, false)?.has(key) ?? false;
  R.getMetadata = (key: unknown, target: object) => {
    for (let t: object | null = target; t; t = Object.getPrototypeOf(t)) {
      const m = own(t, false);
      if (m?.has(key)) return m.get(key);
    }
    return undefined;
  };
  R.hasMetadata = (key: unknown, target: object) => (R.getMetadata as (k: unknown, t: object) => unknown)(key, target) !== undefined;
  R.metadata = (key: unknown, value: unknown) => (target: object) => own(target, true)!.set(key, value);
}

export {};
