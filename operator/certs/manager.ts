// The thin shell around plan.ts: every replica reads the certificate Secret and serves what it
// holds; the leader alone writes it (create, rotate), patches the caBundle of both webhook
// configurations, and refreshes the CA annotation of injected pods during a rotation.
// With cert-manager, nobody here writes: its Certificate fills the Secret and its cainjector
// the caBundle, and the operator only serves and publishes what it finds.
import type { Logger } from '../../sidecar/telemetry/log.js';
import type { OperatorSettings } from '../config-file.js';
import {
  isConflict,
  Pods,
  resourceKind,
  type KubeClient,
  type KubeObject,
  type Pod,
} from '../kube/index.js';
import { ANNOTATION_CA_BUNDLE } from '../webhooks/inject.js';
import {
  executeSteps,
  secretFromState,
  servingMaterial,
  stateFromSecret,
  type SecretShape,
} from './execute.js';
import { DEFAULT_CERT_POLICY, planCertificates, serviceDnsNames, type CertPolicy } from './plan.js';

export const Secrets = resourceKind<KubeObject & SecretShape>({
  group: '',
  version: 'v1',
  plural: 'secrets',
  kind: 'Secret',
  namespaced: true,
});

interface WebhookConfigurationObject extends KubeObject {
  webhooks?: { name: string; clientConfig?: { caBundle?: string } }[];
}

export const MutatingWebhookConfigurations = resourceKind<WebhookConfigurationObject>({
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  plural: 'mutatingwebhookconfigurations',
  kind: 'MutatingWebhookConfiguration',
  namespaced: false,
});

export const ValidatingWebhookConfigurations = resourceKind<WebhookConfigurationObject>({
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  plural: 'validatingwebhookconfigurations',
  kind: 'ValidatingWebhookConfiguration',
  namespaced: false,
});

export interface ServingMaterial {
  cert: string;
  key: string;
  caBundle: string;
}

export interface CertManagerOptions {
  client: KubeClient;
  settings: OperatorSettings;
  isLeader(): boolean;
  log: Logger;
  /** Called on every replica when the serving certificate or the CA bundle changes. */
  onMaterial(material: ServingMaterial): void;
  /** Injected pods (from the controllers' Pod informer) whose CA annotation the leader refreshes. */
  injectedPods?(): Pod[];
  policy?: Partial<CertPolicy>;
  intervalMs?: number;
  now?: () => number;
}

export interface CertManager {
  /** The material in force, once the Secret has been read. */
  material(): ServingMaterial | undefined;
  /** Resolves once material is available (the leader may have to create it first). */
  ready(): Promise<ServingMaterial>;
  /** One pass now: read, (leader) plan + write + patch, publish. */
  reconcile(): Promise<void>;
  stop(): void;
}

export function startCertManager(options: CertManagerOptions): CertManager {
  const { client, settings, log } = options;
  const { namespace, certSecretName, serviceName, webhookConfigurationName } = settings.operator;
  const policy: CertPolicy = {
    ...DEFAULT_CERT_POLICY,
    dnsNames: serviceDnsNames(serviceName, namespace),
    ...options.policy,
  };
  const now = options.now ?? Date.now;
  let current: ServingMaterial | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const waiters: ((m: ServingMaterial) => void)[] = [];

  const publish = (material: ServingMaterial | undefined): void => {
    if (!material) return;
    const changed =
      !current ||
      current.cert !== material.cert ||
      current.key !== material.key ||
      current.caBundle !== material.caBundle;
    if (!changed) return;
    current = material;
    options.onMaterial(material);
    for (const resolve of waiters.splice(0)) resolve(material);
  };

  const writeSecret = async (secret: SecretShape | undefined): Promise<SecretShape | undefined> => {
    const state = stateFromSecret(secret);
    const steps = planCertificates(state, policy, now());
    if (steps.length === 0) return secret;
    const next = await executeSteps(state, steps, policy, now());
    const { annotations, data } = secretFromState(next);
    log.info('certificates updated', {
      reason: steps.map((s) => s.kind).join(','),
      count: steps.length,
    });
    const metadata = {
      name: certSecretName,
      namespace,
      labels: { 'app.kubernetes.io/managed-by': 'llmproxy-operator' },
      annotations,
      ...(secret?.metadata?.resourceVersion
        ? { resourceVersion: secret.metadata.resourceVersion }
        : {}),
    };
    const object = { metadata, type: 'kubernetes.io/tls', data } as KubeObject & SecretShape;
    try {
      return secret
        ? await client.replace(Secrets, object)
        : await client.create(Secrets, object, namespace);
    } catch (err) {
      // Another writer got there first (a previous leader): read its result next pass.
      if (isConflict(err) || (err as { status?: number }).status === 409) return undefined;
      throw err;
    }
  };

  const patchCaBundles = async (bundle: string): Promise<void> => {
    const encoded = Buffer.from(bundle).toString('base64');
    for (const kind of [MutatingWebhookConfigurations, ValidatingWebhookConfigurations]) {
      const config = await client.get(kind, webhookConfigurationName);
      if (!config) continue; // the chart has not installed it (yet)
      const ops = (config.webhooks ?? []).flatMap((webhook, i) =>
        webhook.clientConfig?.caBundle === encoded
          ? []
          : [
              { op: 'test', path: `/webhooks/${i}/name`, value: webhook.name },
              { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: encoded },
            ],
      );
      if (ops.length === 0) continue;
      await client.patch(kind, webhookConfigurationName, undefined, ops, { type: 'json' });
      log.info('webhook caBundle updated', { reason: kind.kind });
    }
  };

  const refreshPodBundles = async (bundle: string): Promise<void> => {
    for (const pod of options.injectedPods?.() ?? []) {
      const annotations = pod.metadata?.annotations ?? {};
      if (!(ANNOTATION_CA_BUNDLE in annotations) || annotations[ANNOTATION_CA_BUNDLE] === bundle) {
        continue;
      }
      const name = pod.metadata?.name;
      if (!name) continue;
      try {
        await client.patch(Pods, name, pod.metadata?.namespace, {
          metadata: { annotations: { [ANNOTATION_CA_BUNDLE]: bundle } },
        });
      } catch (err) {
        log.warn('could not refresh the CA bundle of a pod', {
          code: (err as { code?: string }).code ?? 'error',
        });
      }
    }
  };

  const pass = async (): Promise<void> => {
    let secret = await client.get(Secrets, certSecretName, namespace);
    const leader = options.isLeader() && !settings.operator.certManager;
    if (leader) secret = (await writeSecret(secret)) ?? secret;
    const material = servingMaterial(secret);
    publish(material);
    if (leader && material) {
      await patchCaBundles(material.caBundle);
      await refreshPodBundles(material.caBundle);
    }
  };

  const reconcile = (): Promise<void> => {
    running ??= pass().finally(() => (running = undefined));
    return running;
  };

  const loop = (): void => {
    if (stopped) return;
    reconcile()
      .catch((err: unknown) =>
        log.warn('certificate pass failed', { code: (err as { code?: string }).code ?? 'error' }),
      )
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, options.intervalMs ?? 30_000);
      });
  };
  loop();

  return {
    material: () => current,
    ready: () =>
      current ? Promise.resolve(current) : new Promise((resolve) => waiters.push(resolve)),
    reconcile,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
