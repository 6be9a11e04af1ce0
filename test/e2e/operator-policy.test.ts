// From LlmPolicy objects to a sidecar's enforced policy, against the real API server: the
// PolicySource (informers + compiler) behind the distribution server, as the operator runs it.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PolicySource } from '../../operator/controllers/policy-source.js';
import {
  startDistributionServer,
  type DistributionServer,
} from '../../operator/distribution/index.js';
import {
  KubeClient,
  LlmPolicies,
  Pods,
  ServiceAccounts,
  loadKubeConfig,
  type KubeObject,
} from '../../operator/kube/index.js';
import { connectToOperator, type OperatorConnection } from '../../sidecar/control/index.js';
import type { CompiledPolicy } from '../../sidecar/policy/compiled.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { freshNamespace, sharedControlPlane } from '../support/e2e.js';
import { createInjectedPodWithToken } from '../support/pods.js';
import { createTestPki } from '../support/tls.js';

const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} };
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const llmPolicy = (ns: string, allow: string[], suspend = false): KubeObject =>
  ({
    apiVersion: 'llmproxy.io/v1alpha1',
    kind: 'LlmPolicy',
    metadata: { name: 'demo', namespace: ns },
    spec: {
      podSelector: { matchLabels: { app: 'demo' } },
      suspend,
      providers: [
        {
          name: 'local',
          type: 'openai-compatible',
          baseURL: 'http://vllm.models.svc.cluster.local:8000/v1',
          credentials: { none: {} },
        },
      ],
      models: [{ provider: 'local', allow }],
    },
  }) as KubeObject;

const allowed = (p: CompiledPolicy | undefined) =>
  (p?.providers ?? []).flatMap((g) => g.models.allow.map((r) => r.pattern));

describe('policies reach the pods they select', () => {
  let client: KubeClient;
  let ns: string;
  let dir: string;
  let source: PolicySource;
  let server: DistributionServer;
  let sidecar: OperatorConnection;
  let podUid = '';
  const received: CompiledPolicy[] = [];

  beforeAll(async () => {
    const cp = await sharedControlPlane();
    const crds = await cp.kubectl(['apply', '-f', path.join(repoRoot, 'crds')]);
    if (crds.code !== 0) throw new Error(`applying CRDs failed: ${crds.stderr}`);
    await cp.kubectl(['wait', '--for=condition=Established', 'crd/llmpolicies.llmproxy.io']);
    client = new KubeClient(loadKubeConfig(cp.kubeconfigPath));
    ns = await freshNamespace('operator-policy');
    await client.create(ServiceAccounts, { metadata: { name: 'app', namespace: ns } });
    await client.create(LlmPolicies, llmPolicy(ns, ['llama-3-*']));

    const pki = await createTestPki();
    dir = mkdtempSync(path.join(os.tmpdir(), 'llmproxy-policy-e2e-'));
    writeFileSync(path.join(dir, 'ca.pem'), pki.caPem);
    // A pod as the webhook stores it: only pods with its status annotation are served.
    await createInjectedPodWithToken(
      cp,
      client,
      { name: 'demo-1', namespace: ns, labels: { app: 'demo' } },
      path.join(dir, 'token'),
    );
    podUid = (await client.get(Pods, 'demo-1', ns))?.metadata?.uid ?? '';
    source = new PolicySource({
      client,
      log: quiet,
      namespace: ns,
      onChange: (affects) => server.notify(affects),
    });
    server = await startDistributionServer({
      host: '127.0.0.1',
      port: 0,
      tls: { cert: pki.certPem, key: pki.keyPem },
      reviewToken: (token, audiences) => client.tokenReview(token, audiences),
      policyFor: (pod) => source.policyFor(pod),
      log: quiet,
    });
    await source.start();
    sidecar = connectToOperator({
      url: server.url,
      tokenFile: path.join(dir, 'token'),
      caFile: path.join(dir, 'ca.pem'),
      log: quiet,
      onPolicy: (p) => received.push(p),
    });
  });

  afterAll(async () => {
    await sidecar?.close();
    await server?.close();
    await source?.stop();
    client?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('compiles and delivers the policy that selects the pod', async () => {
    await waitFor(() => received.length >= 1);
    expect(allowed(received.at(-1))).toEqual(['llama-3-*']);
    expect(source.policiesSelecting({ namespace: ns, podName: 'demo-1', podUid })).toEqual([
      `${ns}/demo`,
    ]);
    await waitFor(() => server.podState(podUid)?.acked === received.at(-1)?.version);
  });

  it('pushes an edited policy to the sidecar within a second, acked', async () => {
    const count = received.length;
    const started = Date.now();
    await client.patch(LlmPolicies, 'demo', ns, {
      spec: { models: [{ provider: 'local', allow: ['llama-3-*', 'qwen-*'] }] },
    });
    await waitFor(() => received.length > count && allowed(received.at(-1)).includes('qwen-*'));
    await waitFor(() => server.podState(podUid)?.acked === received.at(-1)?.version);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('suspends a policy on the pod within a second', async () => {
    const started = Date.now();
    await client.patch(LlmPolicies, 'demo', ns, { spec: { suspend: true } });
    await waitFor(() => allowed(received.at(-1)).length === 0);
    expect(Date.now() - started).toBeLessThan(1000);
    await client.patch(LlmPolicies, 'demo', ns, { spec: { suspend: false } });
    await waitFor(() => allowed(received.at(-1)).length > 0);
  });

  it('takes the grant away when the pod stops matching the selector', async () => {
    await client.patch(Pods, 'demo-1', ns, { metadata: { labels: { app: 'other' } } });
    await waitFor(() => received.at(-1)?.providers.length === 0);
    expect(sidecar.state().policyVersion).toBe(received.at(-1)?.version);
  });
});
