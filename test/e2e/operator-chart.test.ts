// The chart's RBAC is enough for the operator as built: `helm install` on the local control
// plane, then `node dist/operator/main.js --config <the rendered config>` out of cluster,
// authenticated AS the chart's ServiceAccount (a minted token), with the chart's webhook
// configurations pointed at it by `clientConfig.url` (envtest's way; test/support/local-operator.ts,
// as make dev runs it). An opted-in Pod is stored
// with the sidecar; the sidecar, started from that Pod's injected args/env with a token minted
// for it and the CA from its annotation, gets its policy and serves a request to the provider.
//
// What a test cannot do like a cluster: Service DNS (the operator URL's host becomes 127.0.0.1,
// hence --cert-ip-san) and fixed ports (the chart gets free ones; the sidecar's are remapped).
// Needs `npm run build` (dist/).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { OperatorSettings } from '../../operator/config-file.js';
import { KubeClient, LlmPolicies, ServiceAccounts } from '../../operator/kube/index.js';
import { startFakeProvider, type FakeProvider } from '../fake-provider/server.js';
import { freshNamespace, sharedControlPlane, type ControlPlane } from '../support/e2e.js';
import {
  injectedOpenAiEnv,
  startInjectedSidecar,
  type InjectedSidecar,
  type StoredPod,
} from '../support/injected-sidecar.js';
import {
  createPodThroughWebhook,
  httpsGet,
  startLocalOperator,
  type LocalOperator,
} from '../support/local-operator.js';
import { optedInPod } from '../support/pods.js';
import { llmPolicy } from '../support/policies.js';
import { waitUntil } from '../support/sidecar.js';

let cp: ControlPlane;
let admin: KubeClient;
let ns: string;
let appNs: string;
let operator: LocalOperator | undefined;
let settings: OperatorSettings;
let dir: string;
let fake: FakeProvider;
let sidecar: InjectedSidecar | undefined;
/** Everything the operator and the sidecar wrote. */
let output = '';
let healthPort: number;
let metricsPort: number;
let saToken = '';

/** Whether a TLS 1.2 client is refused (every listener speaks TLS 1.3 only). */
function tls12Refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(
      `https://127.0.0.1:${port}/healthz`,
      { rejectUnauthorized: false, maxVersion: 'TLSv1.2' },
      (res) => {
        res.resume();
        resolve(false);
      },
    );
    req.on('error', () => resolve(true));
  });
}

async function ok(args: string[], input?: string): Promise<string> {
  const res = await cp.kubectl(args, input === undefined ? {} : { input });
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout;
}

beforeAll(async () => {
  cp = await sharedControlPlane();
  admin = new KubeClient(await cp.kubeConfig());
  dir = mkdtempSync(path.join(os.tmpdir(), 'llmproxy-operator-chart-'));
  fake = await startFakeProvider();
  ns = await freshNamespace('operator-chart');
  appNs = await freshNamespace('operator-chart-app');
  // The isolated install's webhooks only see namespaces carrying this label.
  await ok(['label', 'namespace', appNs, `llmproxy.io/chart-test=${ns}`]);
  operator = await startLocalOperator(cp, {
    namespace: ns,
    onOutput: (text) => (output += text),
  });
  ({ settings, healthPort, metricsPort, token: saToken } = operator);
}, 240_000);

afterAll(async () => {
  await sidecar?.stop();
  await operator?.stop();
  await fake?.close();
  admin?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** An opted-in Pod, as stored (after the webhook). */
function createInjectedPod(labels: Record<string, string>): Promise<StoredPod> {
  return createPodThroughWebhook<StoredPod>(cp, appNs, optedInPod(labels));
}

describe('the operator under the chart: installed RBAC, its config file, out of cluster', () => {
  it('serves health over TLS 1.3 and holds the Lease named after the Service', async () => {
    expect((await httpsGet(`https://127.0.0.1:${healthPort}/healthz`)).status).toBe(200);
    for (const port of [healthPort, metricsPort, settings.operator.distributionPort]) {
      expect(await tls12Refused(port)).toBe(true);
    }
    const lease = JSON.parse(
      await ok(['get', 'lease', settings.operator.serviceName, '-n', ns, '-o', 'json']),
    ) as { spec?: { holderIdentity?: string } };
    expect(lease.spec?.holderIdentity).toBe('operator-0');
    // The leader wrote the certificate Secret and the caBundles.
    const mutating = JSON.parse(
      await ok([
        'get',
        'mutatingwebhookconfiguration',
        settings.operator.webhookConfigurationName,
        '-o',
        'json',
      ]),
    ) as { webhooks: { clientConfig: { caBundle?: string } }[] };
    expect(mutating.webhooks.every((w) => (w.clientConfig.caBundle ?? '').length > 0)).toBe(true);
  });

  it('injects an opted-in Pod, and its sidecar gets the policy and reaches the provider', async () => {
    await admin.create(ServiceAccounts, { metadata: { name: 'app', namespace: appNs } });
    await admin.create(
      LlmPolicies,
      llmPolicy({ name: 'chat', namespace: appNs, app: 'chat', baseURL: fake.url }),
    );
    const pod = await createInjectedPod({ app: 'chat' });
    expect(pod.metadata.annotations['llmproxy.io/status']).toBeTruthy();

    // Ready: the policy arrived from the operator.
    sidecar = await startInjectedSidecar(cp, pod, {
      dir,
      distributionPort: settings.operator.distributionPort,
      onOutput: (text) => (output += text),
    });
    const { baseUrl, apiKey } = injectedOpenAiEnv(pod, sidecar, settings.sidecar.port);
    const res = await fetch(`${baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(200);
    expect(fake.requests.some((r) => r.path.endsWith('/chat/completions'))).toBe(true);

    const metrics = await httpsGet(`https://127.0.0.1:${metricsPort}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/llmproxy_operator_connected_sidecars 1\b/);
    expect(metrics.body).toMatch(/llmproxy_operator_policy_acks_total\{result="ack"\} [1-9]/);
    expect(metrics.body).toMatch(/llmproxy_operator_leader 1\b/);
    // No token of the pod's or of the operator's in anything the processes printed.
    expect(output).not.toContain(sidecar.token);
    expect(output).not.toContain(saToken);
  });

  it('refuses a policy (403, counted) to a pod that projects an llmproxy.io token without opting in', async () => {
    // Selected by the policy, but not annotated for injection: the webhook never saw it.
    const stray = JSON.parse(
      await ok(
        ['create', '-n', appNs, '-o', 'json', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'stray', labels: { app: 'chat' } },
          spec: {
            serviceAccountName: 'app',
            containers: [{ name: 'app', image: 'registry.example/chat:1' }],
          },
        }),
      ),
    ) as StoredPod;
    expect(stray.metadata.annotations?.['llmproxy.io/status']).toBeUndefined();
    const token = await cp.tokenFor(appNs, 'app', {
      audiences: ['llmproxy.io'],
      boundPod: { name: 'stray', uid: stray.metadata.uid },
    });
    const watch = (): Promise<number> =>
      new Promise((resolve) => {
        const req = https.get(
          `https://127.0.0.1:${settings.operator.distributionPort}/v1/policy/watch`,
          { rejectUnauthorized: false, headers: { authorization: `Bearer ${token}` } },
          (res) => {
            res.destroy();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', () => resolve(0));
      });
    // Until the operator's cache has the pod, the stream opens and carries nothing.
    await waitUntil(async () => (await watch()) === 403, 10_000, 200);
    const metrics = await httpsGet(`https://127.0.0.1:${metricsPort}/metrics`);
    expect(metrics.body).toMatch(
      /llmproxy_operator_auth_failures_total\{reason="not_injected"\} [1-9]/,
    );
  });

  it('writes policy status as the ServiceAccount, through the status subresource, only on change', async () => {
    type Status = {
      metadata: { resourceVersion: string; generation: number };
      status?: {
        observedGeneration?: number;
        selectedPods?: number;
        conditions?: { type: string; status: string; reason: string }[];
      };
    };
    const read = async (name: string) =>
      JSON.parse(await ok(['get', 'llmpolicy', name, '-n', appNs, '-o', 'json'])) as Status;
    const ready = (p: Status) => p.status?.conditions?.find((c) => c.type === 'Ready');
    await waitUntil(async () => (await read('chat')).status?.selectedPods === 1, 20_000);
    const chat = await read('chat');
    expect(chat.status?.observedGeneration).toBe(chat.metadata.generation);
    expect(ready(chat)).toMatchObject({ status: 'True', reason: 'Ready' });

    await admin.create(
      LlmPolicies,
      llmPolicy({ name: 'nobody', namespace: appNs, app: 'nobody', baseURL: fake.url }),
    );
    await waitUntil(async () => ready(await read('nobody'))?.reason === 'NoPodsSelected', 20_000);
    expect((await read('nobody')).status?.selectedPods).toBe(0);

    // Transitions and unselected injected pods leave Events (written as the ServiceAccount).
    const lonely = await createInjectedPod({ app: 'lonely' });
    const events = async () =>
      (
        JSON.parse(await ok(['get', 'events.events.k8s.io', '-n', appNs, '-o', 'json'])) as {
          items: { reason: string; regarding: { kind: string; name: string } }[];
        }
      ).items;
    await waitUntil(
      async () =>
        (await events()).some(
          (e) => e.reason === 'NoPolicySelected' && e.regarding.name === lonely.metadata.name,
        ),
      20_000,
      200,
    );
    expect(
      (await events()).some((e) => e.reason === 'NoPodsSelected' && e.regarding.name === 'nobody'),
    ).toBe(true);

    // Nothing changes: no more writes (the resourceVersion stays).
    const before = (await read('chat')).metadata.resourceVersion;
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await read('chat')).metadata.resourceVersion).toBe(before);
  });
});
