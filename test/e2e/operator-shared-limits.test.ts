// A `scope: shared` rate limit without Redis, against the real API server: the operator divides
// it among the injected pods its policy selects and re-pushes every share as pods come and go.
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
import { freshNamespace, sharedControlPlane, type ControlPlane } from '../support/e2e.js';
import { createInjectedPodWithToken } from '../support/pods.js';
import { createTestPki, type TestPki } from '../support/tls.js';

const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} };
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const HOLD = 'llmproxy.io/e2e-hold';

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sharedPolicy = (ns: string): KubeObject =>
  ({
    apiVersion: 'llmproxy.io/v1alpha1',
    kind: 'LlmPolicy',
    metadata: { name: 'demo', namespace: ns },
    spec: {
      podSelector: { matchLabels: { app: 'demo' } },
      providers: [
        {
          name: 'local',
          type: 'openai-compatible',
          baseURL: 'http://vllm.models.svc.cluster.local:8000/v1',
          credentials: { none: {} },
        },
      ],
      models: [{ provider: 'local', allow: ['*'] }],
      rateLimits: [
        { id: 'team', requestsPerMinute: 600, scope: 'shared' },
        { id: 'each', requestsPerMinute: 60 },
      ],
    },
  }) as KubeObject;

/** This pod's share of the shared limit as last pushed (absent = the whole limit). */
const shareOf = (policy: CompiledPolicy | undefined) =>
  policy?.rateLimits?.find((l) => l.id.endsWith('/team'))?.share ?? 1;

describe('shared rate limits divided among the pods of a policy', () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let ns: string;
  let dir: string;
  let pki: TestPki;
  let source: PolicySource;
  let server: DistributionServer;
  const sidecars = new Map<string, { conn: OperatorConnection; received: CompiledPolicy[] }>();

  /**
   * A pod as the webhook stores it (only pods with its status annotation hold a share) and its
   * managed sidecar's policy stream, authenticated as the pod by its bound token.
   */
  async function sidecarOf(name: string, finalizers?: string[]) {
    const tokenFile = path.join(dir, `${name}.token`);
    const fixture = { name, namespace: ns, labels: { app: 'demo' }, finalizers };
    await createInjectedPodWithToken(cp, client, fixture, tokenFile);
    const received: CompiledPolicy[] = [];
    const conn = connectToOperator({
      url: server.url,
      tokenFile,
      caFile: path.join(dir, 'ca.pem'),
      log: quiet,
      onPolicy: (p) => received.push(p),
    });
    const sidecar = { conn, received };
    sidecars.set(name, sidecar);
    return sidecar;
  }

  beforeAll(async () => {
    cp = await sharedControlPlane();
    const crds = await cp.kubectl(['apply', '-f', path.join(repoRoot, 'crds')]);
    if (crds.code !== 0) throw new Error(`applying CRDs failed: ${crds.stderr}`);
    await cp.kubectl(['wait', '--for=condition=Established', 'crd/llmpolicies.llmproxy.io']);
    client = new KubeClient(loadKubeConfig(cp.kubeconfigPath));
    ns = await freshNamespace('shared-limits');
    await client.create(ServiceAccounts, { metadata: { name: 'app', namespace: ns } });
    await client.create(LlmPolicies, sharedPolicy(ns));
    pki = await createTestPki();
    dir = mkdtempSync(path.join(os.tmpdir(), 'llmproxy-shared-e2e-'));
    writeFileSync(path.join(dir, 'ca.pem'), pki.caPem);
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
  });

  afterAll(async () => {
    for (const { conn } of sidecars.values()) await conn.close();
    await server?.close();
    await source?.stop();
    client?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives each of two pods half of the shared limit and the whole per-pod limit', async () => {
    const a = await sidecarOf('demo-a');
    const b = await sidecarOf('demo-b', [HOLD]);
    await waitFor(() => shareOf(a.received.at(-1)) === 0.5 && shareOf(b.received.at(-1)) === 0.5);
    const each = a.received.at(-1)?.rateLimits?.find((l) => l.id.endsWith('/each'));
    expect(each).toMatchObject({ scope: 'pod', requestsPerMinute: 60 });
    expect(each?.share).toBeUndefined();
    expect(source.counts().get(`${ns}/demo`)).toBe(2);
  });

  it('hands a terminating pod’s share back to the others', async () => {
    const a = sidecars.get('demo-a')!;
    // The finalizer keeps demo-b terminating (deletionTimestamp set) rather than gone.
    await client.delete(Pods, 'demo-b', ns);
    await waitFor(() => shareOf(a.received.at(-1)) === 1);
    expect(a.received.at(-1)?.rateLimits?.find((l) => l.id.endsWith('/team'))?.share).toBe(
      undefined,
    );
    await client.patch(Pods, 'demo-b', ns, { metadata: { finalizers: null } });
    await waitFor(
      () => !source.policiesSelecting({ namespace: ns, podName: 'demo-b', podUid: '' }).length,
    );
  });

  it('divides again as pods join, and gives the last pod the whole limit after deletions', async () => {
    const a = sidecars.get('demo-a')!;
    const c = await sidecarOf('demo-c');
    const d = await sidecarOf('demo-d');
    const third = 0.333333333;
    await waitFor(() => [a, c, d].every((s) => shareOf(s.received.at(-1)) === third));
    await client.delete(Pods, 'demo-c', ns);
    await waitFor(() => [a, d].every((s) => shareOf(s.received.at(-1)) === 0.5));
    await client.delete(Pods, 'demo-d', ns);
    await waitFor(() => shareOf(a.received.at(-1)) === 1);
    // The remaining sidecar acked what it holds now.
    const uid = (await client.get(Pods, 'demo-a', ns))?.metadata?.uid ?? '';
    await waitFor(() => server.podState(uid)?.acked === a.received.at(-1)?.version);
  });
});
