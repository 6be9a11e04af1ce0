// The whole path: an annotated pod goes through the mutating webhook (startAdmission, with the
// operator's own certificates), and the sidecar it was given is started as a process from the
// stored Pod's container spec (its args and env, a token minted for that Pod, the CA from its
// annotation, as the kubelet would project them) against the operator process; an app request
// through the injected OPENAI_BASE_URL reaches the provider.
//
// What a test cannot do like a cluster: Service DNS (the operator URL's host becomes 127.0.0.1)
// and fixed ports (each injected port is mapped to a free one). Needs `npm run build` (dist/).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Secrets } from '../../operator/certs/index.js';
import { parseOperatorSettings, type OperatorSettings } from '../../operator/config-file.js';
import { KubeClient, LlmPolicies, ServiceAccounts } from '../../operator/kube/index.js';
import {
  mutatingWebhookConfiguration,
  startAdmission,
  type Admission,
} from '../../operator/webhooks/index.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { startFakeProvider, type FakeProvider } from '../fake-provider/server.js';
import { freshNamespace, sharedControlPlane, type ControlPlane } from '../support/e2e.js';
import {
  injectedOpenAiEnv,
  startInjectedSidecar,
  type InjectedSidecar,
  type StoredPod,
} from '../support/injected-sidecar.js';
import { createPodThroughWebhook, httpsGet } from '../support/local-operator.js';
import {
  applyCrds,
  startOperatorProcess,
  type OperatorProcess,
} from '../support/operator-process.js';
import { optedInPod } from '../support/pods.js';
import { llmPolicy } from '../support/policies.js';
import { freePort } from '../support/sidecar.js';

const silent: Logger = { error() {}, warn() {}, info() {}, debug() {} };
const RUN_LABEL = 'llmproxy-e2e-sidecar-run';
const run = randomBytes(4).toString('hex');

let cp: ControlPlane;
let client: KubeClient;
let settings: OperatorSettings;
let ns: string;
let dir: string;
let fake: FakeProvider;
let admission: Admission | undefined;
let operator: OperatorProcess | undefined;
let sidecar: InjectedSidecar | undefined;

async function ok(args: string[], input?: string): Promise<string> {
  const res = await cp.kubectl(args, input === undefined ? {} : { input });
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout;
}

beforeAll(async () => {
  cp = await sharedControlPlane();
  client = new KubeClient(await cp.kubeConfig());
  await applyCrds(cp);
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
  await client.create(
    LlmPolicies,
    llmPolicy({ name: 'chat', namespace: ns, app: 'chat', baseURL: fake.url }),
  );
  operator = await startOperatorProcess({
    cp,
    namespace: ns,
    leaseNamespace: operatorNs,
    tlsDir: dir,
    ca: admission.caBundle(),
    port: settings.operator.distributionPort,
  });
});

afterAll(async () => {
  await sidecar?.stop();
  await operator?.kill();
  await admission?.stop();
  await fake?.close();
  const name = settings?.operator.webhookConfigurationName;
  if (name)
    await cp.kubectl(['delete', 'mutatingwebhookconfiguration', name, '--ignore-not-found']);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('an injected pod, end to end', () => {
  it('runs the sidecar from the stored Pod spec and serves the app through the injected base URL', async () => {
    const pod = await createPodThroughWebhook<StoredPod>(cp, ns, optedInPod({ app: 'chat' }));
    // Ready: the policy arrived from the operator.
    sidecar = await startInjectedSidecar(cp, pod, {
      dir,
      distributionPort: settings.operator.distributionPort,
    });
    // The kubelet's probes: HTTPS on the probe port (it does not verify the certificate).
    const probe = sidecar.ports.get(String(settings.sidecar.probePort));
    expect((await httpsGet(`https://127.0.0.1:${probe}/healthz`)).status).toBe(200);

    const { baseUrl, apiKey } = injectedOpenAiEnv(pod, sidecar, settings.sidecar.port);
    const res = await fetch(`${baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
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
