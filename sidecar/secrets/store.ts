// The key store: one source per distinct credential in the policy, shared by the providers
// that name it, started and stopped as the policy changes.
import type { Logger } from '../telemetry/log.js';
import type { Credentials } from './schema.js';
import { SecretCache, type SecretsManagerAdapter } from './cache.js';
import { CredentialsUnavailableError, SecretReadError, type SecretRef } from './errors.js';
import { FileKey } from './file.js';
import { regionFromArn } from './arn.js';

export interface KeyStore {
  /** Starts sources for the policy's providers; stops and forgets removed ones (values dropped from memory). */
  apply(providers: ReadonlyArray<{ name: string; credentials: Credentials }>): void;
  /** Key from memory when loaded (sync, hot path); undefined when not loaded yet or `none`. */
  peek(provider: string): string | undefined;
  /** The key; the first call waits for the first read; rejects with CredentialsUnavailableError. Resolves undefined for `none`. */
  key(provider: string): Promise<string | undefined>;
  /**
   * After a provider 401/403: re-read now (concurrent callers share one read); true if the value
   * changed. With `rejectedKey` (the key the refused request carried): true if the key now held
   * differs from it, which also covers a rotation that landed just before the refusal.
   */
  refresh(provider: string, rejectedKey?: string): Promise<boolean>;
  /** Every provider's key loaded: readiness. */
  ready(): boolean;
  /**
   * Redaction support: every secret value currently held (telemetry drops them wherever they
   * appear). A value held for two providers appears twice.
   */
  knownValues(): string[];
  /**
   * Managed mode: the keys the operator pushed for `fetchFrom: operator` providers, replacing
   * every earlier push (a provider left out has no key any more).
   */
  setOperatorKeys(keys: readonly OperatorKey[]): void;
  close(): Promise<void>;
}

/**
 * A key the operator read from Secrets Manager and pushed to this pod, for one provider its
 * policy grants. `secretId` names the secret it came from, so a key pushed for a provider's
 * previous credentials is never used for its new ones; `version` is the secret's version id.
 */
export interface OperatorKey {
  provider: string;
  secretId: string;
  version: string;
  value: string;
}

export interface KeyStoreOptions {
  log: Logger;
  /**
   * Whether this process receives keys from the operator (managed mode). Without it a
   * `fetchFrom: operator` provider fails with `operator_push_unavailable`.
   */
  operatorKeys?: boolean;
  /** How long a cached Secrets Manager value is served when it cannot be re-checked; default 1 h. */
  maxStalenessMs?: number;
  clock?: () => number;
  /**
   * Builds the Secrets Manager adapter for a region (undefined: the SDK's default region).
   * Default: the AWS SDK adapter, loaded on first use so processes without AWS credentials
   * in their policy never load the SDK.
   */
  secretsManager?: (region: string | undefined) => SecretsManagerAdapter;
  /** Spreads background refreshes; in [0, 1). */
  random?: () => number;
  /** How often mounted key files are stat'ed in addition to being watched; default 10 s. */
  filePollIntervalMs?: number;
  /** Told of every Secrets Manager read or version check (the credential-refresh metric). */
  onRefresh?: (secretId: string, outcome: 'ok' | 'error') => void;
}

const DEFAULT_MAX_STALENESS_MS = 60 * 60 * 1000;
const DEFAULT_REFRESH_SECONDS = 300;
const DEFAULT_STAGE = 'AWSCURRENT';

interface KeySource {
  peek(): string | undefined;
  get(): Promise<string | undefined>;
  refresh(): Promise<boolean>;
  ready(): boolean;
  values(): string[];
  close(): void;
}

interface Shared {
  source: KeySource;
  users: number;
}

interface ProviderEntry {
  fingerprint: string;
  sourceKey: string;
  ref: SecretRef;
  source: KeySource;
}

export function createKeyStore(options: KeyStoreOptions): KeyStore {
  return new SourcesKeyStore(options);
}

class SourcesKeyStore implements KeyStore {
  private readonly providers = new Map<string, ProviderEntry>();
  private readonly shared = new Map<string, Shared>();
  private readonly adapters = new Map<string, SecretsManagerAdapter & { close?(): unknown }>();
  /** The operator's latest push, by provider. */
  private pushed = new Map<string, OperatorKey>();
  private readonly clock: () => number;
  private readonly maxStalenessMs: number;

  constructor(private readonly options: KeyStoreOptions) {
    this.clock = options.clock ?? Date.now;
    this.maxStalenessMs = options.maxStalenessMs ?? DEFAULT_MAX_STALENESS_MS;
  }

  apply(providers: ReadonlyArray<{ name: string; credentials: Credentials }>): void {
    const wanted = new Set(providers.map((p) => p.name));
    for (const { name, credentials } of providers) {
      const fingerprint = JSON.stringify(credentials);
      const existing = this.providers.get(name);
      if (existing?.fingerprint === fingerprint) continue;
      const { sourceKey, ref, source } = this.acquire(name, credentials);
      this.providers.set(name, { fingerprint, sourceKey, ref, source });
      if (existing) this.release(existing.sourceKey);
    }
    for (const [name, entry] of this.providers) {
      if (wanted.has(name)) continue;
      this.providers.delete(name);
      this.release(entry.sourceKey);
    }
    this.options.log.debug('credentials applied', {
      event: 'credentials_applied',
      providers: [...wanted],
      count: this.shared.size,
    });
  }

  peek(provider: string): string | undefined {
    return this.providers.get(provider)?.source.peek();
  }

  async key(provider: string): Promise<string | undefined> {
    const entry = this.providers.get(provider);
    if (!entry) throw new CredentialsUnavailableError(provider, undefined, 'unknown_provider');
    try {
      return await entry.source.get();
    } catch (error) {
      if (error instanceof SecretReadError) {
        throw new CredentialsUnavailableError(provider, entry.ref, error.reason, error.awsError);
      }
      throw new CredentialsUnavailableError(provider, entry.ref, 'not_loaded');
    }
  }

  async refresh(provider: string, rejectedKey?: string): Promise<boolean> {
    const entry = this.providers.get(provider);
    if (!entry) return false;
    const changed = await entry.source.refresh();
    if (rejectedKey === undefined) return changed;
    const current = entry.source.peek();
    return current !== undefined && current !== rejectedKey;
  }

  ready(): boolean {
    for (const entry of this.providers.values()) if (!entry.source.ready()) return false;
    return true;
  }

  knownValues(): string[] {
    // Called on every request (telemetry's secrets view), which removes duplicates itself.
    const values: string[] = [];
    for (const { source } of this.shared.values()) values.push(...source.values());
    for (const { value } of this.pushed.values()) values.push(value);
    return values;
  }

  setOperatorKeys(keys: readonly OperatorKey[]): void {
    // Assigning replaces the only references to the values of the previous push.
    this.pushed = new Map(keys.map((k) => [k.provider, k]));
    this.options.log.info('keys received from the operator', {
      event: 'operator_keys',
      providers: keys.map((k) => k.provider),
      versions: keys.map((k) => k.version),
    });
  }

  async close(): Promise<void> {
    for (const { source } of this.shared.values()) source.close();
    this.shared.clear();
    this.providers.clear();
    this.pushed = new Map();
    await Promise.all([...this.adapters.values()].map(async (a) => a.close?.()));
    this.adapters.clear();
  }

  private acquire(
    name: string,
    credentials: Credentials,
  ): {
    sourceKey: string;
    ref: SecretRef;
    source: KeySource;
  } {
    const planned = this.plan(name, credentials);
    let shared = this.shared.get(planned.sourceKey);
    if (!shared) {
      shared = { source: planned.create(), users: 0 };
      this.shared.set(planned.sourceKey, shared);
    }
    shared.users += 1;
    planned.join?.(shared.source);
    return { sourceKey: planned.sourceKey, ref: planned.ref, source: shared.source };
  }

  private release(sourceKey: string): void {
    const shared = this.shared.get(sourceKey);
    if (!shared) return;
    shared.users -= 1;
    if (shared.users > 0) return;
    shared.source.close();
    this.shared.delete(sourceKey);
  }

  /** What a credential needs: the key it is shared under, how to start it, how to join it. */
  private plan(
    name: string,
    credentials: Credentials,
  ): {
    sourceKey: string;
    ref: SecretRef;
    create: () => KeySource;
    join?: (source: KeySource) => void;
  } {
    if ('none' in credentials) {
      return { sourceKey: 'none', ref: { id: 'none', kind: 'none' }, create: () => noKey };
    }
    if ('file' in credentials) {
      const { path } = credentials.file;
      return {
        sourceKey: `file\0${path}`,
        ref: { id: path, kind: 'file' },
        create: () => {
          const source = new FileKey({
            path,
            log: this.options.log,
            ...(this.options.filePollIntervalMs !== undefined
              ? { pollIntervalMs: this.options.filePollIntervalMs }
              : {}),
          });
          source.start();
          return source;
        },
      };
    }
    const aws = credentials.awsSecretsManager;
    const ref: SecretRef = {
      id: aws.secretId,
      kind: 'awsSecretsManager',
      ...(aws.jsonKey !== undefined ? { jsonKey: aws.jsonKey } : {}),
    };
    const region = aws.region ?? regionFromArn(aws.secretId);
    const stage = aws.versionStage ?? DEFAULT_STAGE;
    const refreshIntervalMs = (aws.refreshIntervalSeconds ?? DEFAULT_REFRESH_SECONDS) * 1000;
    if (aws.fetchFrom === 'operator') {
      // Pushes are per provider: the source is the provider's own, not the secret's.
      return {
        sourceKey: `operator\0${name}\0${aws.secretId}`,
        ref,
        create: () =>
          this.options.operatorKeys
            ? this.pushedKey(name, aws.secretId)
            : failing(new SecretReadError('operator_push_unavailable')),
      };
    }
    return {
      sourceKey: ['aws', region ?? '', aws.secretId, stage, aws.jsonKey ?? ''].join('\0'),
      ref,
      create: () => {
        const cache = new SecretCache({
          secretId: aws.secretId,
          versionStage: stage,
          ...(aws.jsonKey !== undefined ? { jsonKey: aws.jsonKey } : {}),
          refreshIntervalMs,
          maxStalenessMs: this.maxStalenessMs,
          adapter: this.adapterFor(region),
          log: this.options.log,
          clock: this.clock,
          ...(this.options.random ? { random: this.options.random } : {}),
          ...(this.options.onRefresh ? { onRefresh: this.options.onRefresh } : {}),
        });
        cache.start();
        return cache;
      },
      join: (source) => (source as SecretCache).tightenRefreshInterval(refreshIntervalMs),
    };
  }

  /**
   * A provider's key as the operator last pushed it. Nothing to read and nothing to refresh:
   * after a 401 the caller compares the key it used with the latest push (`refresh`).
   */
  private pushedKey(provider: string, secretId: string): KeySource {
    const peek = (): string | undefined => {
      const key = this.pushed.get(provider);
      return key?.secretId === secretId ? key.value : undefined;
    };
    return {
      peek,
      get: async () => {
        const value = peek();
        if (value === undefined) throw new SecretReadError('operator_key_not_received');
        return value;
      },
      refresh: async () => false,
      ready: () => peek() !== undefined,
      // knownValues() covers every pushed value, used or not.
      values: () => [],
      close: () => undefined,
    };
  }

  private adapterFor(region: string | undefined): SecretsManagerAdapter {
    const key = region ?? '';
    let adapter = this.adapters.get(key);
    if (!adapter) {
      adapter = this.options.secretsManager?.(region) ?? lazyAwsAdapter(region);
      this.adapters.set(key, adapter);
    }
    return adapter;
  }
}

/** `none`: nothing to inject, always ready. */
const noKey: KeySource = {
  peek: () => undefined,
  get: async () => undefined,
  refresh: async () => false,
  ready: () => true,
  values: () => [],
  close: () => undefined,
};

function failing(error: SecretReadError): KeySource {
  return {
    peek: () => undefined,
    get: async () => {
      throw error;
    },
    refresh: async () => false,
    ready: () => false,
    values: () => [],
    close: () => undefined,
  };
}

/** The SDK adapter, imported on first use: the SDK costs memory a file-only sidecar need not pay. */
export function lazyAwsAdapter(
  region: string | undefined,
): SecretsManagerAdapter & { close(): unknown } {
  const loaded = import('./aws.js').then((m) => m.createSecretsManagerAdapter(region));
  loaded.catch(() => undefined);
  return {
    describe: async (secretId) => (await loaded).describe(secretId),
    getValue: async (secretId, stage) => (await loaded).getValue(secretId, stage),
    close: async () => (await loaded.catch(() => undefined))?.close(),
  };
}
