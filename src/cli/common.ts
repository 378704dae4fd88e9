// Shared CLI plumbing: argument parsing with --help, the control-plane address, JSON/table output.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { readFileSync } from 'node:fs';

export const TRELLIS_VERSION: string = (() => {
  try {
    return JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;
  } catch {
    return '0.0.0';
  }
})();

/** A failure the user caused or can fix: printed as one line, no stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export const CONTROL_OPTION: OptionSpec = {
  control: { type: 'string' },
};
export const OUTPUT_OPTION: OptionSpec = {
  output: { type: 'string', short: 'o' },
};

/**
 * Parses argv for one verb. Prints `help` and returns undefined on --help;
 * unknown options become a CliError naming the option.
 */
export function parseVerbArgs<O extends OptionSpec>(
  argv: string[],
  options: O,
  help: string,
  allowPositionals = true,
): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } | undefined {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(help.trim());
    return undefined;
  }
  try {
    const r = parseArgs({ args: argv, options, allowPositionals, strict: true });
    return { values: r.values as Record<string, string | boolean | string[] | undefined>, positionals: r.positionals };
  } catch (err) {
    const msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new CliError(`${msg} (see --help)`);
  }
}

/** The control plane's HTTP address: --control, then TRELLIS_CONTROL, then the default. */
export function controlAddress(value: unknown): string {
  const v = (typeof value === 'string' && value) || process.env.TRELLIS_CONTROL || '127.0.0.1:15014';
  return v.replace(/^https?:\/\//, '');
}

/** Calls the control plane's HTTP API; failures become one clear line. */
export async function controlApi<T = unknown>(
  addr: string,
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<T> {
  const url = `http://${addr}${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: init.method ?? 'GET',
      headers: init.body !== undefined ? { 'content-type': 'application/json' } : undefined,
      body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new CliError(`cannot reach the control plane at ${addr} (${cause}); start it with \`trellis control\` or set --control`);
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    /* plain-text body */
  }
  if (!res.ok) {
    const msg =
      body && typeof body === 'object' && 'error' in body ? String((body as { error: unknown }).error) : String(text).trim();
    throw new CliError(`${init.method ?? 'GET'} ${path}: ${res.status} ${msg}`);
  }
  return body as T;
}

/** Prints rows as an aligned table. */
export function printTable(headers: string[], rows: (string | number)[][]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? '').length)));
  const line = (cells: (string | number)[]) =>
    cells
      .map((c, i) => String(c ?? '').padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  console.log(line(headers));
  for (const r of rows) console.log(line(r));
}

export function wantsJson(values: Record<string, unknown>): boolean {
  const o = values.output;
  if (o === undefined) return false;
  if (o === 'json') return true;
  throw new CliError(`unsupported output format "${String(o)}" (only -o json)`);
}
