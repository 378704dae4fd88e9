// The store re-validates only new or replaced resources: every outcome equals validating the whole set from scratch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../src/api/types.js';
import { analyzeResources } from '../../src/api/analyze.js';
import { ConfigState, isErrorDiagnostic } from '../../src/store/state.js';
import { StoreRejectedError } from '../../src/store/store.js';

const svc = (name: string, extra: Record<string, unknown> = {}): Resource => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { selector: { app: name }, ports: [{ name: 'http', port: 80 }], ...extra } }) as Resource;
const vs = (host: string, gateways?: string[]): Resource =>
  ({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: host, namespace: 'default' }, spec: { hosts: [host], ...(gateways ? { gateways } : {}), http: [{ route: [{ destination: { host } }] }] } }) as Resource;

/** What a from-scratch validation of `all` says: rejected with these diagnostics, or accepted with these warnings. */
function fromScratch(all: Resource[]): { rejected: boolean; diagnostics: unknown[] } {
  const d = analyzeResources(all);
  return d.some(isErrorDiagnostic) ? { rejected: true, diagnostics: d } : { rejected: false, diagnostics: d.filter((x) => !isErrorDiagnostic(x)) };
}

test('a sequence of changes: each result (warnings or rejection with diagnostics) equals validating everything anew', () => {
  const state = new ConfigState();
  const model = new Map<string, Resource>();
  const steps: Resource[][] = [
    [svc('a'), svc('b'), vs('a')],
    [vs('b', ['some-gateway'])], // warning TRL0402
    [svc('c', { bogus: 1 })], // unknown field: rejected
    [svc('c')],
    [vs('a', ['other-gateway'])], // replaced: warning now on a too
    [vs('nowhere')], // destination without a Service
    [svc('a'), svc('b')], // unchanged content, new objects
  ];
  for (const [i, change] of steps.entries()) {
    const next = new Map(model);
    for (const r of change) next.set(`${r.kind}/${r.metadata.name}`, r);
    const want = fromScratch([...next.values()]);
    let got: { rejected: boolean; diagnostics: unknown[] };
    try {
      got = { rejected: false, diagnostics: state.apply(change).warnings };
      for (const [k, r] of next) model.set(k, r);
    } catch (err) {
      assert.ok(err instanceof StoreRejectedError, String(err));
      got = { rejected: true, diagnostics: err.diagnostics };
    }
    assert.deepEqual(got, want, `step ${i}`);
  }
});

test('an object rejected, then fixed in place and sent again, is validated again', () => {
  const state = new ConfigState();
  state.apply([svc('a')]);
  const bad = svc('b', { bogus: 1 });
  assert.throws(() => state.apply([bad]), StoreRejectedError);
  delete (bad.spec as Record<string, unknown>).bogus;
  assert.equal(state.apply([bad]).changes[0].action, 'created');
  // And the other way: a fine object, rejected with a bad neighbour, keeps no stale verdict when it turns bad.
  const ok = svc('c');
  assert.throws(() => state.apply([ok, svc('d', { bogus: 2 })]), StoreRejectedError);
  (ok.spec as Record<string, unknown>).wrong = true;
  assert.throws(() => state.apply([ok]), (e: unknown) => e instanceof StoreRejectedError && e.diagnostics.some((d) => /wrong/.test(d.message)));
});
