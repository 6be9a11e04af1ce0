import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { SecretCache, type SecretsManagerAdapter } from './cache.js';
import { SecretReadError } from './errors.js';
import type { Logger } from '../telemetry/log.js';

const MINUTE = 60_000;
const canary = (): string => ['sk', 'unit', randomBytes(8).toString('hex')].join('-');

/** An in-memory Secrets Manager: versions, a current one, optional latency and failure. */
function fakeSecretsManager(first: string) {
  const state = {
    versions: new Map<string, string>([['v1', first]]),
    current: 'v1',
    latencyMs: 0,
    failWith: undefined as SecretReadError | undefined,
    describes: 0,
    gets: 0,
  };
  const delay = () =>
    state.latencyMs > 0 ? new Promise((r) => setTimeout(r, state.latencyMs)) : Promise.resolve();
  const adapter: SecretsManagerAdapter = {
    async describe() {
      state.describes += 1;
      await delay();
      if (state.failWith) throw state.failWith;
      return { versionIdsToStages: { [state.current]: ['AWSCURRENT'], old: ['AWSPREVIOUS'] } };
    },
    async getValue() {
      state.gets += 1;
      await delay();
      if (state.failWith) throw state.failWith;
      return { versionId: state.current, secretString: state.versions.get(state.current) };
    },
  };
  const rotate = (value: string) => {
    const id = `v${state.versions.size + 1}`;
    state.versions.set(id, value);
    state.current = id;
  };
  return { state, adapter, rotate };
}

const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} };

function cacheFor(
  adapter: SecretsManagerAdapter,
  overrides: Partial<ConstructorParameters<typeof SecretCache>[0]> = {},
) {
  return new SecretCache({
    secretId: 'llm/openai',
    versionStage: 'AWSCURRENT',
    refreshIntervalMs: 5 * MINUTE,
    maxStalenessMs: 60 * MINUTE,
    adapter,
    log: quiet,
    clock: () => Date.now(),
    random: () => 0.5,
    ...overrides,
  });
}

describe('SecretCache', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('makes one call for many concurrent first requests', async () => {
    const key = canary();
    const sm = fakeSecretsManager(key);
    sm.state.latencyMs = 100;
    const cache = cacheFor(sm.adapter);
    const waiting = Array.from({ length: 25 }, () => cache.get());
    expect(cache.peek()).toBeUndefined();
    await jest.advanceTimersByTimeAsync(100);
    await expect(Promise.all(waiting)).resolves.toEqual(Array(25).fill(key));
    expect(sm.state.gets).toBe(1);
    expect(sm.state.describes).toBe(0);
    cache.close();
  });

  it('refreshes in the background before expiry and skips the read when the version is unchanged', async () => {
    const key = canary();
    const sm = fakeSecretsManager(key);
    const cache = cacheFor(sm.adapter, { random: () => 0 });
    cache.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(cache.peek()).toBe(key);
    // random 0 → 80% of the 5-minute interval.
    await jest.advanceTimersByTimeAsync(4 * MINUTE - 1);
    expect(sm.state.describes).toBe(0);
    await jest.advanceTimersByTimeAsync(1);
    expect(sm.state.describes).toBe(1);
    expect(sm.state.gets).toBe(1);
    await jest.advanceTimersByTimeAsync(4 * MINUTE);
    expect(sm.state.describes).toBe(2);
    expect(sm.state.gets).toBe(1);
    cache.close();
  });

  it('serves the cached value without waiting while a refresh is slow', async () => {
    const key = canary();
    const sm = fakeSecretsManager(key);
    const cache = cacheFor(sm.adapter);
    cache.start();
    await jest.advanceTimersByTimeAsync(0);
    sm.state.latencyMs = 30_000;
    await jest.advanceTimersByTimeAsync(5 * MINUTE);
    expect(sm.state.describes).toBe(1); // in flight
    expect(cache.peek()).toBe(key);
    await expect(cache.get()).resolves.toBe(key);
    cache.close();
  });

  it('picks up a rotation within the refresh interval and keeps only the new value', async () => {
    const before = canary();
    const after = canary();
    const sm = fakeSecretsManager(before);
    const cache = cacheFor(sm.adapter);
    cache.start();
    await jest.advanceTimersByTimeAsync(0);
    sm.rotate(after);
    expect(cache.peek()).toBe(before);
    await jest.advanceTimersByTimeAsync(5 * MINUTE);
    expect(cache.peek()).toBe(after);
    expect(cache.values()).toEqual([after]);
    expect(sm.state.gets).toBe(2);
    cache.close();
  });

  it('serves the cached value while Secrets Manager is unreachable, then fails closed after the staleness bound', async () => {
    const key = canary();
    const sm = fakeSecretsManager(key);
    const cache = cacheFor(sm.adapter);
    cache.start();
    await jest.advanceTimersByTimeAsync(0);
    sm.state.failWith = new SecretReadError('unreachable', 'ECONNREFUSED');
    await jest.advanceTimersByTimeAsync(59 * MINUTE);
    expect(cache.peek()).toBe(key);
    expect(cache.ready()).toBe(true);
    await jest.advanceTimersByTimeAsync(2 * MINUTE);
    expect(cache.peek()).toBeUndefined();
    expect(cache.ready()).toBe(false);
    await expect(cache.get()).rejects.toMatchObject({ reason: 'stale' });
    // Recovery: the next background retry loads it again.
    sm.state.failWith = undefined;
    await jest.advanceTimersByTimeAsync(MINUTE);
    expect(cache.peek()).toBe(key);
    cache.close();
  });

  it('retries Secrets Manager at most once per backoff while requests keep failing', async () => {
    const sm = fakeSecretsManager(canary());
    sm.state.failWith = new SecretReadError('not_found', 'ResourceNotFoundException');
    const cache = cacheFor(sm.adapter);
    await expect(cache.get()).rejects.toMatchObject({ reason: 'not_found' });
    for (let i = 0; i < 10; i++) {
      await expect(cache.get()).rejects.toMatchObject({ reason: 'not_found' });
    }
    expect(sm.state.gets).toBe(1);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(sm.state.gets).toBe(2); // the background retry
    cache.close();
  });

  it('shares one forced refresh among concurrent callers and reports a change', async () => {
    const before = canary();
    const after = canary();
    const sm = fakeSecretsManager(before);
    const cache = cacheFor(sm.adapter);
    await cache.get();
    sm.rotate(after);
    sm.state.latencyMs = 50;
    const refreshes = Array.from({ length: 8 }, () => cache.refresh());
    await jest.advanceTimersByTimeAsync(100);
    await expect(Promise.all(refreshes)).resolves.toEqual(Array(8).fill(true));
    expect(sm.state.describes).toBe(1);
    expect(sm.state.gets).toBe(2);
    expect(cache.peek()).toBe(after);
    cache.close();
  });

  it('answers back-to-back forced refreshes with the first one’s outcome, calling Secrets Manager once', async () => {
    const sm = fakeSecretsManager(canary());
    const cache = cacheFor(sm.adapter);
    await cache.get();
    sm.rotate(canary());
    await expect(cache.refresh()).resolves.toBe(true);
    await expect(cache.refresh()).resolves.toBe(true);
    expect(sm.state.describes).toBe(1);
    expect(sm.state.gets).toBe(2);
    cache.close();
  });

  it('answers "unchanged" without calling Secrets Manager when forced refreshes come back to back', async () => {
    const sm = fakeSecretsManager(canary());
    const cache = cacheFor(sm.adapter);
    await cache.get();
    await expect(cache.refresh()).resolves.toBe(false);
    expect(sm.state.describes).toBe(1);
    await expect(cache.refresh()).resolves.toBe(false);
    expect(sm.state.describes).toBe(1);
    await jest.advanceTimersByTimeAsync(5_000);
    await expect(cache.refresh()).resolves.toBe(false);
    expect(sm.state.describes).toBe(2);
    cache.close();
  });

  it('keeps the old value when a rotated version lacks the json key', async () => {
    const key = canary();
    const sm = fakeSecretsManager(JSON.stringify({ apiKey: key }));
    const cache = cacheFor(sm.adapter, { jsonKey: 'apiKey' });
    await expect(cache.get()).resolves.toBe(key);
    sm.rotate(JSON.stringify({ other: canary() }));
    await expect(cache.refresh()).resolves.toBe(false);
    expect(cache.peek()).toBe(key);
    cache.close();
  });

  it('never refreshes less often than half the staleness bound', async () => {
    const sm = fakeSecretsManager(canary());
    const cache = cacheFor(sm.adapter, { maxStalenessMs: 2_000, random: () => 0.99 });
    cache.start();
    await jest.advanceTimersByTimeAsync(0);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(sm.state.describes).toBe(1);
    expect(cache.ready()).toBe(true);
    cache.close();
  });

  it('drops the value and stops refreshing when closed', async () => {
    const sm = fakeSecretsManager(canary());
    const cache = cacheFor(sm.adapter);
    await cache.get();
    cache.close();
    expect(cache.peek()).toBeUndefined();
    expect(cache.values()).toEqual([]);
    await jest.advanceTimersByTimeAsync(60 * MINUTE);
    expect(sm.state.describes).toBe(0);
  });
});
