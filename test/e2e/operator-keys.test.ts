// Provider keys delivered by the operator (fetchFrom: operator), end to end: the operator process
// reads AWS Secrets Manager (moto) with its own identity and pushes each key only to the pods
// whose policy grants the provider; a managed sidecar process with no AWS credentials at all
// injects it into requests to the provider; a rotation reaches it; LlmPolicy status says
// SecretNotFound / SecretAccessDenied and how old each secret is; no value ever reaches a log
// line, an Event or a status.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  KubeClient,
  LlmPolicies,
  Pods,
  ServiceAccounts,
  loadKubeConfig,
  type KubeObject,
} from '../../operator/kube/index.js';
import type { LlmPolicyStatus } from '../../crds/v1alpha1/index.js';
import { startFakeProvider, type FakeProvider } from '../fake-provider/server.js';
import { injectedPod } from '../support/pods.js';
import { freshNamespace, sharedControlPlane, type ControlPlane } from '../support/e2e.js';
import { startMoto, type Moto } from '../support/moto.js';
import { freePort, waitUntil } from '../support/sidecar.js';
import { createTestPki, type TestPki } from '../support/tls.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

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
  let port: number;
  let operator: ChildProcess | undefined;
  let sidecar: ChildProcess | undefined;
  let sidecarUrl = '';
  let sidecarAdmin = '';
  let podBStream: http.ClientRequest | undefined;
  let output = '';
  /** Every byte the operator sent on pod-b's policy stream. */
  let podBReceived = '';
  const run = randomBytes(4).toString('hex');
  const secretX = `llmproxy-e2e/x-${run}`;
  const secretY = `llmproxy-e2e/y-${run}`;
  const secretDenied = `llmproxy-e2e/denied-${run}`;
  const secretMissing = `llmproxy-e2e/missing-${run}`;
  let keyX = '';
  let keyY = '';

  const spawnTs = (entry: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, entry), ...args],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH, NODE_OPTIONS: '', ...env },
      },
    );
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    return child;
  };

  const policyObject = (
    name: string,
    app: string,
    provider: string,
    secretId: string,
  ): KubeObject =>
    ({
      apiVersion: 'llmproxy.io/v1alpha1',
      kind: 'LlmPolicy',
      metadata: { name, namespace: ns },
      spec: {
        podSelector: { matchLabels: { app } },
        providers: [
          {
            name: provider,
            type: 'openai',
            baseURL: fake.url,
            // fetchFrom defaults to operator.
            credentials: { awsSecretsManager: { secretId, refreshInterval: '10s' } },
          },
        ],
        models: [{ provider, allow: ['gpt-4o-mini'] }],
      },
    }) as KubeObject;

  const createPod = async (name: string, app: string): Promise<string> => {
    const pod = await client.create(Pods, injectedPod({ name, namespace: ns, labels: { app } }));
    return pod.metadata?.uid ?? '';
  };

  const podToken = (name: string, uid: string) =>
    cp.tokenFor(ns, 'app', { audiences: ['llmproxy.io'], boundPod: { name, uid } });

  const statusOf = async (name: string): Promise<LlmPolicyStatus | undefined> =>
    ((await client.get(LlmPolicies, name, ns)) as { status?: LlmPolicyStatus } | undefined)?.status;

  const ready = (status: LlmPolicyStatus | undefined) =>
    status?.conditions?.find((c) => c.type === 'Ready');

  const chat = async (): Promise<number> => {
    const res = await fetch(`${sidecarUrl}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    await res.arrayBuffer();
    return res.status;
  };

  beforeAll(async () => {
    cp = await sharedControlPlane();
    const crds = await cp.kubectl(['apply', '-f', path.join(repoRoot, 'crds')]);
    if (crds.code !== 0) throw new Error(`applying CRDs failed: ${crds.stderr}`);
    await cp.kubectl(['wait', '--for=condition=Established', 'crd/llmpolicies.llmproxy.io']);
    client = new KubeClient(loadKubeConfig(cp.kubeconfigPath));
    ns = await freshNamespace('operator-keys');
    await client.create(ServiceAccounts, { metadata: { name: 'app', namespace: ns } });
    [moto, fake, pki] = await Promise.all([startMoto(), startFakeProvider(), createTestPki()]);

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

    await client.create(LlmPolicies, policyObject('granted-x', 'a', 'openai', secretX));
    const withY = policyObject('granted-y', 'b', 'other', secretY) as KubeObject & {
      spec: { providers: Array<{ credentials: object }> };
    };
    withY.spec.providers[0]!.credentials = {
      awsSecretsManager: { secretId: secretY, jsonKey: 'apiKey', refreshInterval: '10s' },
    };
    await client.create(LlmPolicies, withY);
    await client.create(LlmPolicies, policyObject('missing', 'nobody', 'openai', secretMissing));
    const uidA = await createPod('pod-a', 'a');
    const uidB = await createPod('pod-b', 'b');

    dir = mkdtempSync(path.join(os.tmpdir(), 'llmproxy-operator-keys-'));
    writeFileSync(path.join(dir, 'ca.pem'), pki.caPem);
    writeFileSync(path.join(dir, 'tls.crt'), pki.certPem);
    writeFileSync(path.join(dir, 'tls.key'), pki.keyPem, { mode: 0o600 });
    writeFileSync(path.join(dir, 'token-a'), await podToken('pod-a', uidA));
    port = await freePort();
    operator = spawnTs(
      'operator/main.ts',
      [
        '--kubeconfig',
        cp.kubeconfigPath,
        '--tls-cert-file',
        path.join(dir, 'tls.crt'),
        '--tls-key-file',
        path.join(dir, 'tls.key'),
        '--listen',
        `127.0.0.1:${port}`,
        '--namespace',
        ns,
        '--leader-election-namespace',
        ns,
        '--identity',
        'operator-0',
        '--log-level',
        'debug',
      ],
      {
        ...moto.env,
        AWS_ACCESS_KEY_ID: identity.accessKeyId,
        AWS_SECRET_ACCESS_KEY: identity.secretAccessKey,
      },
    );

    // pod-a: the real sidecar in managed mode, without any AWS setting or credential.
    const [listen, admin] = await Promise.all([freePort(), freePort()]);
    sidecarUrl = `http://127.0.0.1:${listen}`;
    sidecarAdmin = `http://127.0.0.1:${admin}`;
    sidecar = spawnTs(
      'sidecar/main.ts',
      [
        '--operator-url',
        `https://127.0.0.1:${port}`,
        '--token-file',
        path.join(dir, 'token-a'),
        '--ca-file',
        path.join(dir, 'ca.pem'),
        '--pod-name',
        'pod-a',
        '--listen',
        `127.0.0.1:${listen}`,
        '--admin-listen',
        `127.0.0.1:${admin}`,
        '--log-level',
        'debug',
      ],
      { HOME: dir },
    );

    // pod-b: its stream read byte for byte, to see everything the operator ever sends it.
    const tokenB = await podToken('pod-b', uidB);
    await waitUntil(async () => {
      if (podBStream) return true;
      await new Promise<void>((resolve) => {
        const req = https.request(`https://127.0.0.1:${port}/v1/policy/watch`, {
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
    for (const child of [sidecar, operator]) {
      if (child && child.exitCode === null) child.kill('SIGTERM');
    }
    await new Promise((r) => setTimeout(r, 500));
    for (const child of [sidecar, operator]) {
      if (child && child.exitCode === null) child.kill('SIGKILL');
    }
    await moto?.disableAuth().catch(() => undefined);
    await Promise.all([moto?.stop(), fake?.close()]);
    client?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('gives the granted pod its key: a request through its sidecar carries it', async () => {
    fake.acceptKey(keyX);
    await waitUntil(async () => {
      const res = await fetch(`${sidecarAdmin}/readyz`).catch(() => undefined);
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
      await client.create(LlmPolicies, policyObject('denied', 'nobody', 'openai', secretDenied));
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
    const everything = [output, events.stdout, policies.stdout].join('\n');
    expect(output).toContain('keys received from the operator');
    for (const value of canaries) expect(everything).not.toContain(value);
  });
});
