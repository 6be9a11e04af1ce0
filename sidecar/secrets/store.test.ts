import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createKeyStore,
  CredentialsUnavailableError,
  type KeyStore,
  type SecretsManagerAdapter,
} from './index.js';
import { SecretReadError } from './errors.js';
import type { Logger } from '../telemetry/log.js';

const canary = (): string => ['sk', 'unit', randomBytes(8).toString('hex')].join('-');
const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} };

/** Secrets by id; counts reads so sharing is visible. */
function fakeSecretsManager(secrets: Record<string, string>) {
  const calls = { gets: 0, regions: [] as Array<string | undefined> };
  const factory = (region: string | undefined): SecretsManagerAdapter => {
    calls.regions.push(region);
    return {
      async describe(secretId) {
        if (!(secretId in secrets))
          throw new SecretReadError('not_found', 'ResourceNotFoundException');
        return { versionIdsToStages: { v1: ['AWSCURRENT'] } };
      },
      async getValue(secretId) {
        calls.gets += 1;
        const value = secrets[secretId];
        if (value === undefined)
          throw new SecretReadError('not_found', 'ResourceNotFoundException');
        return { versionId: 'v1', secretString: value };
      },
    };
  };
  return { calls, factory };
}

describe('KeyStore', () => {
  let store: KeyStore | undefined;
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llmproxy-store-'));
  });
  afterEach(async () => {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
    jest.useRealTimers();
  });

  it('serves file, none and Secrets Manager keys by provider name', async () => {
    const fileKey = canary();
    const awsKey = canary();
    await writeFile(join(dir, 'k'), fileKey);
    const sm = fakeSecretsManager({ 'llm/anthropic': JSON.stringify({ apiKey: awsKey }) });
    store = createKeyStore({ log: quiet, secretsManager: sm.factory });
    store.apply([
      { name: 'openai', credentials: { file: { path: join(dir, 'k') } } },
      { name: 'local', credentials: { none: {} } },
      {
        name: 'anthropic',
        credentials: { awsSecretsManager: { secretId: 'llm/anthropic', jsonKey: 'apiKey' } },
      },
    ]);
    expect(store.ready()).toBe(false);
    await expect(store.key('openai')).resolves.toBe(fileKey);
    await expect(store.key('local')).resolves.toBeUndefined();
    await expect(store.key('anthropic')).resolves.toBe(awsKey);
    expect(store.peek('anthropic')).toBe(awsKey);
    expect(store.peek('local')).toBeUndefined();
    expect(store.ready()).toBe(true);
    expect(store.knownValues().sort()).toEqual([fileKey, awsKey].sort());
  });

  it('reads a secret once for every provider that names it', async () => {
    const key = canary();
    const sm = fakeSecretsManager({ shared: key });
    store = createKeyStore({ log: quiet, secretsManager: sm.factory });
    const credentials = { awsSecretsManager: { secretId: 'shared' } };
    store.apply([
      { name: 'a', credentials },
      { name: 'b', credentials },
      {
        name: 'c',
        credentials: { awsSecretsManager: { secretId: 'shared', refreshIntervalSeconds: 60 } },
      },
    ]);
    await Promise.all([store.key('a'), store.key('b'), store.key('c')]);
    expect(sm.calls.gets).toBe(1);
  });

  it('takes the region from an ARN and shares one client per region', async () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:llm-AbC123';
    const sm = fakeSecretsManager({ [arn]: canary(), other: canary() });
    store = createKeyStore({ log: quiet, secretsManager: sm.factory });
    store.apply([
      { name: 'a', credentials: { awsSecretsManager: { secretId: arn } } },
      { name: 'b', credentials: { awsSecretsManager: { secretId: 'other', region: 'eu-west-1' } } },
    ]);
    await Promise.all([store.key('a'), store.key('b')]);
    expect(sm.calls.regions).toEqual(['eu-west-1']);
  });

  it('drops removed providers and their values', async () => {
    const key = canary();
    const sm = fakeSecretsManager({ s: key });
    store = createKeyStore({ log: quiet, secretsManager: sm.factory });
    store.apply([{ name: 'a', credentials: { awsSecretsManager: { secretId: 's' } } }]);
    await store.key('a');
    store.apply([]);
    expect(store.peek('a')).toBeUndefined();
    expect(store.knownValues()).toEqual([]);
    await expect(store.key('a')).rejects.toMatchObject({
      code: 'credentials_unavailable',
      reason: 'unknown_provider',
    });
    expect(store.ready()).toBe(true);
  });

  it('switches source when a provider’s credentials change', async () => {
    const first = canary();
    const second = canary();
    const sm = fakeSecretsManager({ one: first, two: second });
    store = createKeyStore({ log: quiet, secretsManager: sm.factory });
    store.apply([{ name: 'a', credentials: { awsSecretsManager: { secretId: 'one' } } }]);
    await expect(store.key('a')).resolves.toBe(first);
    store.apply([{ name: 'a', credentials: { awsSecretsManager: { secretId: 'two' } } }]);
    await expect(store.key('a')).resolves.toBe(second);
    expect(store.knownValues()).toEqual([second]);
  });

  it('fails closed with an error naming provider and secret id, never a value', async () => {
    const key = canary();
    const sm = fakeSecretsManager({ present: JSON.stringify({ wrong: key }) });
    store = createKeyStore({ log: quiet, secretsManager: sm.factory });
    store.apply([
      { name: 'missing', credentials: { awsSecretsManager: { secretId: 'absent' } } },
      {
        name: 'nokey',
        credentials: { awsSecretsManager: { secretId: 'present', jsonKey: 'apiKey' } },
      },
    ]);
    const missing = await store.key('missing').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(CredentialsUnavailableError);
    expect(missing).toMatchObject({ code: 'credentials_unavailable', reason: 'not_found' });
    expect((missing as Error).message).toContain('"missing"');
    expect((missing as Error).message).toContain('absent');
    const nokey = await store.key('nokey').catch((e: unknown) => e);
    expect(nokey).toMatchObject({ reason: 'json_key_missing' });
    expect((nokey as Error).message).toContain('present');
    expect((nokey as Error).message).not.toContain(key);
    expect(JSON.stringify(nokey)).not.toContain(key);
    expect(store.ready()).toBe(false);
  });

  it('tells a refused request to retry when the key it carried is no longer the one held', async () => {
    const secrets: Record<string, string> = { s: canary() };
    const sm = fakeSecretsManager(secrets);
    store = createKeyStore({ log: quiet, secretsManager: sm.factory });
    store.apply([{ name: 'a', credentials: { awsSecretsManager: { secretId: 's' } } }]);
    const used = (await store.key('a')) as string;
    await expect(store.refresh('a', used)).resolves.toBe(false);
    await expect(store.refresh('a', canary())).resolves.toBe(true);
    await expect(store.refresh('unknown')).resolves.toBe(false);
  });

  it('serves a fetchFrom operator key only once the operator pushed it for that secret', async () => {
    store = createKeyStore({ log: quiet, operatorKeys: true });
    const credentials = {
      awsSecretsManager: { secretId: 'llm/openai', fetchFrom: 'operator' as const },
    };
    store.apply([{ name: 'openai', credentials }]);
    expect(store.ready()).toBe(false);
    await expect(store.key('openai')).rejects.toMatchObject({
      code: 'credentials_unavailable',
      reason: 'operator_key_not_received',
    });
    const first = canary();
    // A key pushed for another secret (the provider's previous credentials) is not used.
    store.setOperatorKeys([{ provider: 'openai', secretId: 'old', version: 'v0', value: first }]);
    expect(store.peek('openai')).toBeUndefined();
    store.setOperatorKeys([
      { provider: 'openai', secretId: 'llm/openai', version: 'v1', value: first },
    ]);
    await expect(store.key('openai')).resolves.toBe(first);
    expect(store.ready()).toBe(true);
    expect(store.knownValues()).toEqual([first]);
  });

  it('answers a refused request with the latest push, and forgets keys left out of a push', async () => {
    store = createKeyStore({ log: quiet, operatorKeys: true });
    store.apply([
      {
        name: 'openai',
        credentials: { awsSecretsManager: { secretId: 's', fetchFrom: 'operator' } },
      },
    ]);
    const first = canary();
    const rotated = canary();
    store.setOperatorKeys([{ provider: 'openai', secretId: 's', version: 'v1', value: first }]);
    await expect(store.refresh('openai', first)).resolves.toBe(false);
    store.setOperatorKeys([{ provider: 'openai', secretId: 's', version: 'v2', value: rotated }]);
    await expect(store.refresh('openai', first)).resolves.toBe(true);
    expect(store.peek('openai')).toBe(rotated);
    expect(store.knownValues()).toEqual([rotated]);
    store.setOperatorKeys([]);
    expect(store.peek('openai')).toBeUndefined();
    expect(store.knownValues()).toEqual([]);
    const error = await store.key('openai').catch((e: unknown) => e);
    expect(JSON.stringify(error) + (error as Error).message).not.toContain(rotated);
  });

  it('never logs a pushed value', async () => {
    const lines: string[] = [];
    const record = (m: string, f?: object) => lines.push(JSON.stringify({ m, ...f }));
    store = createKeyStore({
      log: { error: record, warn: record, info: record, debug: record },
      operatorKeys: true,
    });
    const value = canary();
    store.setOperatorKeys([{ provider: 'openai', secretId: 's', version: 'v9', value }]);
    expect(lines.join('\n')).toContain('v9');
    expect(lines.join('\n')).not.toContain(value);
  });

  it('refuses fetchFrom operator in a process that receives no keys from the operator', async () => {
    store = createKeyStore({ log: quiet, secretsManager: fakeSecretsManager({}).factory });
    store.apply([
      { name: 'a', credentials: { awsSecretsManager: { secretId: 's', fetchFrom: 'operator' } } },
    ]);
    await expect(store.key('a')).rejects.toMatchObject({ reason: 'operator_push_unavailable' });
  });
});
