// Store backed by YAML files (a directory tree or one file), reloaded on change; a broken edit is refused as a whole.
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Resource } from '../api/types.js';
import { formatDiagnostic, type Diagnostic } from '../api/diagnostics.js';
import { loadFiles } from '../api/load.js';
import type { ChangeResult, Store, StoreError, StoreListener, StoreSnapshot } from './store.js';
import { StoreRejectedError } from './store.js';
import { ConfigState, isErrorDiagnostic, type Validator } from './state.js';

export interface FileStoreOptions {
  validate?: Validator;
  /** Poll interval backing up fs.watch (some filesystems drop events). */
  pollMs?: number;
  log?: (msg: string) => void;
  /** Loader override for tests. */
  load?: (paths: string[]) => Promise<{ resources: Resource[]; diagnostics: Diagnostic[] }>;
}

const YAML_RE = /\.ya?ml$/i;

/** Every .yaml/.yml file under `root` (or root itself when it is a file), sorted for a stable order. */
export async function yamlFilesUnder(root: string): Promise<string[]> {
  const st = await stat(root);
  if (st.isFile()) return [root];
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue; // editor swap files, .git
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && YAML_RE.test(e.name)) out.push(p);
    }
  };
  await walk(root);
  return out.sort();
}

export class FileStore implements Store {
  readonly kind = 'file';
  private readonly state: ConfigState;
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;
  private signature = '';
  private reloading: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(
    readonly root: string,
    private readonly opts: FileStoreOptions = {},
  ) {
    this.state = new ConfigState(opts.validate);
  }

  async start(): Promise<void> {
    await this.reload();
    try {
      this.watcher = fsWatch(this.root, { recursive: true }, () => this.schedule());
      this.watcher.on('error', () => undefined); // the poll keeps working
    } catch {
      /* recursive watch unsupported here: polling alone */
    }
    this.poll = setInterval(() => void this.checkSignature(), this.opts.pollMs ?? 400);
    this.poll.unref();
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.pending);
    this.pending = setTimeout(() => void this.reload(), 50);
    this.pending.unref();
  }

  private async currentSignature(): Promise<string> {
    try {
      const files = await yamlFilesUnder(this.root);
      const parts = await Promise.all(
        files.map(async (f) => {
          const s = await stat(f);
          return `${f}:${s.mtimeMs}:${s.size}`;
        }),
      );
      return parts.join('|');
    } catch (err) {
      return `error:${(err as Error).message}`;
    }
  }

  private async checkSignature(): Promise<void> {
    if (this.closed || this.reloading) return;
    if ((await this.currentSignature()) !== this.signature) this.schedule();
  }

  /** Reads every file and swaps the config in if it is all good; serialised so reloads never interleave. */
  reload(): Promise<void> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      do {
        this.again = false;
        await this.reloadOnce();
      } while (this.again && !this.closed);
    })().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async reloadOnce(): Promise<void> {
    this.signature = await this.currentSignature();
    let files: string[];
    try {
      files = await yamlFilesUnder(this.root);
    } catch (err) {
      this.refuse(`cannot read config at ${this.root}: ${(err as Error).message}`, []);
      return;
    }
    try {
      const { resources, diagnostics } = await (this.opts.load ?? loadFiles)(files);
      const errors = diagnostics.filter(isErrorDiagnostic);
      if (errors.length) {
        this.refuse(`config in ${this.root} rejected: ${errors.length} error(s); keeping the previous config`, diagnostics);
        return;
      }
      const result = this.state.replace(resources);
      this.state.clearError();
      if (result.changes.length) this.opts.log?.(`config reloaded from ${this.root}: revision ${result.revision}, ${result.changes.length} change(s)`);
    } catch (err) {
      const diags = err instanceof StoreRejectedError ? err.diagnostics : [];
      this.refuse(`config in ${this.root} rejected: ${(err as Error).message}; keeping the previous config`, diags);
    }
  }

  private refuse(message: string, diagnostics: Diagnostic[]): void {
    this.state.recordError(message, diagnostics);
    this.opts.log?.(message);
    for (const d of diagnostics.filter(isErrorDiagnostic)) this.opts.log?.(`  ${formatDiagnostic(d)}`);
  }

  async list(): Promise<Resource[]> {
    return [...this.state.snapshot().resources];
  }

  async get(key: string): Promise<Resource | undefined> {
    return this.state.get(key);
  }

  async apply(_resources: Resource[]): Promise<ChangeResult> {
    throw this.readOnly();
  }

  async delete(_keys: string[]): Promise<ChangeResult> {
    throw this.readOnly();
  }

  private readOnly(): StoreRejectedError {
    return new StoreRejectedError(
      `this control plane reads its config from files (${this.root}); edit the files there instead of using apply/delete`,
      [],
      409,
    );
  }

  watch(listener: StoreListener): () => void {
    return this.state.watch(listener);
  }

  snapshot(): StoreSnapshot {
    return this.state.snapshot();
  }

  lastError(): StoreError | undefined {
    return this.state.lastError();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    clearInterval(this.poll);
    clearTimeout(this.pending);
    await this.reloading;
  }
}
