// The operator's reads of AWS Secrets Manager: one SecretCache per secret that policies fetch
// through the operator (`fetchFrom: operator`), shared by every pod it is pushed to, and one
// DescribeSecret per referenced secret (either fetchFrom) for its age in LlmPolicy status.
// Values leave this module only in keysFor(), for a policy that grants their provider.
import type { CompiledPolicy } from '../../sidecar/policy/compiled.js';
import {
  SecretCache,
  SecretReadError,
  lazyAwsAdapter,
  regionFromArn,
  type AwsSecretsManagerCredentials,
  type OperatorKey,
  type SecretCacheState,
  type SecretsManagerAdapter,
} from '../../sidecar/secrets/index.js';
import type { Logger } from '../../sidecar/telemetry/log.js';

export interface SecretRegistryOptions {
  log: Logger;
  /** The region of secrets that name none (neither field nor ARN); else the SDK's default chain. */
  defaultRegion?: string;
  /** Builds the adapter for a region; default: the AWS SDK adapter, loaded on first use. */
  adapterFor?(region: string | undefined): SecretsManagerAdapter & { close?(): unknown };
  clock?: () => number;
  random?: () => number;
  /** How long a value that cannot be re-checked is still pushed; default 1 h (as in sidecars). */
  maxStalenessMs?: number;
  /** How often each referenced secret is described for its age; default 10 min. */
  describeIntervalMs?: number;
  /** A value changed (first read, rotation): pods granted it need their keys pushed again. */
  onKeysChanged(): void;
  /** A read or a describe finished: what status reports may have changed. */
  onObserved?(): void;
}

/** What the operator knows about one referenced secret, without its value. */
export interface SecretObservation {
  /** When the secret last changed (DescribeSecret), as far as the operator could tell. */
  lastChanged?: Date;
  /** Why the latest DescribeSecret failed; absent after a good one. */
  describeFailure?: SecretReadError;
  /** fetchFrom operator only: the value cache's state. */
  read?: SecretCacheState;
}

interface Described {
  lastChanged?: Date;
  failure?: SecretReadError;
}

const DEFAULT_MAX_STALENESS_MS = 60 * 60 * 1000;
const DEFAULT_DESCRIBE_INTERVAL_MS = 10 * 60 * 1000;
const DEFAULT_STAGE = 'AWSCURRENT';
const DEFAULT_REFRESH_SECONDS = 300;

export class SecretRegistry {
  private readonly caches = new Map<string, SecretCache>();
  /** Whether each cache held a pushable value at its last read, to notice when it stops. */
  private readonly usable = new Map<string, boolean>();
  private readonly described = new Map<string, Described>();
  /** Secrets to describe: key → where. */
  private describeTargets = new Map<string, { region?: string; secretId: string }>();
  private readonly adapters = new Map<string, SecretsManagerAdapter & { close?(): unknown }>();
  private readonly describing = new Set<string>();
  private readonly timer: NodeJS.Timeout;
  private readonly clock: () => number;
  private closed = false;

  constructor(private readonly options: SecretRegistryOptions) {
    this.clock = options.clock ?? Date.now;
    this.timer = setInterval(() => {
      for (const key of this.describeTargets.keys()) this.describe(key);
    }, options.describeIntervalMs ?? DEFAULT_DESCRIBE_INTERVAL_MS);
    this.timer.unref();
  }

  /**
   * The secrets every LlmPolicy references, as compiled credentials: caches start for new
   * `fetchFrom: operator` ones and stop (value dropped) for ones no longer referenced.
   */
  sync(refs: readonly AwsSecretsManagerCredentials[]): void {
    if (this.closed) return;
    const wanted = new Map<string, AwsSecretsManagerCredentials>();
    const targets = new Map<string, { region?: string; secretId: string }>();
    for (const ref of refs) {
      const region = this.regionOf(ref);
      targets.set(describeKey(region, ref.secretId), {
        ...(region ? { region } : {}),
        secretId: ref.secretId,
      });
      if (ref.fetchFrom !== 'operator') continue;
      const key = this.valueKey(ref);
      const interval = wanted.get(key)?.refreshIntervalSeconds ?? Infinity;
      if ((ref.refreshIntervalSeconds ?? DEFAULT_REFRESH_SECONDS) < interval) wanted.set(key, ref);
    }
    for (const [key, ref] of wanted) this.cacheFor(ref, key);
    for (const [key, cache] of this.caches) {
      if (wanted.has(key)) continue;
      cache.close();
      this.caches.delete(key);
      this.usable.delete(key);
    }
    const previous = this.describeTargets;
    this.describeTargets = targets;
    for (const key of targets.keys()) if (!previous.has(key)) this.describe(key);
    for (const key of this.described.keys()) if (!targets.has(key)) this.described.delete(key);
  }

  /**
   * The keys a pod gets with this compiled policy: one per provider it grants whose credentials
   * say `fetchFrom: operator`, when the value is held and fresh. Nothing for any other provider.
   */
  keysFor(policy: CompiledPolicy): OperatorKey[] {
    const keys: OperatorKey[] = [];
    for (const provider of policy.providers) {
      const credentials = provider.credentials;
      if (!('awsSecretsManager' in credentials)) continue;
      const ref = credentials.awsSecretsManager;
      if (ref.fetchFrom !== 'operator') continue;
      const cache = this.cacheFor(ref, this.valueKey(ref));
      const value = cache?.peek();
      if (value === undefined) continue;
      keys.push({
        provider: provider.name,
        secretId: ref.secretId,
        version: cache?.state().version ?? '',
        value,
      });
    }
    return keys;
  }

  /** For status: the secret's age and, for `fetchFrom: operator`, how its reads go. */
  observe(ref: AwsSecretsManagerCredentials): SecretObservation {
    const described = this.described.get(describeKey(this.regionOf(ref), ref.secretId));
    const cache = ref.fetchFrom === 'operator' ? this.caches.get(this.valueKey(ref)) : undefined;
    return {
      ...(described?.lastChanged ? { lastChanged: described.lastChanged } : {}),
      ...(described?.failure ? { describeFailure: described.failure } : {}),
      ...(cache ? { read: cache.state() } : {}),
    };
  }

  /** Every value held, for redaction by the operator's logger. */
  knownValues(): string[] {
    return [...this.caches.values()].flatMap((c) => c.values());
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    for (const cache of this.caches.values()) cache.close();
    this.caches.clear();
    await Promise.all([...this.adapters.values()].map(async (a) => a.close?.()));
    this.adapters.clear();
  }

  private regionOf(ref: AwsSecretsManagerCredentials): string | undefined {
    return ref.region ?? regionFromArn(ref.secretId) ?? this.options.defaultRegion;
  }

  private valueKey(ref: AwsSecretsManagerCredentials): string {
    return [
      this.regionOf(ref) ?? '',
      ref.secretId,
      ref.versionStage ?? DEFAULT_STAGE,
      ref.jsonKey ?? '',
    ].join('\0');
  }

  private cacheFor(ref: AwsSecretsManagerCredentials, key: string): SecretCache | undefined {
    if (this.closed) return undefined;
    const refreshIntervalMs = (ref.refreshIntervalSeconds ?? DEFAULT_REFRESH_SECONDS) * 1000;
    const existing = this.caches.get(key);
    if (existing) {
      existing.tightenRefreshInterval(refreshIntervalMs);
      return existing;
    }
    const region = this.regionOf(ref);
    const cache = new SecretCache({
      secretId: ref.secretId,
      versionStage: ref.versionStage ?? DEFAULT_STAGE,
      ...(ref.jsonKey !== undefined ? { jsonKey: ref.jsonKey } : {}),
      refreshIntervalMs,
      maxStalenessMs: this.options.maxStalenessMs ?? DEFAULT_MAX_STALENESS_MS,
      adapter: this.adapterFor(region),
      log: this.options.log,
      clock: this.clock,
      ...(this.options.random ? { random: this.options.random } : {}),
      onRefresh: () => {
        this.observed();
        // Past the staleness bound after failed reads: pods holding the value must drop it.
        const usable = cache.peek() !== undefined;
        if (this.usable.get(key) === true && !usable) this.call(() => this.options.onKeysChanged());
        this.usable.set(key, usable);
      },
      onChange: () => {
        // A new value (a rotation) is a new LastChangedDate: look again now.
        this.describe(describeKey(region, ref.secretId));
        this.call(() => this.options.onKeysChanged());
      },
    });
    this.caches.set(key, cache);
    cache.start();
    return cache;
  }

  /** One DescribeSecret at a time per secret; failures keep the last date known. */
  private describe(key: string): void {
    const target = this.describeTargets.get(key);
    if (!target || this.describing.has(key) || this.closed) return;
    this.describing.add(key);
    const adapter = this.adapterFor(target.region);
    adapter
      .describe(target.secretId)
      .then(
        (out) => {
          const lastChanged = out.lastChangedDate ?? out.lastRotatedDate ?? out.createdDate;
          return lastChanged ? { lastChanged } : {};
        },
        (caught: unknown): Described => {
          const failure =
            caught instanceof SecretReadError ? caught : new SecretReadError('aws_error');
          const before = this.described.get(key)?.lastChanged;
          this.options.log.debug('secret not described', {
            event: 'secret_describe_failed',
            secretId: target.secretId,
            reason: failure.reason,
            error: failure.awsError,
          });
          return { ...(before ? { lastChanged: before } : {}), failure };
        },
      )
      .then((result) => {
        this.describing.delete(key);
        if (this.closed || !this.describeTargets.has(key)) return;
        this.described.set(key, result);
        this.observed();
      })
      .catch(() => this.describing.delete(key));
  }

  private adapterFor(region: string | undefined): SecretsManagerAdapter {
    const key = region ?? '';
    let adapter = this.adapters.get(key);
    if (!adapter) {
      adapter = this.options.adapterFor?.(region) ?? lazyAwsAdapter(region);
      this.adapters.set(key, adapter);
    }
    return adapter;
  }

  private observed(): void {
    this.call(() => this.options.onObserved?.());
  }

  private call(hook: () => void): void {
    try {
      hook();
    } catch (err) {
      this.options.log.error('secret hook failed', {
        reason: (err as { message?: string }).message ?? 'error',
      });
    }
  }
}

function describeKey(region: string | undefined, secretId: string): string {
  return `${region ?? ''}\0${secretId}`;
}
