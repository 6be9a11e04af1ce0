// Provider keys delivered by the operator (fetchFrom: operator), end to end: the operator process
// reads AWS Secrets Manager (moto) with its own identity and pushes each key only to the pods
// whose policy grants the provider; a managed sidecar process with no AWS credentials at all
// injects it into requests to the provider; a rotation reaches it; LlmPolicy status says
// SecretNotFound / SecretAccessDenied and how old each secret is; no value ever reaches a log
// line, an Event or a status.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {
  KubeClient,
  LlmPolicies,
  ServiceAccounts,
  loadKubeConfig,
} from '../../operator/kube/index.js';
import type { LlmPolicyStatus } from '../../crds/v1alpha1/index.js';
import { startFakeProvider, type FakeProvider } from '../fake-provider/server.js';
import { createInjectedPodWithToken } from '../support/pods.js';
import { freshNamespace, sharedControlPlane, type ControlPlane } from '../support/e2e.js';
import { startMoto, type Moto } from '../support/moto.js';
import {
  applyCrds,
  startOperatorProcess,
  writeServingTls,
  type OperatorProcess,
} from '../support/operator-process.js';
import { llmPolicy } from '../support/policies.js';
import { startSidecar, waitUntil, type RunningSidecar } from '../support/sidecar.js';
import type { TestPki } from '../support/tls.js';

/** Key values made at runtime; every one is looked for in everything the test can see. */
const canaries: string[] = [];
function canary(): string {
  const value = ['sk', 'e2e', randomBytes(12).toString('hex')].join('-');
  canaries.push(value);
  return value;
}

describe('provider keys from the operator', () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let ns: string;
  let dir: string;
  let pki: TestPki;
  let moto: Moto;
  let fake: FakeProvider;
  let operator: OperatorProcess | undefined;
  let sidecar: RunningSidecar | undefined;
  let podBStream: http.ClientRequest | undefined;
  /** Every byte the operator sent on pod-b's policy stream. */
  let podBReceived = '';
  const run = randomBytes(4).toString('hex');
  const secretX = `llmproxy-e2e/x-${run}`;
  const secretY = `llmproxy-e2e/y-${run}`;
  const secretDenied = `llmproxy-e2e/denied-${run}`;
  const secretMissing = `llmproxy-e2e/missing-${run}`;
  let keyX = '';
  let keyY = '';

  /** Everything the operator and the sidecar wrote, stdout and stderr. */
  const output = () => [operator?.output() ?? '', sidecar?.output() ?? ''].join('\n');

  const keyPolicy = (
    name: string,
    app: string,
    provider: string,
    secretId: string,
    jsonKey?: string,
  ) =>
    llmPolicy({
      name,
      namespace: ns,
      app,
      provider,
      baseURL: fake.url,
      // fetchFrom defaults to operator.
      credentials: {
        awsSecretsManager: { secretId, refreshInterval: '10s', ...(jsonKey ? { jsonKey } : {}) },
      },
    });

  /** An injected Pod whose bound token is written to `token-<name>` in dir; returns the token. */
  const createPod = (name: string, app: string): Promise<string> =>
    createInjectedPodWithToken(
      cp,
      client,
      { name, namespace: ns, labels: { app } },
      path.join(dir, `token-${name}`),
    );

  const statusOf = async (name: string): Promise<LlmPolicyStatus | undefined> =>
    ((await client.get(LlmPolicies, name, ns)) as { status?: LlmPolicyStatus } | undefined)?.status;

  const ready = (status: LlmPolicyStatus | undefined) =>
    status?.conditions?.find((c) => c.type === 'Ready');

  const chat = async (): Promise<number> => {
    const res = await fetch(`${sidecar?.url}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    await res.arrayBuffer();
    return res.status;
  };

  beforeAll(async () => {
    cp = await sharedControlPlane();
    await applyCrds(cp);
    client = new KubeClient(loadKubeConfig(cp.kubeconfigPath));
    ns = await freshNamespace('operator-keys');
    await client.create(ServiceAccounts, { metadata: { name: 'app', namespace: ns } });
    dir = mkdtempSync(path.join(os.tmpdir(), 'llmproxy-operator-keys-'));
    [moto, fake, pki] = await Promise.all([startMoto(), startFakeProvider(), writeServingTls(dir)]);

    keyX = canary();
    keyY = canary();
    await moto.secrets.create(secretX, keyX);
    await moto.secrets.create(secretY, JSON.stringify({ apiKey: keyY }));
    await moto.secrets.create(secretDenied, canary());
    // The operator's own identity: it may describe every secret but read none once auth is on
    // (moto enforces identity policies per action, not per resource).
    const identity = await moto.iam.userWithPolicy(`operator-${run}`, {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 'secretsmanager:DescribeSecret', Resource: '*' },
        { Effect: 'Deny', Action: 'secretsmanager:GetSecretValue', Resource: '*' },
      ],
    });

    await client.create(LlmPolicies, keyPolicy('granted-x', 'a', 'openai', secretX));
    await client.create(LlmPolicies, keyPolicy('granted-y', 'b', 'other', secretY, 'apiKey'));
    await client.create(LlmPolicies, keyPolicy('missing', 'nobody', 'openai', secretMissing));
    await createPod('pod-a', 'a');
    // pod-b's token is sent by hand on its stream below.
    const tokenB = await createPod('pod-b', 'b');

    operator = await startOperatorProcess({
      cp,
      namespace: ns,
      tlsDir: dir,
      ca: pki.caPem,
      args: ['--log-level', 'debug'],
      env: {
        ...moto.env,
        AWS_ACCESS_KEY_ID: identity.accessKeyId,
        AWS_SECRET_ACCESS_KEY: identity.secretAccessKey,
      },
    });

    // pod-a: the real sidecar in managed mode, without any AWS setting or credential.
    const tokenFile = path.join(dir, 'token-pod-a');
    sidecar = await startSidecar({
      operator: { url: operator.url, tokenFile, caFile: path.join(dir, 'ca.pem') },
      args: ['--pod-name', 'pod-a', '--log-level', 'debug'],
      env: { HOME: dir },
      // Ready only once the operator has pushed its policy and key: the first test waits for that.
      waitFor: 'listening',
    });

    // pod-b: its stream read byte for byte, to see everything the operator ever sends it.
    await waitUntil(async () => {
      if (podBStream) return true;
      await new Promise<void>((resolve) => {
        const req = https.request(`${operator?.url}/v1/policy/watch`, {
          ca: pki.caPem,
          headers: { authorization: `Bearer ${tokenB}` },
        });
        req.on('response', (res) => {
          if (res.statusCode === 200) {
            podBStream = req;
            res.on('data', (chunk: Buffer) => (podBReceived += chunk.toString('utf8')));
          } else res.resume();
          resolve();
        });
        req.on('error', () => resolve());
        req.end();
      });
      if (!podBStream) await new Promise((r) => setTimeout(r, 500));
      return podBStream !== undefined;
    }, 60_000);
  });

  afterAll(async () => {
    podBStream?.destroy();
    await Promise.all([sidecar?.stop(), operator?.kill()]);
    await moto?.disableAuth().catch(() => undefined);
    await Promise.all([moto?.stop(), fake?.close()]);
    client?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('gives the granted pod its key: a request through its sidecar carries it', async () => {
    fake.acceptKey(keyX);
    await waitUntil(async () => {
      const res = await fetch(`${sidecar?.adminUrl}/readyz`).catch(() => undefined);
      return res?.status === 200;
    }, 60_000);
    expect(await chat()).toBe(200);
    expect(fake.requests.at(-1)?.headers.authorization).toBe(`Bearer ${keyX}`);
  });

  it('never sends a key to a pod whose policy does not grant its provider', async () => {
    await waitUntil(() => podBReceived.includes(keyY), 30_000);
    const messages = podBReceived
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as { type: string; keys?: Array<{ provider: string }> });
    const keys = messages.filter((m) => m.type === 'keys');
    expect(keys.flatMap((m) => m.keys ?? []).map((k) => k.provider)).toEqual(['other']);
    expect(podBReceived).not.toContain(keyX);
  });

  it('reaches the sidecar with a rotated key', async () => {
    const rotated = canary();
    await moto.secrets.put(secretX, rotated);
    fake.acceptKey(rotated);
    await waitUntil(async () => (await chat()) === 200, 40_000, 500);
    expect(fake.requests.at(-1)?.headers.authorization).toBe(`Bearer ${rotated}`);
    expect(podBReceived).not.toContain(rotated);
  });

  it('shows each secret and its last change in status, and SecretNotFound for a missing one', async () => {
    await waitUntil(
      async () => ready(await statusOf('missing'))?.reason === 'SecretNotFound',
      30_000,
    );
    const missing = await statusOf('missing');
    expect(ready(missing)).toMatchObject({ status: 'False' });
    expect(ready(missing)?.message).toContain(secretMissing);
    await waitUntil(
      async () => (await statusOf('granted-x'))?.secrets?.[0]?.lastChangedDate !== undefined,
      30_000,
    );
    const granted = await statusOf('granted-x');
    expect(ready(granted)).toMatchObject({ status: 'True', reason: 'Ready' });
    expect(granted?.secrets).toEqual([
      { provider: 'openai', secretId: secretX, lastChangedDate: expect.any(String) },
    ]);
    const age = Date.now() - Date.parse(granted?.secrets?.[0]?.lastChangedDate ?? '');
    expect(age).toBeLessThan(24 * 60 * 60 * 1000);
    expect(granted?.conditions?.find((c) => c.type === 'SecretRotationOverdue')).toMatchObject({
      status: 'False',
      reason: 'RotatedRecently',
    });
  });

  it('says SecretAccessDenied when the operator may not read a secret', async () => {
    await moto.enableAuth();
    try {
      await client.create(LlmPolicies, keyPolicy('denied', 'nobody', 'openai', secretDenied));
      await waitUntil(
        async () => ready(await statusOf('denied'))?.reason === 'SecretAccessDenied',
        30_000,
        250,
      );
      expect(ready(await statusOf('denied'))?.message).toContain(secretDenied);
      // Keys already delivered stay in service: their version checks are allowed.
      expect(await chat()).toBe(200);
    } finally {
      await moto.disableAuth();
    }
  });

  it('writes no key value to any log line, Event or status', async () => {
    const events = await cp.kubectl(['get', 'events', '-n', ns, '-o', 'json']);
    const policies = await cp.kubectl(['get', 'llmpolicies', '-n', ns, '-o', 'json']);
    expect(events.code).toBe(0);
    expect(events.stdout).toContain('SecretNotFound');
    const everything = [output(), events.stdout, policies.stdout].join('\n');
    expect(output()).toContain('keys received from the operator');
    for (const value of canaries) expect(everything).not.toContain(value);
  });
});
