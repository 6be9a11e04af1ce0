// A key in a mounted file, re-read when it changes. Kubernetes secret volumes replace the file
// by swapping a symlink in its directory, so the directory is watched and the path is also
// polled by stat: either alone can miss a change on some filesystems.
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from '../telemetry/log.js';
import { SecretReadError } from './errors.js';
import { trimTrailingNewlines } from './extract.js';

export interface FileKeyOptions {
  path: string;
  log: Logger;
  /** How often the file's identity (inode, size, mtime) is checked; default 10 s. */
  pollIntervalMs?: number;
}

export class FileKey {
  private value: string | undefined;
  private identity: string | undefined;
  private inflight: Promise<boolean> | undefined;
  private failure: SecretReadError | undefined;
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: FileKeyOptions) {}

  start(): void {
    const { path, pollIntervalMs = 10_000 } = this.options;
    void this.reread();
    try {
      this.watcher = watch(dirname(path), { persistent: false }, () => this.soon());
      // A watched directory can vanish (volume unmounted); polling carries on regardless.
      this.watcher.on('error', () => this.stopWatching());
    } catch {
      this.watcher = undefined;
    }
    this.poller = setInterval(() => void this.checkIdentity(), pollIntervalMs);
    this.poller.unref?.();
  }

  peek(): string | undefined {
    return this.value;
  }

  ready(): boolean {
    return this.value !== undefined;
  }

  values(): string[] {
    return this.value === undefined ? [] : [this.value];
  }

  async get(): Promise<string> {
    if (this.value !== undefined) return this.value;
    await this.reread();
    if (this.value !== undefined) return this.value;
    throw this.failure ?? new SecretReadError('not_loaded');
  }

  /** Re-reads now; concurrent callers share one read. Never rejects. */
  refresh(): Promise<boolean> {
    return this.reread();
  }

  close(): void {
    this.closed = true;
    this.stopWatching();
    clearInterval(this.poller);
    clearTimeout(this.debounce);
    this.value = undefined;
  }

  private stopWatching(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** Directory events come in bursts during a symlink swap; read once after they settle. */
  private soon(): void {
    if (this.closed) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.reread(), 50);
    this.debounce.unref?.();
  }

  private async checkIdentity(): Promise<void> {
    try {
      if ((await fileIdentity(this.options.path)) !== this.identity) await this.reread();
    } catch {
      await this.reread();
    }
  }

  private reread(): Promise<boolean> {
    this.inflight ??= this.read().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** A failed read keeps the last good value: a half-swapped volume is not a revoked key. */
  private async read(): Promise<boolean> {
    const { path, log } = this.options;
    try {
      const identity = await fileIdentity(path);
      const value = trimTrailingNewlines(await readFile(path, 'utf8'));
      if (value.length === 0) throw new SecretReadError('empty');
      if (this.closed) return false;
      const changed = value !== this.value;
      const replaced = this.value !== undefined && changed;
      this.value = value;
      this.identity = identity;
      this.failure = undefined;
      if (changed) {
        log.info(replaced ? 'credentials file changed' : 'credentials file loaded', {
          event: replaced ? 'secret_rotated' : 'secret_loaded',
          file: basename(path),
          path,
        });
      }
      return changed;
    } catch (caught) {
      const error =
        caught instanceof SecretReadError ? caught : new SecretReadError('file_unreadable');
      const repeated = this.failure?.reason === error.reason;
      this.failure = error;
      if (!repeated && !this.closed) {
        log.warn('credentials file unreadable', {
          event: 'secret_read_failed',
          path,
          reason: error.reason,
          error: errnoCode(caught),
          mode: this.value !== undefined ? 'serving_cached' : 'no_value',
        });
      }
      return false;
    }
  }
}

async function fileIdentity(path: string): Promise<string> {
  const s = await stat(path);
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
}

function errnoCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : undefined;
}
