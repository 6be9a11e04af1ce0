// Starts moto's server (a real AWS API emulator, installed by test/support/install.sh) on a free
// loopback port, and drives it over plain HTTP the way any AWS client does: JSON 1.1 for
// Secrets Manager, the query protocol for IAM. The code under test reaches it only through the
// SDK's standard endpoint setting (AWS_ENDPOINT_URL_SECRETS_MANAGER).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const MOTO_VERSION = '5.2.5';

export interface Moto {
  endpoint: string;
  region: string;
  /** What a process needs to talk to this moto with the standard AWS settings. */
  env: Record<string, string>;
  secrets: MotoSecrets;
  iam: MotoIam;
  /**
   * From now on moto checks signatures and IAM policies on every call (its
   * INITIAL_NO_AUTH_ACTION_COUNT switch); the runtime-generated dummy keys in `env` then stop
   * working. `disableAuth` turns it back off.
   */
  enableAuth(): Promise<void>;
  disableAuth(): Promise<void>;
  /** Everything moto wrote (its own access log), for a failing test to print. */
  output(): string;
  stop(): Promise<void>;
}

export interface MotoSecrets {
  create(name: string, value: string): Promise<{ arn: string; versionId: string }>;
  put(name: string, value: string): Promise<{ versionId: string }>;
  createBinary(name: string, bytes: Buffer): Promise<{ arn: string }>;
  remove(name: string, options?: { force?: boolean }): Promise<void>;
}

export interface MotoIam {
  /** An IAM user with one inline policy, and an access key for it (used with enableAuth). */
  userWithPolicy(
    name: string,
    policy: object,
  ): Promise<{ accessKeyId: string; secretAccessKey: string }>;
}

export function motoServerPath(): string {
  const cache = process.env.LLMPROXY_CACHE ?? join(homedir(), '.cache', 'llmproxy');
  return join(cache, `moto-${MOTO_VERSION}`, 'bin', 'moto_server');
}

export async function startMoto(options: { region?: string } = {}): Promise<Moto> {
  const bin = motoServerPath();
  if (!existsSync(bin)) {
    throw new Error(`moto_server not found at ${bin}: run \`make test-deps\` first`);
  }
  const region = options.region ?? 'us-east-1';
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let log = '';
  const child = spawn(bin, ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-64_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  try {
    await waitUntilAnswering(endpoint, child, 30_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}\n${log}`, { cause: error });
  }

  // Dummy credentials, made up at runtime: moto accepts any while auth is off.
  const accessKeyId = `AKIA${randomBytes(8).toString('hex').toUpperCase()}`;
  const secretAccessKey = randomBytes(20).toString('base64');
  const env = {
    AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoint,
    AWS_REGION: region,
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    // Keep a developer's own AWS setup out of the test.
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  };

  const call = async (service: 'secretsmanager' | 'iam', init: RequestInit): Promise<Response> => {
    const headers = new Headers(init.headers);
    const scopeRegion = service === 'iam' ? 'us-east-1' : region;
    headers.set(
      'authorization',
      `AWS4-HMAC-SHA256 Credential=${accessKeyId}/20260101/${scopeRegion}/${service}/aws4_request, SignedHeaders=host, Signature=0`,
    );
    return fetch(endpoint, { ...init, method: 'POST', headers });
  };

  const secretsCall = async (target: string, body: object): Promise<Record<string, unknown>> => {
    const res = await call('secretsmanager', {
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': `secretsmanager.${target}`,
      },
      body: JSON.stringify(body),
    });
    const json = (await res.json()) as Record<string, unknown>;
    // The error type only: a helper's error must not quote what it was asked to store.
    if (!res.ok) throw new Error(`moto ${target} failed: ${String(json.__type)}`);
    return json;
  };

  const iamCall = async (params: Record<string, string>): Promise<string> => {
    const res = await call('iam', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...params, Version: '2010-05-08' }).toString(),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`moto IAM ${params.Action} failed: HTTP ${res.status}`);
    return text;
  };

  const setAuthCount = async (count: string) => {
    const res = await fetch(`${endpoint}/moto-api/reset-auth`, { method: 'POST', body: count });
    if (!res.ok) throw new Error(`moto reset-auth failed: HTTP ${res.status}`);
  };

  return {
    endpoint,
    region,
    env,
    secrets: {
      async create(name, value) {
        const out = await secretsCall('CreateSecret', { Name: name, SecretString: value });
        return { arn: String(out.ARN), versionId: String(out.VersionId) };
      },
      async put(name, value) {
        const out = await secretsCall('PutSecretValue', { SecretId: name, SecretString: value });
        return { versionId: String(out.VersionId) };
      },
      async createBinary(name, bytes) {
        const out = await secretsCall('CreateSecret', {
          Name: name,
          SecretBinary: bytes.toString('base64'),
        });
        return { arn: String(out.ARN) };
      },
      async remove(name, { force = false } = {}) {
        await secretsCall('DeleteSecret', {
          SecretId: name,
          ...(force ? { ForceDeleteWithoutRecovery: true } : { RecoveryWindowInDays: 7 }),
        });
      },
    },
    iam: {
      async userWithPolicy(name, policy) {
        await iamCall({ Action: 'CreateUser', UserName: name });
        await iamCall({
          Action: 'PutUserPolicy',
          UserName: name,
          PolicyName: `${name}-policy`,
          PolicyDocument: JSON.stringify(policy),
        });
        const xml = await iamCall({ Action: 'CreateAccessKey', UserName: name });
        const id = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(xml)?.[1];
        const secret = /<SecretAccessKey>([^<]+)<\/SecretAccessKey>/.exec(xml)?.[1];
        if (!id || !secret) throw new Error('moto CreateAccessKey returned no key');
        return { accessKeyId: id, secretAccessKey: secret };
      },
    },
    enableAuth: () => setAuthCount('0'),
    disableAuth: () => setAuthCount('inf'),
    output: () => log,
    stop: () => stopChild(child),
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilAnswering(
  endpoint: string,
  child: ChildProcess,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`moto_server did not answer on ${endpoint} within ${timeoutMs} ms`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
