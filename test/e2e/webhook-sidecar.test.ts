// The whole path: an annotated pod goes through the mutating webhook (startAdmission, with the
// operator's own certificates), and the sidecar it was given is started as a process from the
// stored Pod's container spec (its args and env, a token minted for that Pod, the CA from its
// annotation, as the kubelet would project them) against the operator process; an app request
// through the injected OPENAI_BASE_URL reaches the provider.
//
// What a test cannot do like a cluster: Service DNS (the operator URL's host becomes 127.0.0.1)
// and fixed ports (each injected port is mapped to a free one).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Secrets } from '../../operator/certs/index.js';
import { parseOperatorSettings, type OperatorSettings } from '../../operator/config-file.js';
import {
  KubeClient,
  LlmPolicies,
  ServiceAccounts,
  type KubeObject,
} from '../../operator/kube/index.js';
import {
  mutatingWebhookConfiguration,
  startAdmission,
  type Admission,
} from '../../operator/webhooks/index.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { startFakeProvider, type FakeProvider } from '../fake-provider/server.js';
import { freshNamespace, sharedControlPlane, type ControlPlane } from '../support/e2e.js';
import { freePort, waitUntil } from '../support/sidecar.js';
import { injectedSidecarCommand, type StoredPod } from '../support/injected-sidecar.js';

const silent: Logger = { error() {}, warn() {}, info() {}, debug() {} };
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RUN_LABEL = 'llmproxy-e2e-sidecar-run';
const run = randomBytes(4).toString('hex');

let cp: ControlPlane;
let client: KubeClient;
let settings: OperatorSettings;
let ns: string;
let dir: string;
let fake: FakeProvider;
let admission: Admission | undefined;
let operator: ChildProcess | undefined;
let sidecar: ChildProcess | undefined;
let output = '';

function spawnTs(entry: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, entry), ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, NODE_OPTIONS: '', ...env },
  });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return child;
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
  });
}

function httpsStatus(url: string, ca?: string): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get(url, ca ? { ca } : { rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
  });
}

async function ok(args: string[], input?: string): Promise<string> {
  const res = await cp.kubectl(args, input === undefined ? {} : { input });
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout;
}

beforeAll(async () => {
  cp = await sharedControlPlane();
  client = new KubeClient(await cp.kubeConfig());
  await ok(['apply', '-f', path.join(repoRoot, 'crds')]);
  await ok(['wait', '--for=condition=Established', 'crd/llmpolicies.llmproxy.io']);
  dir = mkdtempSync(path.join(os.tmpdir(), 'llmproxy-webhook-sidecar-'));
  fake = await startFakeProvider();
  const operatorNs = await freshNamespace('webhook-sidecar-operator');
  ns = await freshNamespace('webhook-sidecar-app');
  await ok(['label', 'namespace', ns, `${RUN_LABEL}=${run}`]);
  settings = parseOperatorSettings({
    operator: {
      namespace: operatorNs,
      webhookPort: await freePort(),
      distributionPort: await freePort(),
      webhookConfigurationName: `llmproxy-e2e-sidecar-${run}`,
    },
  });
  admission = await startAdmission({
    client,
    settings,
    log: silent,
    isLeader: () => true,
    version: '0.1.0-e2e',
    host: '127.0.0.1',
    certPolicy: { ips: ['127.0.0.1'] },
  });
  await ok(
    ['apply', '-f', '-'],
    JSON.stringify(
      mutatingWebhookConfiguration({
        config: settings,
        caBundle: admission.caBundle(),
        url: admission.server.url,
        extraNamespaceExpressions: [{ key: RUN_LABEL, operator: 'In', values: [run] }],
      }),
    ),
  );
  // The operator process serves the certificate the leader wrote to the Secret.
  const secret = await client.get(Secrets, settings.operator.certSecretName, operatorNs);
  const data = secret?.data ?? {};
  for (const key of ['tls.crt', 'tls.key']) {
    writeFileSync(path.join(dir, key), Buffer.from(data[key] ?? '', 'base64'));
  }
  await client.create(ServiceAccounts, { metadata: { name: 'app', namespace: ns } });
  await client.create(LlmPolicies, {
    apiVersion: 'llmproxy.io/v1alpha1',
    kind: 'LlmPolicy',
    metadata: { name: 'chat', namespace: ns },
    spec: {
      podSelector: { matchLabels: { app: 'chat' } },
      providers: [{ name: 'openai', type: 'openai', baseURL: fake.url, credentials: { none: {} } }],
      models: [{ provider: 'openai', allow: ['gpt-4o-mini'] }],
    },
  } as KubeObject);
  const port = settings.operator.distributionPort;
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
      operatorNs,
      '--identity',
      'operator-0',
    ],
    {},
  );
  await waitUntil(
    async () =>
      (await httpsStatus(`https://127.0.0.1:${port}/readyz`, admission?.caBundle())) === 200,
    60_000,
  );
});

afterAll(async () => {
  await stop(sidecar);
  await stop(operator);
  await admission?.stop();
  await fake?.close();
  const name = settings?.operator.webhookConfigurationName;
  if (name)
    await cp.kubectl(['delete', 'mutatingwebhookconfiguration', name, '--ignore-not-found']);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function sidecarCommand(pod: StoredPod) {
  return injectedSidecarCommand(cp, pod, {
    dir,
    distributionPort: settings.operator.distributionPort,
  });
}

describe('an injected pod, end to end', () => {
  it('runs the sidecar from the stored Pod spec and serves the app through the injected base URL', async () => {
    const created = JSON.parse(
      await ok(
        ['create', '-n', ns, '-o', 'json', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            generateName: 'chat-',
            labels: { app: 'chat' },
            annotations: { 'llmproxy.io/inject': 'true' },
          },
          spec: {
            serviceAccountName: 'app',
            containers: [{ name: 'app', image: 'registry.example/chat:1' }],
          },
        }),
      ),
    ) as StoredPod;
    const pod = JSON.parse(
      await ok(['get', 'pod', '-n', ns, created.metadata.name, '-o', 'json']),
    ) as StoredPod;
    const { args, env, ports } = await sidecarCommand(pod);
    sidecar = spawnTs('sidecar/main.ts', args, env);
    const admin = ports.get(String(settings.sidecar.adminPort));
    const probe = ports.get(String(settings.sidecar.probePort));
    await waitUntil(async () => {
      if (sidecar?.exitCode !== null) throw new Error(`sidecar exited:\n${output}`);
      const res = await fetch(`http://127.0.0.1:${admin}/readyz`).catch(() => undefined);
      return res?.status === 200;
    }, 30_000);
    // The kubelet's probes: HTTPS on the probe port (it does not verify the certificate).
    expect(await httpsStatus(`https://127.0.0.1:${probe}/healthz`)).toBe(200);

    const appEnv = Object.fromEntries(
      (pod.spec.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? '']),
    );
    const baseUrl = (appEnv.OPENAI_BASE_URL ?? '').replace(
      `:${settings.sidecar.port}/`,
      `:${ports.get(String(settings.sidecar.port))}/`,
    );
    const res = await fetch(`${baseUrl}/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${appEnv.OPENAI_API_KEY}`,
      },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(200);
    expect(fake.requests.some((r) => r.path.endsWith('/chat/completions'))).toBe(true);
    const refused = await fetch(`${baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(refused.status).toBe(403);
  });
});
