// Renders the configuration reference (docs/configuration.md) from the schema and the diagnostic code table.
import { DIAGNOSTIC_CODES } from './diagnostics.js';
import { KIND_SCHEMAS, METADATA_SCHEMA, typeLabel, type FieldSchema } from './schema.js';
import { KIND_NAMES } from './types.js';

const cell = (s: string | undefined): string => (s ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');

function support(f: FieldSchema): string {
  if (f.unsupported) return `warns (TRL0401): ${f.unsupported}`;
  if (f.deprecated) return `yes, deprecated (TRL0403): ${f.deprecated}`;
  if (f.partial) return `partly: ${f.partial}`;
  return 'yes';
}

function typeCell(f: FieldSchema): string {
  let t = typeLabel(f);
  if (f.enum) t = `enum: ${f.enum.map((e) => `\`${e}\``).join(', ')}`;
  const notes: string[] = [];
  if (f.required) notes.push('required');
  if (f.oneOf) notes.push(`exactly one of ${f.oneOf.join(', ')}`);
  if (f.atMostOne) notes.push(`at most one of ${f.atMostOne.join(', ')}`);
  return notes.length > 0 ? `${t} (${notes.join('; ')})` : t;
}

/** A field Trellis does not fully honour, for the summary at the end. */
interface Limit {
  path: string;
  f: FieldSchema;
}

/**
 * Flattens a schema into rows; an object seen before in the same kind is referenced instead of repeated. Fields marked
 * unsupported or partial are also collected into `limits` (once per kind, like the rows).
 */
function rows(f: FieldSchema, path: string, seen: Map<FieldSchema, string>, out: string[], limits: Limit[] = []): void {
  const children = f.type === 'object' ? f.fields : f.type === 'array' && f.items?.type === 'object' ? f.items.fields : f.type === 'map' && f.values?.type === 'object' ? f.values.fields : undefined;
  const inner = f.type === 'array' ? f.items : f.type === 'map' ? f.values : f;
  let desc = f.description ?? '';
  const again = inner ? seen.get(inner) : undefined;
  if (children && again && f.unsupported === undefined) desc += ` Same fields as \`${again}\`.`;
  out.push(`| \`${path}\` | ${cell(typeCell(f))} | ${cell(f.default ? `\`${f.default}\`` : '')} | ${cell(desc)} | ${cell(support(f))} |`);
  if (f.unsupported || f.partial) limits.push({ path, f });
  if (!children || again || f.unsupported) return;
  if (inner) seen.set(inner, path);
  const base = f.type === 'array' ? `${path}[]` : f.type === 'map' ? `${path}.<key>` : path;
  for (const [k, c] of Object.entries(children)) rows(c, `${base}.${k}`, seen, out, limits);
}

/** The closing summary: per kind, every field that warns when set (TRL0401) or is honoured only in part. */
function limitsSection(byKind: [string, Limit[]][]): string[] {
  const out = [
    '## Fields Trellis does not honour',
    '',
    'Every field below is accepted so that configuration written for Istio, Gateway API or Kubernetes loads as it is.',
    '`warns` fields are ignored and reported with TRL0401 wherever they are set; `partly` fields work within the stated',
    'limits, and the values they name as not honoured are reported with TRL0402. The tables above say the same per field.',
    '',
  ];
  for (const [kind, limits] of byKind) {
    if (limits.length === 0) continue;
    out.push(`### ${kind}`, '', '| Field | Trellis |', '|---|---|');
    for (const { path, f } of limits) out.push(`| \`${path}\` | ${cell(f.unsupported ? `warns (TRL0401): ${f.unsupported}` : `partly: ${f.partial}`)} |`);
    out.push('');
  }
  return out;
}

export function renderConfigDocs(): string {
  const out: string[] = [];
  out.push('# Configuration reference');
  out.push('');
  out.push('<!-- Generated from src/api/schema.ts by scripts/gen-config-docs.ts; do not edit by hand. -->');
  out.push('');
  out.push(
    'Trellis reads Kubernetes-style YAML, many documents per file. Istio, Gateway API and SMI resources are',
    'accepted as written for those projects; fields Trellis cannot honour are reported as warnings naming the',
    'field, never silently ignored. `trellis analyze -f FILE...` checks a set of files; the same checks run when',
    'config is applied to a control plane.',
    '',
    '- **Names**: `reviews`, `reviews.default`, `reviews.default.svc` and `reviews.default.svc.cluster.local` are',
    '  one service; a short name resolves in the resource\'s own namespace, and the namespace defaults to `default`.',
    '- **Root namespace**: policies in `Mesh.spec.rootNamespace` (default `trellis-system`) or in `istio-system`',
    '  apply mesh-wide.',
    '- **Identities**: `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`; principals in policies are',
    '  written without the `spiffe://` prefix, e.g. `cluster.local/ns/default/sa/checkout`.',
    '- **Durations**: `1.5s`, `100ms`, `2m`, `1h`, `1h30m` (units h, m, s, ms, us, ns).',
    '- **Quantities** (TrafficSplit weights): a number, or a Kubernetes quantity such as `900m` (= 0.9).',
    '- **Trellis column**: `yes` = honoured; `warns` = parsed, reported with a warning (TRL0401), and ignored;',
    '  `partly` = honoured with the stated limits (values it cannot honour are reported with TRL0402). The',
    '  [summary at the end](#fields-trellis-does-not-honour) lists all of these fields.',
    '',
  );
  out.push('## Kinds', '', '| Kind | apiVersion | What it is |', '|---|---|---|');
  for (const k of KIND_NAMES) {
    const s = KIND_SCHEMAS[k];
    out.push(`| [${k}](#${k.toLowerCase()}) | ${s.apiVersions.map((v) => `\`${v}\``).join(', ')} | ${cell(s.description)} |`);
  }
  out.push('');
  out.push('## Diagnostics', '', 'Every finding has a stable code. 01xx: syntax and document structure; 02xx: fields and values;', '03xx: cross-resource; 04xx: fields Trellis parses but does not honour.', '');
  out.push('| Code | Severity | Meaning |', '|---|---|---|');
  for (const [code, d] of Object.entries(DIAGNOSTIC_CODES)) out.push(`| ${code} | ${d.severity} | ${cell(d.summary)} |`);
  out.push('');
  out.push('Output format: `file:line:column: severity CODE Kind namespace/name field: message (hint: ...)`.', '');
  out.push('## metadata (every kind)', '', '| Field | Type | Default | Description | Trellis |', '|---|---|---|---|---|');
  const metaRows: string[] = [];
  for (const [k, c] of Object.entries(METADATA_SCHEMA.fields ?? {})) rows(c, `metadata.${k}`, new Map(), metaRows);
  out.push(...metaRows, '');
  const limitsByKind: [string, Limit[]][] = [];
  for (const k of KIND_NAMES) {
    const s = KIND_SCHEMAS[k];
    out.push(`## ${k}`, '');
    out.push(`${s.description}`, '');
    out.push(`apiVersion: ${s.apiVersions.map((v) => `\`${v}\``).join(', ')}. ${s.specRequired ? '`spec` is required.' : '`spec` may be omitted.'}`, '');
    out.push('| Field | Type | Default | Description | Trellis |', '|---|---|---|---|---|');
    const r: string[] = [];
    const seen = new Map<FieldSchema, string>();
    const limits: Limit[] = [];
    for (const [name, c] of Object.entries(s.spec.fields ?? {})) rows(c, `spec.${name}`, seen, r, limits);
    out.push(...r, '');
    limitsByKind.push([k, limits]);
  }
  out.push(...limitsSection(limitsByKind));
  return out.join('\n');
}
