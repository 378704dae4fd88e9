// Diagnostics: stable codes, one-line formatting, and the helpers every check uses to report.

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  code: string;
  severity: Severity;
  message: string;
  hint?: string;
  file?: string;
  line?: number;
  column?: number;
  kind?: string;
  namespace?: string;
  name?: string;
  /** Path of the field inside the resource, e.g. spec.http[0].route[1].weight */
  field?: string;
}

/**
 * The stable code table. Codes never change meaning once released; new checks get new codes.
 * 01xx syntax and document structure, 02xx fields and values, 03xx cross-resource, 04xx fields
 * Trellis parses but does not (fully) honour.
 */
export const DIAGNOSTIC_CODES: Record<string, { severity: Severity; summary: string }> = {
  TRL0101: { severity: 'error', summary: 'YAML syntax error' },
  TRL0102: { severity: 'error', summary: 'document is not a mapping' },
  TRL0103: { severity: 'error', summary: 'apiVersion or kind missing' },
  TRL0104: { severity: 'error', summary: 'unknown kind' },
  TRL0105: { severity: 'error', summary: 'apiVersion not accepted for this kind' },
  TRL0106: { severity: 'error', summary: 'metadata.name missing' },
  TRL0107: { severity: 'error', summary: 'invalid name (Kubernetes names: lowercase letters, digits, "-" and ".")' },
  TRL0108: { severity: 'error', summary: 'file or directory cannot be read' },
  TRL0109: { severity: 'error', summary: 'spec missing' },
  TRL0201: { severity: 'error', summary: 'unknown field' },
  TRL0202: { severity: 'error', summary: 'wrong type' },
  TRL0203: { severity: 'error', summary: 'route weights do not sum to 100' },
  TRL0204: { severity: 'error', summary: 'required field missing' },
  TRL0205: { severity: 'error', summary: 'value not one of the allowed values' },
  TRL0206: { severity: 'error', summary: 'invalid duration' },
  TRL0207: { severity: 'error', summary: 'percentage out of range 0-100' },
  TRL0208: { severity: 'error', summary: 'regular expression does not compile' },
  TRL0209: { severity: 'error', summary: 'port out of range 1-65535' },
  TRL0210: { severity: 'error', summary: 'invalid HTTP status code' },
  TRL0211: { severity: 'error', summary: 'invalid label key or value' },
  TRL0212: { severity: 'error', summary: 'invalid weight' },
  TRL0213: { severity: 'error', summary: 'fields that exclude each other, or none of a required set' },
  TRL0214: { severity: 'error', summary: 'invalid quantity' },
  TRL0215: { severity: 'error', summary: 'invalid host name' },
  TRL0216: { severity: 'error', summary: 'value out of range' },
  TRL0217: { severity: 'error', summary: 'invalid IP address or CIDR' },
  TRL0218: { severity: 'error', summary: 'JWT rule without issuer' },
  TRL0219: { severity: 'error', summary: 'duplicate entry in a list' },
  TRL0301: { severity: 'error', summary: 'duplicate resource (same kind, namespace and name)' },
  TRL0302: { severity: 'error', summary: 'two VirtualServices claim the same host' },
  TRL0303: { severity: 'error', summary: 'subset not defined by any DestinationRule for the host' },
  TRL0304: { severity: 'warning', summary: 'destination host not declared by any Service, ServiceEntry or Workload' },
  TRL0305: { severity: 'error', summary: 'PeerAuthentications overlap at the same scope' },
  TRL0306: { severity: 'warning', summary: 'selector matches no workload' },
  TRL0307: { severity: 'error', summary: 'two DestinationRules claim the same host' },
  TRL0308: { severity: 'error', summary: 'more than one Mesh resource' },
  TRL0309: { severity: 'error', summary: 'two workloads claim the same local port' },
  TRL0310: { severity: 'warning', summary: 'a VirtualService and a TrafficSplit or HTTPRoute route the same host' },
  TRL0401: { severity: 'warning', summary: 'field not honoured by Trellis' },
  TRL0402: { severity: 'warning', summary: 'value not honoured by Trellis' },
  TRL0403: { severity: 'warning', summary: 'deprecated field' },
};

/** `file:line:col: severity CODE Kind ns/name field: message (hint: ...)` */
export function formatDiagnostic(d: Diagnostic): string {
  let loc = '';
  if (d.file) {
    loc = d.file;
    if (d.line !== undefined) loc += `:${d.line}`;
    if (d.line !== undefined && d.column !== undefined) loc += `:${d.column}`;
    loc += ': ';
  }
  let subject = '';
  if (d.kind) {
    subject += ` ${d.kind}`;
    if (d.name !== undefined) subject += ` ${d.namespace ? `${d.namespace}/` : ''}${d.name}`;
  }
  if (d.field) subject += ` ${d.field}`;
  const hint = d.hint ? ` (hint: ${d.hint})` : '';
  return `${loc}${d.severity} ${d.code}${subject}: ${d.message}${hint}`;
}

export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.severity === 'error');
}

/** Merges lists, drops exact repeats (load and validate both run the schema), sorts by file and position. */
export function mergeDiagnostics(...lists: readonly Diagnostic[][]): Diagnostic[] {
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const list of lists) {
    for (const d of list) {
      const key = [d.code, d.file, d.line, d.column, d.kind, d.namespace, d.name, d.field, d.message].join('\u0000');
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(d);
    }
  }
  return sortDiagnostics(out);
}

export function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  return ds
    .map((d, i) => ({ d, i }))
    .sort(
      (a, b) =>
        (a.d.file ?? '\uffff').localeCompare(b.d.file ?? '\uffff') ||
        (a.d.line ?? 0) - (b.d.line ?? 0) ||
        (a.d.column ?? 0) - (b.d.column ?? 0) ||
        a.i - b.i,
    )
    .map((x) => x.d);
}

/** Edit distance, for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/** The closest candidate within a distance that scales with the word, compared case-insensitively. */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const w = word.toLowerCase();
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  return bestD <= limit ? best : undefined;
}
