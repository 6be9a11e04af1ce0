// One cached secret from a versioned store (AWS Secrets Manager): read once, refreshed in the
// background, checked by version before it is read again, served stale only within a bound.
import type { Logger } from '../telemetry/log.js';
import { SecretReadError } from './errors.js';
import { extractKey } from './extract.js';

/** The two calls the cache needs; `aws.ts` implements them with the AWS SDK. */
export interface SecretsManagerAdapter {
  describe(secretId: string): Promise<{
    versionIdsToStages: Record<string, string[]>;
    lastChangedDate?: Date;
    lastRotatedDate?: Date;
    createdDate?: Date;
  }>;
  getValue(
    secretId: string,
    versionStage: string,
  ): Promise<{ versionId: string; secretString?: string }>;
}

export interface SecretCacheOptions {
  secretId: string;
  versionStage: string;
  jsonKey?: string;
  refreshIntervalMs: number;
  maxStalenessMs: number;
  adapter: SecretsManagerAdapter;
  log: Logger;
  clock: () => number;
  /** In [0, 1); spreads refreshes so many caches do not hit Secrets Manager at once. */
  random?: () => number;
  /** Forced refreshes (after a provider 401/403) closer together than this reuse the last read. */
  minForcedRefreshMs?: number;
  /** Told of every read or version check, for the credential-refresh metric. */
  onRefresh?: (secretId: string, outcome: 'ok' | 'error') => void;
  /** Told when the value held changes (first load, rotation); never given the value. */
  onChange?: (secretId: string) => void;
}

/** What a cache can say about itself without its value: for status and delivery. */
export interface SecretCacheState {
  /** The version id of the value held, if any. */
  version?: string;
  /** A value is held and within the staleness bound. */
  usable: boolean;
  /** Why the latest read failed; absent after a good read. */
  failure?: SecretReadError;
}

const MAX_RETRY_MS = 60_000;
const FIRST_RETRY_MS = 1_000;

export class SecretCache {
  private value: string | undefined;
  private versionId: string | undefined;
  private verifiedAt: number | undefined;
  private inflight: Promise<boolean> | undefined;
  private failure: { error: SecretReadError; at: number; count: number } | undefined;
  private lastForcedAt: number | undefined;
  private lastForcedChanged = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private refreshIntervalMs: number;

  constructor(private readonly options: SecretCacheOptions) {
    this.refreshIntervalMs = options.refreshIntervalMs;
  }

  /** Starts the first read; requests that arrive before it finishes wait for it in `get`. */
  start(): void {
    void this.load().catch(() => undefined);
  }

  /** Several providers may share this cache; the most frequent refresh asked for wins. */
  tightenRefreshInterval(ms: number): void {
    if (ms >= this.refreshIntervalMs) return;
    this.refreshIntervalMs = ms;
    if (!this.inflight) this.schedule();
  }

  /** The value when loaded and within the staleness bound. Never does I/O. */
  peek(now: number = this.options.clock()): string | undefined {
    if (this.value === undefined || this.verifiedAt === undefined) return undefined;
    return now - this.verifiedAt <= this.options.maxStalenessMs ? this.value : undefined;
  }

  ready(): boolean {
    return this.peek() !== undefined;
  }

  state(now: number = this.options.clock()): SecretCacheState {
    return {
      ...(this.versionId !== undefined ? { version: this.versionId } : {}),
      usable: this.peek(now) !== undefined,
      ...(this.failure ? { failure: this.failure.error } : {}),
    };
  }

  /** Every value held: at most one, the current version's. */
  values(): string[] {
    return this.value === undefined ? [] : [this.value];
  }

  /**
   * The value, waiting only when none is usable yet (first read, or past the staleness bound).
   * Right after a failed read the last error is returned at once rather than asking again,
   * so a missing secret cannot turn request traffic into Secrets Manager traffic.
   */
  async get(): Promise<string> {
    const now = this.options.clock();
    const current = this.peek(now);
    if (current !== undefined) return current;
    const backingOff =
      this.failure !== undefined && now - this.failure.at < this.retryDelayMs(this.failure.count);
    if (this.inflight || !backingOff) await this.load().catch(() => undefined);
    const loaded = this.peek();
    if (loaded !== undefined) return loaded;
    throw this.unavailable();
  }

  /**
   * Re-reads now (after the provider refused the key). Joins a read already in flight, and
   * answers with the previous forced read's outcome when it was moments ago. Never rejects:
   * on failure the cached value stays in service and the answer is "unchanged".
   */
  async refresh(): Promise<boolean> {
    if (this.inflight) return this.inflight.catch(() => false);
    const now = this.options.clock();
    const minGap = this.options.minForcedRefreshMs ?? 5_000;
    // A burst of 401s after a rotation: the first caller's read answers the rest.
    if (this.lastForcedAt !== undefined && now - this.lastForcedAt < minGap) {
      return this.lastForcedChanged;
    }
    this.lastForcedAt = now;
    this.lastForcedChanged = await this.load().catch(() => false);
    return this.lastForcedChanged;
  }

  /** Drops the value from memory and stops refreshing. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.value = undefined;
    this.versionId = undefined;
    this.verifiedAt = undefined;
  }

  private unavailable(): SecretReadError {
    const last = this.failure?.error;
    if (this.value !== undefined) return new SecretReadError('stale', last?.awsError);
    return last ?? new SecretReadError('not_loaded');
  }

  /** One read at a time: every caller that arrives while it runs shares its outcome. */
  private load(): Promise<boolean> {
    if (this.closed) return Promise.reject(new SecretReadError('not_loaded'));
    if (!this.inflight) {
      this.inflight = this.read().finally(() => {
        this.inflight = undefined;
        this.schedule();
      });
    }
    return this.inflight;
  }

  /** Resolves whether the value changed. A read never replaces a good value with a bad one. */
  private async read(): Promise<boolean> {
    const { adapter, secretId, versionStage, jsonKey, log, clock } = this.options;
    const started = clock();
    try {
      if (this.versionId !== undefined) {
        const described = await adapter.describe(secretId);
        if (versionWithStage(described.versionIdsToStages, versionStage) === this.versionId) {
          if (this.closed) return false;
          this.verifiedAt = clock();
          this.failure = undefined;
          this.options.onRefresh?.(secretId, 'ok');
          log.debug('secret version unchanged', {
            event: 'secret_unchanged',
            secretId,
            version: this.versionId,
            durationMs: clock() - started,
          });
          return false;
        }
      }
      const got = await adapter.getValue(secretId, versionStage);
      const value = extractKey(got.secretString, jsonKey);
      if (this.closed) return false;
      const changed = value !== this.value;
      const rotated = this.value !== undefined && changed;
      // Assigning replaces the only reference to the previous version's value.
      this.value = value;
      this.versionId = got.versionId;
      this.verifiedAt = clock();
      this.failure = undefined;
      this.options.onRefresh?.(secretId, 'ok');
      log.info(rotated ? 'secret rotated' : 'secret loaded', {
        event: rotated ? 'secret_rotated' : 'secret_loaded',
        secretId,
        version: got.versionId,
        durationMs: clock() - started,
      });
      if (changed) this.options.onChange?.(secretId);
      return changed;
    } catch (caught) {
      const error = caught instanceof SecretReadError ? caught : new SecretReadError('aws_error');
      const count = (this.failure?.count ?? 0) + 1;
      this.failure = { error, at: clock(), count };
      this.options.onRefresh?.(secretId, 'error');
      log.warn('secret read failed', {
        event: 'secret_read_failed',
        secretId,
        reason: error.reason,
        error: error.awsError,
        attempt: count,
        mode: this.peek() !== undefined ? 'serving_cached' : 'no_value',
      });
      throw error;
    }
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    const base = this.failure ? this.retryDelayMs(this.failure.count) : this.refreshBaseMs();
    // Before expiry, with jitter: somewhere in the last fifth of the interval.
    const delay = Math.max(
      1,
      Math.round(base * (0.8 + 0.2 * (this.options.random ?? Math.random)())),
    );
    this.timer = setTimeout(() => void this.load().catch(() => undefined), delay);
    this.timer.unref?.();
  }

  /** Refresh often enough that a healthy cache never goes stale between reads. */
  private refreshBaseMs(): number {
    return Math.min(this.refreshIntervalMs, this.options.maxStalenessMs / 2);
  }

  private retryDelayMs(failures: number): number {
    return Math.min(FIRST_RETRY_MS * 2 ** (failures - 1), MAX_RETRY_MS, this.refreshBaseMs());
  }
}

function versionWithStage(
  versionIdsToStages: Record<string, string[]>,
  stage: string,
): string | undefined {
  for (const [versionId, stages] of Object.entries(versionIdsToStages)) {
    if (stages.includes(stage)) return versionId;
  }
  return undefined;
}
