import { afterEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import {
  COMPILED_POLICY_API_VERSION,
  parseCompiledPolicy,
  type CompiledPolicy,
} from '../../sidecar/policy/compiled.js';
import {
  SecretReadError,
  type AwsSecretsManagerCredentials,
  type SecretsManagerAdapter,
} from '../../sidecar/secrets/index.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { SecretRegistry } from './registry.js';

const canary = (): string => ['sk', 'unit', randomBytes(8).toString('hex')].join('-');

/** Secrets by id with a version each; counts calls so sharing is visible. */
function fakeSecretsManager() {
  const secrets = new Map<string, { value: string; version: string; changed: Date }>();
  const calls = { gets: 0, describes: 0, regions: [] as Array<string | undefined> };
  const missing = () => new SecretReadError('not_found', 'ResourceNotFoundException');
  const factory = (region: string | undefined): SecretsManagerAdapter => {
    calls.regions.push(region);
    return {
      async describe(secretId) {
        calls.describes += 1;
        const s = secrets.get(secretId);
        if (!s) throw missing();
        return { versionIdsToStages: { [s.version]: ['AWSCURRENT'] }, lastChangedDate: s.changed };
      },
      async getValue(secretId) {
        calls.gets += 1;
        const s = secrets.get(secretId);
        if (!s) throw missing();
        return { versionId: s.version, secretString: s.value };
      },
    };
  };
  return { secrets, calls, factory };
}

const ref = (
  secretId: string,
  more: Partial<AwsSecretsManagerCredentials> = {},
): AwsSecretsManagerCredentials => ({
  secretId,
  versionStage: 'AWSCURRENT',
  refreshIntervalSeconds: 300,
  fetchFrom: 'operator',
  ...more,
});

function policy(
  providers: Array<{
    name: string;
    credentials: CompiledPolicy['providers'][number]['credentials'];
  }>,
): CompiledPolicy {
  return parseCompiledPolicy({
    apiVersion: COMPILED_POLICY_API_VERSION,
    kind: 'CompiledPolicy',
    providers: providers.map((p) => ({
      name: p.name,
      type: 'openai',
      baseURL: 'https://api.openai.com',
      credentials: p.credentials,
      models: { allow: [{ pattern: '*' }], deny: [] },
    })),
  });
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('SecretRegistry', () => {
  let registry: SecretRegistry | undefined;
  const lines: string[] = [];
  const record = (message: string, fields?: object) =>
    lines.push(JSON.stringify({ message, ...fields }));
  const log: Logger = { error: record, warn: record, info: record, debug: record };
  afterEach(async () => {
    await registry?.close();
  });

  it('reads each secret once, whatever number of policies and pods name it', async () => {
    const sm = fakeSecretsManager();
    const value = canary();
    sm.secrets.set('llm/openai', { value, version: 'v1', changed: new Date() });
    let changes = 0;
    registry = new SecretRegistry({
      log,
      adapterFor: sm.factory,
      onKeysChanged: () => changes++,
    });
    registry.sync([ref('llm/openai'), ref('llm/openai', { refreshIntervalSeconds: 60 })]);
    await until(() => changes === 1);
    const granted = policy([
      { name: 'openai', credentials: { awsSecretsManager: ref('llm/openai') } },
    ]);
    for (let pod = 0; pod < 50; pod++) {
      expect(registry.keysFor(granted)).toEqual([
        { provider: 'openai', secretId: 'llm/openai', version: 'v1', value },
      ]);
    }
    expect(sm.calls.gets).toBe(1);
    expect(registry.knownValues()).toEqual([value]);
  });

  it('pushes keys only for granted providers that fetch through the operator', async () => {
    const sm = fakeSecretsManager();
    sm.secrets.set('a', { value: canary(), version: 'v1', changed: new Date() });
    sm.secrets.set('b', { value: canary(), version: 'v1', changed: new Date() });
    let changes = 0;
    registry = new SecretRegistry({ log, adapterFor: sm.factory, onKeysChanged: () => changes++ });
    registry.sync([ref('a'), ref('b', { fetchFrom: 'sidecar' })]);
    await until(() => changes === 1);
    const keys = registry.keysFor(
      policy([
        { name: 'x', credentials: { awsSecretsManager: ref('a') } },
        { name: 'y', credentials: { awsSecretsManager: ref('b', { fetchFrom: 'sidecar' }) } },
        { name: 'z', credentials: { none: {} } },
      ]),
    );
    expect(keys.map((k) => k.provider)).toEqual(['x']);
    // The operator never read the sidecar's secret, only described it.
    expect(sm.calls.gets).toBe(1);
    expect(registry.keysFor(policy([]))).toEqual([]);
  });

  it('tells of a rotation and then hands out the new value', async () => {
    const sm = fakeSecretsManager();
    sm.secrets.set('s', { value: canary(), version: 'v1', changed: new Date(0) });
    let changes = 0;
    registry = new SecretRegistry({ log, adapterFor: sm.factory, onKeysChanged: () => changes++ });
    // The minimum interval the compiler allows is 10 s; a test reads faster through the cache.
    registry.sync([ref('s', { refreshIntervalSeconds: 0.05 })]);
    await until(() => changes === 1);
    const rotated = canary();
    sm.secrets.set('s', { value: rotated, version: 'v2', changed: new Date() });
    await until(() => changes === 2);
    const granted = policy([
      { name: 'p', credentials: { awsSecretsManager: ref('s', { refreshIntervalSeconds: 10 }) } },
    ]);
    expect(registry.keysFor(granted)).toMatchObject([{ version: 'v2', value: rotated }]);
  });

  it('withdraws a value it can no longer re-check once past the staleness bound', async () => {
    const sm = fakeSecretsManager();
    sm.secrets.set('s', { value: canary(), version: 'v1', changed: new Date(0) });
    let now = Date.now();
    let changes = 0;
    registry = new SecretRegistry({
      log,
      adapterFor: sm.factory,
      clock: () => now,
      maxStalenessMs: 60_000,
      onKeysChanged: () => changes++,
    });
    registry.sync([ref('s', { refreshIntervalSeconds: 0.05 })]);
    await until(() => changes === 1);
    const granted = policy([{ name: 'p', credentials: { awsSecretsManager: ref('s') } }]);
    expect(registry.keysFor(granted)).toHaveLength(1);
    // AWS goes away: within the bound the value is still pushed...
    sm.secrets.delete('s');
    await new Promise((r) => setTimeout(r, 150));
    expect(changes).toBe(1);
    expect(registry.keysFor(granted)).toHaveLength(1);
    // ...past it, the next failed read tells the server to push a set without it.
    now += 61_000;
    await until(() => changes === 2);
    expect(registry.keysFor(granted)).toEqual([]);
  });

  it('observes ages and failures by reason, never values', async () => {
    const sm = fakeSecretsManager();
    const changed = new Date('2025-01-01T00:00:00Z');
    const value = canary();
    sm.secrets.set('present', { value, version: 'v1', changed });
    let observed = 0;
    registry = new SecretRegistry({
      log,
      adapterFor: sm.factory,
      onKeysChanged: () => undefined,
      onObserved: () => observed++,
    });
    registry.sync([ref('present'), ref('absent'), ref('theirs', { fetchFrom: 'sidecar' })]);
    await until(() => registry?.observe(ref('absent')).read?.failure !== undefined);
    await until(() => registry?.observe(ref('present')).lastChanged !== undefined);
    expect(registry.observe(ref('present'))).toMatchObject({
      lastChanged: changed,
      read: { usable: true, version: 'v1' },
    });
    expect(registry.observe(ref('absent')).read?.failure?.reason).toBe('not_found');
    await until(
      () =>
        registry?.observe(ref('theirs', { fetchFrom: 'sidecar' })).describeFailure !== undefined,
    );
    expect(registry.observe(ref('theirs', { fetchFrom: 'sidecar' })).read).toBeUndefined();
    expect(observed).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain(value);
  });

  it('stops reading a secret no policy references any more and drops its value', async () => {
    const sm = fakeSecretsManager();
    sm.secrets.set('s', { value: canary(), version: 'v1', changed: new Date() });
    let changes = 0;
    registry = new SecretRegistry({ log, adapterFor: sm.factory, onKeysChanged: () => changes++ });
    registry.sync([ref('s')]);
    await until(() => changes === 1);
    registry.sync([]);
    expect(registry.knownValues()).toEqual([]);
    expect(registry.observe(ref('s'))).toEqual({});
  });

  it('takes the region from the reference, the ARN, or the configured default', () => {
    const sm = fakeSecretsManager();
    registry = new SecretRegistry({
      log,
      adapterFor: sm.factory,
      defaultRegion: 'eu-central-1',
      onKeysChanged: () => undefined,
    });
    registry.sync([
      ref('plain'),
      ref('arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbC123'),
      ref('other', { region: 'us-west-2' }),
    ]);
    expect(new Set(sm.calls.regions)).toEqual(new Set(['eu-central-1', 'eu-west-1', 'us-west-2']));
  });
});
