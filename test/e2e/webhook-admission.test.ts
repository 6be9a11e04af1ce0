// The admission webhooks against the real API server, registered the envtest way (clientConfig.url
// at our local TLS 1.3 server, caBundle from our own CA): injection, its filtering on the API
// server side, validation with messages and warnings, and failurePolicy with the server down.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { parseOperatorSettings, type OperatorSettings } from '../../operator/config-file.js';
import { createCa, createServingCert } from '../../operator/certs/index.js';
import {
  Informer,
  KubeClient,
  LlmBudgets,
  Namespaces,
  type KubeObject,
} from '../../operator/kube/index.js';
import {
  admitLlmObject,
  admitPod,
  detectNativeSidecars,
  mutatingWebhookConfiguration,
  startWebhookServer,
  validatingWebhookConfiguration,
  type WebhookServer,
} from '../../operator/webhooks/index.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { freshNamespace, sharedControlPlane, type ControlPlane } from '../support/e2e.js';

const silent: Logger = { error() {}, warn() {}, info() {}, debug() {} };
const RUN_LABEL = 'llmproxy-e2e-webhook-run';
const run = randomBytes(4).toString('hex');
const CRD_FILES = ['crds/llmpolicies.llmproxy.io.yaml', 'crds/llmbudgets.llmproxy.io.yaml'];

let cp: ControlPlane;
let client: KubeClient;
let settings: OperatorSettings;
let server: WebhookServer;
let namespaces: Informer<KubeObject>;
let budgets: Informer<KubeObject>;
let caPem: string;
let annotatedNs: string;
let labelledNs: string;

interface StoredPod {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: {
    initContainers?: { name: string; restartPolicy?: string; args?: string[] }[];
    containers: { name: string; env?: { name: string; value?: string }[] }[];
    volumes?: { name: string }[];
  };
}

async function kubectl(args: string[], input?: string) {
  return cp.kubectl(args, input === undefined ? {} : { input });
}

async function ok(args: string[], input?: string): Promise<string> {
  const res = await kubectl(args, input);
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout;
}

async function confinedNamespace(prefix: string, labels: Record<string, string> = {}) {
  const ns = await freshNamespace(prefix);
  const pairs = Object.entries({ ...labels, [RUN_LABEL]: run }).map(([k, v]) => `${k}=${v}`);
  await ok(['label', 'namespace', ns, ...pairs]);
  return ns;
}

const pod = (annotations: Record<string, string>, generateName = 'web-') => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { generateName, annotations },
  spec: {
    containers: [
      {
        name: 'app',
        image: 'registry.example/app:1',
        env: [{ name: 'OPENAI_BASE_URL', value: 'http://keep-mine' }],
      },
    ],
  },
});

async function createPod(ns: string, object: unknown): Promise<StoredPod> {
  const created = JSON.parse(
    await ok(['create', '-n', ns, '-o', 'json', '-f', '-'], JSON.stringify(object)),
  ) as StoredPod;
  return JSON.parse(await ok(['get', 'pod', '-n', ns, created.metadata.name, '-o', 'json']));
}

const sidecarOf = (p: StoredPod) =>
  [...(p.spec.initContainers ?? []), ...p.spec.containers].find(
    (c) => c.name === 'llmproxy-sidecar',
  );

/** The API server's webhook informer picks a new configuration up after a moment. */
async function waitForInjection(ns: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last = '';
  while (Date.now() < deadline) {
    const res = await kubectl(
      ['create', '--dry-run=server', '-n', ns, '-o', 'json', '-f', '-'],
      JSON.stringify(pod({ 'llmproxy.io/inject': 'true' })),
    );
    if (res.code === 0 && res.stdout.includes('llmproxy-sidecar')) return;
    last = `${res.code}: ${res.stderr.slice(0, 500)} ${res.stdout.slice(0, 300)}`;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the mutating webhook never became active; last: ${last}`);
}

beforeAll(async () => {
  cp = await sharedControlPlane();
  client = new KubeClient(await cp.kubeConfig());
  for (const file of CRD_FILES) {
    await ok(['apply', '--server-side', '--force-conflicts', '-f', file]);
    await ok(['wait', '--for=condition=Established', '-f', file]);
  }
  settings = parseOperatorSettings({
    operator: { webhookConfigurationName: `llmproxy-e2e-${run}` },
    aws: { region: 'us-east-1', allowedRegions: ['us-east-1', 'eu-west-1'] },
  });
  const now = Date.now();
  const ca = await createCa('llmproxy e2e webhook CA', now, 24 * 3600 * 1000);
  const leaf = await createServingCert(ca, ['localhost'], now, 24 * 3600 * 1000, ['127.0.0.1']);
  caPem = ca.certPem;

  namespaces = new Informer(client, Namespaces, { labelSelector: `${RUN_LABEL}=${run}` });
  budgets = new Informer(client, LlmBudgets, {});
  await Promise.all([namespaces.start(), budgets.start()]);
  const nativeSidecars = await detectNativeSidecars(client, 'auto');

  server = await startWebhookServer({
    host: '127.0.0.1',
    port: 0,
    tls: { cert: leaf.certPem, key: leaf.keyPem },
    log: silent,
    mutatePod: (request) =>
      admitPod(request, {
        config: settings,
        namespaceLabels: (ns) => namespaces.get(ns)?.metadata?.labels,
        caBundle: () => caPem,
        nativeSidecars,
        version: '0.1.0-e2e',
      }),
    validateLlmObject: (request) =>
      admitLlmObject(request, {
        config: settings,
        budgetsInNamespace: (ns) => budgets.list(ns),
      }),
  });
  const options = {
    config: settings,
    caBundle: caPem,
    url: server.url,
    // Only this file's namespaces: other e2e files share the API server.
    extraNamespaceExpressions: [{ key: RUN_LABEL, operator: 'In' as const, values: [run] }],
  };
  await ok(['apply', '-f', '-'], JSON.stringify(mutatingWebhookConfiguration(options)));
  await ok(['apply', '-f', '-'], JSON.stringify(validatingWebhookConfiguration(options)));

  annotatedNs = await confinedNamespace('webhook-annotated');
  labelledNs = await confinedNamespace('webhook-labelled', { 'llmproxy.io/injection': 'enabled' });
  await waitForInjection(annotatedNs);
});

afterAll(async () => {
  const name = settings?.operator.webhookConfigurationName;
  if (name) {
    await kubectl(['delete', 'mutatingwebhookconfiguration', name, '--ignore-not-found']);
    await kubectl(['delete', 'validatingwebhookconfiguration', name, '--ignore-not-found']);
  }
  await server?.close();
  await Promise.all([namespaces?.stop(), budgets?.stop()]);
});

describe('sidecar injection through the API server', () => {
  it("injects into a pod made from an annotated Deployment's template, stored as injected", async () => {
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'chat' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'chat' } },
        template: {
          metadata: { labels: { app: 'chat' }, annotations: { 'llmproxy.io/inject': 'true' } },
          spec: pod({}).spec,
        },
      },
    };
    await ok(['apply', '-n', annotatedNs, '-f', '-'], JSON.stringify(deployment));
    const stored = JSON.parse(
      await ok(['get', 'deployment', 'chat', '-n', annotatedNs, '-o', 'json']),
    ) as { spec: { template: { metadata: unknown; spec: unknown } } };
    // There is no controller-manager: create the Pod the ReplicaSet would, generateName only.
    const fromTemplate = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { ...(stored.spec.template.metadata as object), generateName: 'chat-' },
      spec: stored.spec.template.spec,
    };
    const before = server.stats().patched;
    const p = await createPod(annotatedNs, fromTemplate);
    expect(server.stats().patched).toBe(before + 1);
    expect(p.metadata.name).toMatch(/^chat-/);
    const sidecar = p.spec.initContainers?.[0];
    expect(sidecar?.name).toBe('llmproxy-sidecar');
    expect(sidecar?.restartPolicy).toBe('Always');
    expect(sidecar?.args).toContain('https://llmproxy-operator.llmproxy-system.svc:8443');
    const env = Object.fromEntries((p.spec.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({
      OPENAI_BASE_URL: 'http://keep-mine',
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:8787/anthropic',
      OPENAI_API_KEY: 'llmproxy-placeholder',
    });
    expect(p.spec.volumes?.map((v) => v.name)).toEqual(['llmproxy-token', 'llmproxy-ca']);
    expect(p.metadata.annotations?.['llmproxy.io/ca-bundle']).toBe(caPem);
    expect(JSON.parse(p.metadata.annotations?.['llmproxy.io/status'] ?? '{}')).toMatchObject({
      version: '0.1.0-e2e',
      mode: 'native-sidecar',
    });
  });

  it('leaves a pod without the annotation untouched, and it never reaches the webhook', async () => {
    const before = server.stats().reviews.mutate;
    const p = await createPod(annotatedNs, pod({}));
    expect(sidecarOf(p)).toBeUndefined();
    expect(p.metadata.annotations?.['llmproxy.io/status']).toBeUndefined();
    expect(server.stats().reviews.mutate).toBe(before);
  });

  it('a second pass over a stored, injected pod changes nothing', async () => {
    const first = await createPod(annotatedNs, pod({ 'llmproxy.io/inject': 'true' }));
    const again = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { generateName: 'again-', annotations: first.metadata.annotations },
      spec: first.spec,
    };
    const before = server.stats();
    const second = await createPod(annotatedNs, again);
    const after = server.stats();
    expect(after.reviews.mutate).toBe(before.reviews.mutate + 1);
    expect(after.patched).toBe(before.patched);
    expect(second.spec).toEqual(first.spec);
  });

  it('injects every pod of a labelled namespace except one that opts out', async () => {
    const before = server.stats().reviews.mutate;
    const injected = await createPod(labelledNs, pod({}, 'ns-wide-'));
    expect(sidecarOf(injected)).toBeDefined();
    const optedOut = await createPod(labelledNs, pod({ 'llmproxy.io/inject': 'false' }, 'out-'));
    expect(sidecarOf(optedOut)).toBeUndefined();
    // The opt-out was filtered by the API server's matchConditions: one review, not two.
    expect(server.stats().reviews.mutate).toBe(before + 1);
  });

  it('refuses an opted-in pod with a bad override annotation, with the reason', async () => {
    const res = await kubectl(
      ['create', '-n', annotatedNs, '-f', '-'],
      JSON.stringify(pod({ 'llmproxy.io/inject': 'true', 'llmproxy.io/sidecar-cpu': 'lots' })),
    );
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/llmproxy.io\/sidecar-cpu: "lots" is not a quantity/);
  });
});

describe('validation through the API server', () => {
  let ns: string;
  const policy = (name: string, spec: Record<string, unknown>) =>
    JSON.stringify({
      apiVersion: 'llmproxy.io/v1alpha1',
      kind: 'LlmPolicy',
      metadata: { name },
      spec: { podSelector: { matchLabels: { app: 'chat' } }, ...spec },
    });
  const openai = (credentials: Record<string, unknown>) => ({
    name: 'openai',
    type: 'openai',
    baseURL: 'https://api.openai.com',
    credentials,
  });

  beforeAll(async () => {
    ns = await confinedNamespace('webhook-validate');
  });

  it('refuses an LlmPolicy whose secret lives in a region the operator does not serve', async () => {
    const res = await kubectl(
      ['apply', '-n', ns, '-f', '-'],
      policy('far-away', {
        providers: [
          openai({
            awsSecretsManager: {
              secretId: 'arn:aws:secretsmanager:ap-south-1:123456789012:secret:openai-key',
            },
          }),
        ],
      }),
    );
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(
      /denied the request: .*region ap-south-1, which this operator is not configured for/,
    );
  });

  it('accepts risky settings with warnings that kubectl prints', async () => {
    const res = await kubectl(
      ['apply', '-n', ns, '-f', '-'],
      policy('wide-open', {
        providers: [openai({ none: {} })],
        models: [{ provider: 'openai', allow: ['*'] }],
        telemetry: { captureContent: true },
      }),
    );
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/Warning: models: allow "\*" grants every model of provider openai/);
    expect(res.stderr).toMatch(/Warning: telemetry.captureContent: true/);
    expect(res.stderr).toMatch(/Warning: rateLimits: provider openai allows expensive models/);
  });

  it('refuses a second budget over the same pods and period, naming the first', async () => {
    const budget = (name: string) =>
      JSON.stringify({
        apiVersion: 'llmproxy.io/v1alpha1',
        kind: 'LlmBudget',
        metadata: { name },
        spec: { podSelector: { matchLabels: { app: 'chat' } }, limit: '50', period: 'daily' },
      });
    await ok(['apply', '-n', ns, '-f', '-'], budget('chat-daily'));
    // The validator reads budgets from its informer cache, never from the API in the request.
    const deadline = Date.now() + 10_000;
    while (!budgets.get('chat-daily', ns) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const res = await kubectl(['apply', '-n', ns, '-f', '-'], budget('chat-daily-2'));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/LlmBudget chat-daily in this namespace already caps the same pods/);
    // Updating the first one is fine.
    await ok(['apply', '-n', ns, '-f', '-'], budget('chat-daily'));
  });

  it('refuses a budget whose time zone is a typo, naming the fix', async () => {
    const res = await kubectl(
      ['apply', '-n', ns, '-f', '-'],
      JSON.stringify({
        apiVersion: 'llmproxy.io/v1alpha1',
        kind: 'LlmBudget',
        metadata: { name: 'paris-weekly' },
        spec: {
          podSelector: { matchLabels: { app: 'paris' } },
          limit: '50',
          period: 'weekly',
          timeZone: 'Europe/Pariss',
        },
      }),
    );
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/"Europe\/Pariss" is not an IANA time zone .* Europe\/Paris/);
  });
});

describe('with the webhook server down', () => {
  beforeAll(async () => {
    await server.close();
  });

  it('refuses opted-in pods (failurePolicy Fail) and admits every other pod', async () => {
    const refused = await kubectl(
      ['create', '-n', annotatedNs, '-f', '-'],
      JSON.stringify(pod({ 'llmproxy.io/inject': 'true' })),
    );
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/failed calling webhook "inject.pods.llmproxy.io"/);
    const nsWide = await kubectl(
      ['create', '-n', labelledNs, '-f', '-'],
      JSON.stringify(pod({}, 'ns-wide-')),
    );
    expect(nsWide.code).not.toBe(0);
    const plain = await createPod(annotatedNs, pod({}));
    expect(sidecarOf(plain)).toBeUndefined();
    const optedOut = await createPod(labelledNs, pod({ 'llmproxy.io/inject': 'false' }, 'out-'));
    expect(sidecarOf(optedOut)).toBeUndefined();
  });

  it('still accepts LlmPolicies: validation adds to the schema, it does not gate it', async () => {
    const ns = await confinedNamespace('webhook-down');
    const res = await kubectl(
      ['apply', '-n', ns, '-f', '-'],
      JSON.stringify({
        apiVersion: 'llmproxy.io/v1alpha1',
        kind: 'LlmPolicy',
        metadata: { name: 'p' },
        spec: { podSelector: {} },
      }),
    );
    expect(res.code).toBe(0);
  });
});
