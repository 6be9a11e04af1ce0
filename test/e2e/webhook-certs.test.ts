// The operator's certificate manager against the real API server: the leader alone writes the
// Secret and patches caBundle into both webhook configurations, a follower serves what the
// Secret holds, and a full CA rotation (stage, promote, drop) never breaks the API server's
// calls to the webhook or the CA bundle published to pods.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { parseOperatorSettings, type OperatorSettings } from '../../operator/config-file.js';
import {
  MutatingWebhookConfigurations,
  Secrets,
  ValidatingWebhookConfigurations,
  startCertManager,
  type CertManager,
  type ServingMaterial,
} from '../../operator/certs/index.js';
import { KubeClient, Pods, type Pod } from '../../operator/kube/index.js';
import {
  admitLlmObject,
  admitPod,
  mutatingWebhookConfiguration,
  startWebhookServer,
  validatingWebhookConfiguration,
  type WebhookServer,
} from '../../operator/webhooks/index.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { freshNamespace, sharedControlPlane, type ControlPlane } from '../support/e2e.js';

const silent: Logger = { error() {}, warn() {}, info() {}, debug() {} };
const DAY = 24 * 3600 * 1000;
const RUN_LABEL = 'llmproxy-e2e-certs-run';
const run = randomBytes(4).toString('hex');

let cp: ControlPlane;
let client: KubeClient;
let settings: OperatorSettings;
let operatorNs: string;
let appNs: string;
// The API server checks validity against the real clock, and certificates start BACKDATE (5 min)
// before they are made: so the simulated timeline starts two days ago and its rotation steps
// land within minutes of the real now, with an overlap shorter than the backdating.
const OVERLAP = 2 * 60 * 1000;
let clock = Date.now() - 2 * DAY;
let leader: CertManager;
let follower: CertManager;
let server: WebhookServer | undefined;
let followerMaterial: ServingMaterial | undefined;
let injected: Pod[] = [];

async function ok(args: string[], input?: string): Promise<string> {
  const res = await cp.kubectl(args, input === undefined ? {} : { input });
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout;
}

const certsIn = (bundle: string) => bundle.match(/BEGIN CERTIFICATE/g)?.length ?? 0;

async function caBundles(): Promise<string[]> {
  const name = settings.operator.webhookConfigurationName;
  const configs = await Promise.all([
    client.get(MutatingWebhookConfigurations, name),
    client.get(ValidatingWebhookConfigurations, name),
  ]);
  return configs.flatMap((c) =>
    (c?.webhooks ?? []).map((w) =>
      Buffer.from(w.clientConfig?.caBundle ?? '', 'base64').toString(),
    ),
  );
}

/** Creates an opted-in pod through the API server, which must trust the webhook's certificate. */
async function createInjectedPod(): Promise<Pod> {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'rot-', annotations: { 'llmproxy.io/inject': 'true' } },
    spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] },
  };
  const deadline = Date.now() + 20_000;
  let last = '';
  while (Date.now() < deadline) {
    const res = await cp.kubectl(['create', '-n', appNs, '-o', 'json', '-f', '-'], {
      input: JSON.stringify(pod),
    });
    if (res.code === 0 && res.stdout.includes('llmproxy-sidecar')) {
      const created = JSON.parse(res.stdout) as Pod;
      injected.push(created);
      return created;
    }
    last = res.stderr.slice(0, 300);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no injected pod: ${last}`);
}

/** Both managers take a pass at the same (simulated) time, leader first. */
async function pass(): Promise<void> {
  injected = (await client.list(Pods, { namespace: appNs })).items;
  await leader.reconcile();
  await follower.reconcile();
}

beforeAll(async () => {
  cp = await sharedControlPlane();
  client = new KubeClient(await cp.kubeConfig());
  operatorNs = await freshNamespace('webhook-certs-operator');
  appNs = await freshNamespace('webhook-certs-app');
  await ok(['label', 'namespace', appNs, `${RUN_LABEL}=${run}`]);
  settings = parseOperatorSettings({
    operator: { namespace: operatorNs, webhookConfigurationName: `llmproxy-e2e-certs-${run}` },
  });
  const common = {
    client,
    settings,
    log: silent,
    intervalMs: 3600_000,
    now: () => clock,
    // The API server reaches the test's webhook at 127.0.0.1; a real Service uses DNS names only.
    policy: {
      ips: ['127.0.0.1'],
      caLifetimeMs: 3 * DAY,
      leafLifetimeMs: 3 * DAY,
      overlapMs: OVERLAP,
    },
  };
  leader = startCertManager({
    ...common,
    isLeader: () => true,
    onMaterial: () => undefined,
    injectedPods: () => injected,
  });
  follower = startCertManager({
    ...common,
    isLeader: () => false,
    onMaterial: (material) => {
      followerMaterial = material;
      server?.setCertificate(material);
    },
  });
});

afterAll(async () => {
  leader?.stop();
  follower?.stop();
  await server?.close();
  const name = settings?.operator.webhookConfigurationName;
  if (name) {
    await cp.kubectl(['delete', 'mutatingwebhookconfiguration', name, '--ignore-not-found']);
    await cp.kubectl(['delete', 'validatingwebhookconfiguration', name, '--ignore-not-found']);
  }
});

describe('certificate manager', () => {
  it('a follower writes nothing; the leader creates the Secret and patches both caBundles', async () => {
    await follower.reconcile();
    expect(await client.get(Secrets, 'llmproxy-operator-tls', operatorNs)).toBeUndefined();
    expect(follower.material()).toBeUndefined();

    // The webhook server has to listen before the configuration can name its URL.
    const placeholder = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      tls: await selfSignedForStartup(),
      log: silent,
      mutatePod: () => ({ uid: '', allowed: true }),
      validateLlmObject: () => ({ uid: '', allowed: true }),
    });
    const port = placeholder.port;
    await placeholder.close();
    const options = {
      config: settings,
      url: `https://127.0.0.1:${port}`,
      extraNamespaceExpressions: [{ key: RUN_LABEL, operator: 'In' as const, values: [run] }],
    };
    await ok(['apply', '-f', '-'], JSON.stringify(mutatingWebhookConfiguration(options)));
    await ok(['apply', '-f', '-'], JSON.stringify(validatingWebhookConfiguration(options)));

    await pass();
    const secret = await client.get(Secrets, 'llmproxy-operator-tls', operatorNs);
    expect(secret?.data?.['tls.crt']).toBeDefined();
    expect(followerMaterial?.cert).toBe(leader.material()?.cert);
    const bundles = await caBundles();
    expect(bundles).toHaveLength(3);
    for (const bundle of bundles) expect(bundle).toBe(followerMaterial?.caBundle);

    const material = followerMaterial as ServingMaterial;
    server = await startWebhookServer({
      host: '127.0.0.1',
      port,
      tls: material,
      log: silent,
      mutatePod: (request) =>
        admitPod(request, {
          config: settings,
          namespaceLabels: () => ({}),
          caBundle: () => followerMaterial?.caBundle ?? '',
          nativeSidecars: true,
          version: '0.1.0-e2e',
        }),
      validateLlmObject: (request) =>
        admitLlmObject(request, { config: settings, budgetsInNamespace: () => [] }),
    });
    const pod = await createInjectedPod();
    expect(pod.metadata?.annotations?.['llmproxy.io/ca-bundle']).toBe(material.caBundle);
  });

  it('rotates the CA with old and new trusted side by side, and the API server never loses the webhook', async () => {
    const firstCert = followerMaterial?.cert;
    const firstBundle = followerMaterial?.caBundle ?? '';

    // Near the end of the CA's life: a next CA is published next to the current one.
    clock = Date.now() + 10_000;
    await pass();
    const staged = followerMaterial?.caBundle ?? '';
    expect(certsIn(staged)).toBe(2);
    expect(staged.startsWith(firstBundle.trim())).toBe(true);
    for (const bundle of await caBundles()) expect(bundle).toBe(staged);
    await createInjectedPod();
    // Running pods got the new bundle too (the leader patched their annotation).
    const early = await client.get(Pods, injected[0]?.metadata?.name ?? '', appNs);
    expect(early?.metadata?.annotations?.['llmproxy.io/ca-bundle']).toBe(staged);

    // After the overlap: the serving certificate comes from the new CA; the old CA stays trusted.
    clock += OVERLAP + 10_000;
    await pass();
    expect(followerMaterial?.cert).not.toBe(firstCert);
    expect(certsIn(followerMaterial?.caBundle ?? '')).toBe(2);
    await createInjectedPod();

    // After another overlap: the old CA is dropped.
    clock += OVERLAP + 10_000;
    await pass();
    const final = followerMaterial?.caBundle ?? '';
    expect(certsIn(final)).toBe(1);
    expect(final).not.toBe(firstBundle);
    for (const bundle of await caBundles()) expect(bundle).toBe(final);
    const pod = await createInjectedPod();
    expect(pod.metadata?.annotations?.['llmproxy.io/ca-bundle']).toBe(final);
  });
});

describe('certificate manager under cert-manager', () => {
  it('even the leader only reads the Secret cert-manager fills, and leaves caBundles to its cainjector', async () => {
    const ns = await freshNamespace('webhook-certs-cm');
    const cmSettings = parseOperatorSettings({
      operator: {
        namespace: ns,
        certManager: true,
        webhookConfigurationName: settings.operator.webhookConfigurationName,
      },
    });
    let got: ServingMaterial | undefined;
    const manager = startCertManager({
      client,
      settings: cmSettings,
      log: silent,
      intervalMs: 3600_000,
      isLeader: () => true,
      onMaterial: (material) => (got = material),
    });
    try {
      const before = await caBundles();
      await manager.reconcile();
      expect(await client.get(Secrets, 'llmproxy-operator-tls', ns)).toBeUndefined();
      // What cert-manager writes for a Certificate: tls.crt, tls.key and ca.crt.
      const { createCa, createServingCert } = await import('../../operator/certs/index.js');
      const ca = await createCa('cert-manager CA', Date.now(), DAY);
      const leaf = await createServingCert(ca, ['llmproxy-operator'], Date.now(), DAY);
      const b64 = (pem: string) => Buffer.from(pem).toString('base64');
      await client.create(
        Secrets,
        {
          metadata: { name: 'llmproxy-operator-tls', namespace: ns },
          type: 'kubernetes.io/tls',
          data: {
            'tls.crt': b64(leaf.certPem),
            'tls.key': b64(leaf.keyPem),
            'ca.crt': b64(ca.certPem),
          },
        },
        ns,
      );
      await manager.reconcile();
      expect(got).toEqual({ cert: leaf.certPem, key: leaf.keyPem, caBundle: ca.certPem });
      expect(await caBundles()).toEqual(before);
      const secret = await client.get(Secrets, 'llmproxy-operator-tls', ns);
      expect(Object.keys(secret?.data ?? {}).sort()).toEqual(['ca.crt', 'tls.crt', 'tls.key']);
    } finally {
      manager.stop();
    }
  });
});

/** Any certificate will do to learn a free port before the real one exists. */
async function selfSignedForStartup(): Promise<{ cert: string; key: string }> {
  const { createCa } = await import('../../operator/certs/index.js');
  const ca = await createCa('placeholder', Date.now(), DAY);
  return { cert: ca.certPem, key: ca.keyPem };
}
