// Loads multi-document YAML into resources, keeping source positions of every field, and reports problems as diagnostics.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Node } from 'yaml';
import { didYouMean, type Diagnostic } from './diagnostics.js';
import { DEFAULT_NAMESPACE } from './names.js';
import { KIND_SCHEMAS } from './schema.js';
import { attachPositions, joinPath, type Position } from './positions.js';
import { isPlainObject, describeValue } from './schema-check.js';
import { API_VERSIONS, KIND_NAMES, type Resource } from './types.js';
import { validateResource } from './validate.js';

export { positionOf } from './positions.js';

export interface LoadResult {
  resources: Resource[];
  diagnostics: Diagnostic[];
}

/** Records the position of every map key and sequence item under `path`. */
function collectPositions(node: Node | null | undefined, path: string, lc: LineCounter, out: Map<string, Position>): void {
  if (!node || isAlias(node)) return;
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isScalar(pair.key)) continue;
      const p = joinPath(path, String(pair.key.value));
      const off = pair.key.range?.[0];
      if (off !== undefined) {
        const { line, col } = lc.linePos(off);
        out.set(p, { line, column: col });
      }
      collectPositions(pair.value as Node | null, p, lc, out);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      const p = joinPath(path, i);
      const off = (item as Node | null)?.range?.[0];
      if (off !== undefined) {
        const { line, col } = lc.linePos(off);
        out.set(p, { line, column: col });
      }
      collectPositions(item as Node | null, p, lc, out);
    });
  }
}

/** The first line of a yaml error without its "at line X, column Y" tail (we print the position ourselves). */
function yamlMessage(msg: string): string {
  return msg.split('\n')[0].replace(/ at line \d+, column \d+:?\s*$/, '');
}

/**
 * Parses every document in `text`. A document with problems in its envelope (syntax, kind, apiVersion,
 * name) yields diagnostics and no resource; one with problems only in its spec yields both.
 */
export function parseYamlDocuments(text: string, file: string): LoadResult {
  const lc = new LineCounter();
  const resources: Resource[] = [];
  const diagnostics: Diagnostic[] = [];
  let docs;
  try {
    docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true, merge: true });
  } catch (err) {
    diagnostics.push({ code: 'TRL0101', severity: 'error', message: `YAML syntax error: ${(err as Error).message}`, file, line: 1, column: 1 });
    return { resources, diagnostics };
  }
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const { line, col } = lc.linePos(e.pos[0]);
        diagnostics.push({ code: 'TRL0101', severity: 'error', message: `YAML syntax error: ${yamlMessage(e.message)}`, file, line, column: col });
      }
      continue;
    }
    const contents = doc.contents as Node | null;
    if (!contents || (isScalar(contents) && (contents.value === null || contents.value === undefined))) continue; // empty document
    const start = lc.linePos(contents.range?.[0] ?? 0);
    const docPos = { file, line: start.line, column: start.col };
    const positions = new Map<string, Position>();
    collectPositions(contents, '', lc, positions);
    const at = (field: string): { line: number; column: number } => positions.get(field) ?? { line: docPos.line, column: docPos.column };
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      diagnostics.push({ code: 'TRL0101', severity: 'error', message: `YAML syntax error: ${yamlMessage((err as Error).message)}`, ...docPos });
      continue;
    }
    if (!isPlainObject(value)) {
      diagnostics.push({ code: 'TRL0102', severity: 'error', message: `document is not a mapping (got ${describeValue(value)})`, ...docPos });
      continue;
    }
    const d = envelope(value, file, at);
    diagnostics.push(...d.diagnostics);
    if (!d.resource) continue;
    d.resource.source = docPos;
    attachPositions(d.resource, positions);
    resources.push(d.resource);
    diagnostics.push(...validateResource(d.resource));
  }
  return { resources, diagnostics };
}

/** Checks apiVersion, kind and metadata.name and builds the resource. */
function envelope(
  v: Record<string, unknown>,
  file: string,
  at: (field: string) => { line: number; column: number },
): { resource?: Resource; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  const meta = isPlainObject(v.metadata) ? v.metadata : undefined;
  const name = typeof meta?.name === 'string' ? meta.name : undefined;
  const namespace = typeof meta?.namespace === 'string' ? meta.namespace : undefined;
  const kind = typeof v.kind === 'string' ? v.kind : undefined;
  const who = { kind, name, namespace: name !== undefined ? (namespace ?? DEFAULT_NAMESPACE) : namespace };
  const err = (code: string, field: string, message: string, hint?: string): void => {
    diagnostics.push({ code, severity: 'error', message, hint, file, ...at(field), ...who, field });
  };

  for (const k of Object.keys(v)) {
    if (!['apiVersion', 'kind', 'metadata', 'spec', 'status'].includes(k)) {
      const near = didYouMean(k, ['apiVersion', 'kind', 'metadata', 'spec']);
      err('TRL0201', k, `unknown field "${k}"`, near ? `did you mean "${near}"?` : undefined);
    }
  }
  if (v.kind === undefined || v.kind === null) err('TRL0103', 'kind', 'missing "kind"');
  else if (typeof v.kind !== 'string') err('TRL0202', 'kind', `expected string, got ${describeValue(v.kind)}`);
  if (v.apiVersion === undefined || v.apiVersion === null) err('TRL0103', 'apiVersion', 'missing "apiVersion"');
  else if (typeof v.apiVersion !== 'string') err('TRL0202', 'apiVersion', `expected string, got ${describeValue(v.apiVersion)}`);
  if (diagnostics.length > 0 && (typeof v.kind !== 'string' || typeof v.apiVersion !== 'string')) return { diagnostics };

  const apiVersion = v.apiVersion as string;
  const schema = kind !== undefined && Object.prototype.hasOwnProperty.call(KIND_SCHEMAS, kind) ? KIND_SCHEMAS[kind as keyof typeof KIND_SCHEMAS] : undefined;
  if (!schema) {
    const near = didYouMean(kind!, KIND_NAMES);
    err('TRL0104', 'kind', `unknown kind "${kind}"`, near ? `did you mean "${near}"?` : `accepted kinds: ${KIND_NAMES.join(', ')}`);
    return { diagnostics };
  }
  if (!API_VERSIONS[schema.kind].includes(apiVersion)) {
    err('TRL0105', 'apiVersion', `apiVersion "${apiVersion}" is not accepted for ${schema.kind}`, `use ${API_VERSIONS[schema.kind].join(' or ')}`);
  }
  if (v.metadata === undefined || v.metadata === null) {
    err('TRL0106', 'metadata', 'missing metadata.name');
  } else if (!meta) {
    err('TRL0202', 'metadata', `expected a mapping, got ${describeValue(v.metadata)}`);
  } else if (meta.name === undefined || meta.name === null || meta.name === '') {
    err('TRL0106', 'metadata', 'missing metadata.name');
  } else if (typeof meta.name !== 'string') {
    err('TRL0202', 'metadata.name', `expected string, got ${describeValue(meta.name)}`, typeof meta.name === 'number' ? `quote it: "${meta.name}"` : undefined);
  }
  if (diagnostics.length > 0) return { diagnostics };

  // A missing spec is read as {}; validation reports it for kinds that need one.
  const spec = v.spec === undefined || v.spec === null ? undefined : v.spec;
  const resource: Resource = { apiVersion, kind: schema.kind, metadata: meta as unknown as Resource['metadata'], spec: spec ?? {} };
  return { resource, diagnostics };
}

async function listYaml(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listYaml(p)));
    else if (/\.ya?ml$/i.test(entry.name)) out.push(p);
  }
  return out;
}

/** Loads files and directories (recursively, *.yaml / *.yml). Unreadable paths become TRL0108 diagnostics. */
export async function loadFiles(paths: string[]): Promise<LoadResult> {
  const resources: Resource[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const p of paths) {
    let files: string[];
    try {
      const st = await stat(p);
      files = st.isDirectory() ? await listYaml(p) : [p];
      if (st.isDirectory() && files.length === 0)
        diagnostics.push({ code: 'TRL0108', severity: 'warning', message: `directory has no .yaml or .yml files`, file: p });
    } catch (err) {
      diagnostics.push({ code: 'TRL0108', severity: 'error', message: `cannot read: ${errnoText(err)}`, file: p });
      continue;
    }
    for (const f of files) {
      let text: string;
      try {
        text = await readFile(f, 'utf8');
      } catch (err) {
        diagnostics.push({ code: 'TRL0108', severity: 'error', message: `cannot read: ${errnoText(err)}`, file: f });
        continue;
      }
      const r = parseYamlDocuments(text, f);
      resources.push(...r.resources);
      diagnostics.push(...r.diagnostics);
    }
  }
  return { resources, diagnostics };
}

function errnoText(err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return (err as Error).message;
}
