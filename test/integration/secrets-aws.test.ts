// The key store against AWS Secrets Manager as moto's server emulates it, reached only through
// the SDK's standard endpoint setting. Every canary must stay out of everything the store logs.
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import {
  createKeyStore,
  CredentialsUnavailableError,
  type KeyStore,
} from '../../sidecar/secrets/index.js';
import { createSecretsManagerAdapter } from '../../sidecar/secrets/aws.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { startMoto, type Moto } from '../support/moto.js';

jest.setTimeout(60_000);

const canaries: string[] = [];
function canary(): string {
  const value = ['sk', 'canary', randomBytes(12).toString('hex')].join('-');
  canaries.push(value);
  return value;
}
const uniqueName = (what: string) => `llmproxy-test/${what}-${randomBytes(4).toString('hex')}`;

/** Everything the store logs, every field included (the real logger would drop some). */
const logged: string[] = [];
const log: Logger = {
  error: (message, fields) => logged.push(JSON.stringify({ level: 'error', message, ...fields })),
  warn: (message, fields) => logged.push(JSON.stringify({ level: 'warn', message, ...fields })),
  info: (message, fields) => logged.push(JSON.stringify({ level: 'info', message, ...fields })),
  debug: (message, fields) => logged.push(JSON.stringify({ level: 'debug', message, ...fields })),
};

/** Anything written straight to stdout/stderr by this process (the SDK, a stray console call). */
const written: string[] = [];
const originalWrite = {
  stdout: process.stdout.write.bind(process.stdout),
  stderr: process.stderr.write.bind(process.stderr),
};

async function eventually(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Sets env for the next client the store creates; the SDK resolves it on the first call. */
function useEnv(env: Record<string, string>): () => void {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

describe('key store with AWS Secrets Manager (moto)', () => {
  let moto: Moto;
  let restoreEnv: () => void;
  let store: KeyStore | undefined;

  beforeAll(async () => {
    for (const stream of ['stdout', 'stderr'] as const) {
      jest.spyOn(process[stream], 'write').mockImplementation(((
        chunk: unknown,
        ...rest: never[]
      ) => {
        written.push(String(chunk));
        return originalWrite[stream](chunk as string, ...rest);
      }) as typeof process.stdout.write);
    }
    moto = await startMoto();
    restoreEnv = useEnv(moto.env);
  });

  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  afterAll(async () => {
    restoreEnv?.();
    await moto?.stop();
    jest.restoreAllMocks();
    const everything = [...logged, ...written].join('\n');
    expect(logged.some((line) => line.includes('"level":"debug"'))).toBe(true);
    for (const value of canaries) expect(everything).not.toContain(value);
  });

  it('waits for the first read, then serves the key from memory', async () => {
    const key = canary();
    const secretId = uniqueName('first');
    await moto.secrets.create(secretId, `${key}\n`);
    store = createKeyStore({ log });
    store.apply([{ name: 'openai', credentials: { awsSecretsManager: { secretId } } }]);
    expect(store.ready()).toBe(false);
    expect(store.peek('openai')).toBeUndefined();
    await expect(store.key('openai')).resolves.toBe(key);
    expect(store.peek('openai')).toBe(key);
    expect(store.ready()).toBe(true);
    expect(store.knownValues()).toEqual([key]);
  });

  it('reads a secret by ARN and picks a field out of a JSON secret', async () => {
    const key = canary();
    const secretId = uniqueName('json');
    const { arn } = await moto.secrets.create(
      secretId,
      JSON.stringify({ apiKey: key, organization: canary() }),
    );
    store = createKeyStore({ log });
    store.apply([
      {
        name: 'anthropic',
        credentials: { awsSecretsManager: { secretId: arn, jsonKey: 'apiKey' } },
      },
    ]);
    await expect(store.key('anthropic')).resolves.toBe(key);
    expect(store.knownValues()).toEqual([key]);
  });

  it('picks up a rotation by PutSecretValue in the background, without a restart', async () => {
    const before = canary();
    const after = canary();
    const secretId = uniqueName('rotation');
    await moto.secrets.create(secretId, before);
    // A 2 s staleness bound makes the store re-check about every second.
    store = createKeyStore({ log, maxStalenessMs: 2_000 });
    store.apply([{ name: 'openai', credentials: { awsSecretsManager: { secretId } } }]);
    await expect(store.key('openai')).resolves.toBe(before);
    await moto.secrets.put(secretId, after);
    await eventually(() => store?.peek('openai') === after, 5_000);
    expect(store.knownValues()).toEqual([after]);
  });

  it('re-reads at once when the provider refuses the key (forced refresh after a 401)', async () => {
    const before = canary();
    const after = canary();
    const secretId = uniqueName('forced');
    await moto.secrets.create(secretId, before);
    store = createKeyStore({ log });
    store.apply([{ name: 'openai', credentials: { awsSecretsManager: { secretId } } }]);
    const used = await store.key('openai');
    await moto.secrets.put(secretId, after);
    // Concurrent refusals share one read; each learns the key changed.
    const answers = await Promise.all([
      store.refresh('openai', used),
      store.refresh('openai', used),
      store.refresh('openai', used),
    ]);
    expect(answers).toEqual([true, true, true]);
    expect(store.peek('openai')).toBe(after);
    // The new key refused too: nothing to retry with.
    await expect(store.refresh('openai', after)).resolves.toBe(false);
  });

  it.each([
    ['a secret id that does not exist', 'missing', 'not_found'],
    ['a deleted secret', 'deleted', 'invalid_request'],
    ['a binary secret', 'binary', 'not_string'],
    ['a JSON secret without the key', 'nokey', 'json_key_missing'],
  ])('fails closed on %s with an error naming the secret id', async (_case, kind, reason) => {
    const secretId = uniqueName(kind);
    const held = canary();
    if (kind === 'deleted') {
      await moto.secrets.create(secretId, held);
      await moto.secrets.remove(secretId);
    } else if (kind === 'binary') {
      await moto.secrets.createBinary(secretId, Buffer.from(held));
    } else if (kind === 'nokey') {
      await moto.secrets.create(secretId, JSON.stringify({ other: held }));
    }
    store = createKeyStore({ log });
    store.apply([
      {
        name: 'openai',
        credentials: {
          awsSecretsManager: { secretId, ...(kind === 'nokey' ? { jsonKey: 'apiKey' } : {}) },
        },
      },
    ]);
    const error = await store.key('openai').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CredentialsUnavailableError);
    expect(error).toMatchObject({ code: 'credentials_unavailable', reason });
    expect((error as Error).message).toContain(secretId);
    expect((error as Error).message).toContain('"openai"');
    expect(`${(error as Error).message} ${JSON.stringify(error)}`).not.toContain(held);
    expect(store.ready()).toBe(false);
  });

  it('fails closed with access_denied when IAM denies GetSecretValue', async () => {
    // moto enforces IAM identity policies once auth is on; it does not enforce resource policies.
    const key = canary();
    const secretId = uniqueName('denied');
    await moto.secrets.create(secretId, key);
    const user = await moto.iam.userWithPolicy(`reader-${randomBytes(3).toString('hex')}`, {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 'secretsmanager:DescribeSecret', Resource: '*' },
        { Effect: 'Deny', Action: 'secretsmanager:GetSecretValue', Resource: '*' },
      ],
    });
    const restore = useEnv({
      AWS_ACCESS_KEY_ID: user.accessKeyId,
      AWS_SECRET_ACCESS_KEY: user.secretAccessKey,
    });
    await moto.enableAuth();
    try {
      store = createKeyStore({ log });
      store.apply([{ name: 'openai', credentials: { awsSecretsManager: { secretId } } }]);
      const error = await store.key('openai').catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'credentials_unavailable', reason: 'access_denied' });
      expect((error as Error).message).toContain(secretId);
      // The same identity may describe the secret: moto evaluated the policy per action.
      const adapter = createSecretsManagerAdapter();
      await expect(adapter.describe(secretId)).resolves.toHaveProperty('versionIdsToStages');
      adapter.close();
    } finally {
      await moto.disableAuth();
      restore();
    }
  });

  it('serves the cached key while Secrets Manager is down, then fails closed after the staleness bound', async () => {
    const own = await startMoto();
    const restore = useEnv(own.env);
    try {
      const key = canary();
      const secretId = uniqueName('outage');
      await own.secrets.create(secretId, key);
      store = createKeyStore({ log, maxStalenessMs: 3_000 });
      store.apply([{ name: 'openai', credentials: { awsSecretsManager: { secretId } } }]);
      await expect(store.key('openai')).resolves.toBe(key);
      await own.stop();

      await expect(store.refresh('openai')).resolves.toBe(false);
      expect(store.peek('openai')).toBe(key);
      await expect(store.key('openai')).resolves.toBe(key);
      expect(store.ready()).toBe(true);

      await eventually(() => store?.peek('openai') === undefined, 6_000);
      expect(store.ready()).toBe(false);
      const error = await store.key('openai').catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'credentials_unavailable', reason: 'stale' });
      expect((error as Error).message).toContain(secretId);
      expect(logged.join('\n')).toContain('unreachable');
    } finally {
      restore();
      await own.stop();
    }
  });
});
