// Writes docs/configuration.md from the configuration schema; `--check` exits 1 if the file is out of date.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderConfigDocs } from '../src/api/docs.js';

const target = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));
const text = renderConfigDocs();
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    /* missing counts as out of date */
  }
  if (current !== text) {
    console.error('docs/configuration.md is out of date: run `node --import tsx scripts/gen-config-docs.ts`');
    process.exit(1);
  }
  console.log('docs/configuration.md is up to date');
} else {
  writeFileSync(target, text);
  console.log(`wrote docs/configuration.md (${text.split('\n').length} lines)`);
}
