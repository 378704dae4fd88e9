// The committed configuration reference is exactly what the schema generates, and covers every kind and field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderConfigDocs } from '../../src/api/docs.js';
import { KIND_SCHEMAS } from '../../src/api/schema.js';
import { DIAGNOSTIC_CODES } from '../../src/api/diagnostics.js';
import { KIND_NAMES } from '../../src/api/types.js';

const committed = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');

test('docs/configuration.md equals the generated reference (run `node --import tsx scripts/gen-config-docs.ts`)', () => {
  assert.equal(committed, renderConfigDocs());
});

test('the reference names every kind, apiVersion, top-level spec field and diagnostic code', () => {
  for (const k of KIND_NAMES) {
    assert.ok(committed.includes(`## ${k}\n`), k);
    for (const v of KIND_SCHEMAS[k].apiVersions) assert.ok(committed.includes(`\`${v}\``), v);
    for (const f of Object.keys(KIND_SCHEMAS[k].spec.fields ?? {})) assert.ok(committed.includes(`| \`spec.${f}\` |`), `${k} spec.${f}`);
  }
  for (const code of Object.keys(DIAGNOSTIC_CODES)) assert.ok(committed.includes(`| ${code} |`), code);
  assert.match(committed, /\| `spec.http\[\].corsPolicy` \| object \|  \| Cross-origin resource sharing. \| warns \(TRL0401\): /);
});
