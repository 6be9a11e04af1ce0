// One call for the operator's main: the certificate manager, the caches the admission handlers
// read, and the webhook server, wired together.
import type { Logger } from '../../sidecar/telemetry/log.js';
import {
  startCertManager,
  type CertManager,
  type CertPolicy,
  type ServingMaterial,
} from '../certs/index.js';
import type { OperatorSettings } from '../config-file.js';
import {
  Informer,
  LlmBudgets,
  Namespaces,
  type KubeClient,
  type KubeObject,
  type Pod,
} from '../kube/index.js';
import { admitLlmObject, admitPod } from './admission.js';
import { detectNativeSidecars } from './discovery.js';
import { startWebhookServer, type WebhookServer } from './server.js';

export interface AdmissionOptions {
  client: KubeClient;
  settings: OperatorSettings;
  log: Logger;
  /** From leader election: only the leader writes certificates and patches caBundles. */
  isLeader(): boolean;
  /** The operator's version, recorded on every injected pod. */
  version: string;
  /** Budgets of a namespace from a cache the caller already has; else an own informer. */
  budgetsInNamespace?(namespace: string): readonly unknown[];
  /** Injected pods (a cache) whose CA annotation the leader refreshes during a CA rotation. */
  injectedPods?(): Pod[];
  /** Also called with every new serving certificate: the distribution server's setCertificate. */
  onMaterial?(material: ServingMaterial): void;
  /** Listen address; the port is settings.operator.webhookPort. */
  host?: string;
  certIntervalMs?: number;
  /** Certificate lifetimes, extra IP SANs (tests reach the webhook at 127.0.0.1). */
  certPolicy?: Partial<CertPolicy>;
}

export interface Admission {
  server: WebhookServer;
  certs: CertManager;
  /** The CA bundle sidecars and webhook clients must trust now. */
  caBundle(): string;
  stop(): Promise<void>;
}

export async function startAdmission(options: AdmissionOptions): Promise<Admission> {
  const { client, settings, log } = options;
  const nativeSidecars = await detectNativeSidecars(client, settings.sidecar.nativeSidecars);
  log.info('sidecar injection mode', { mode: nativeSidecars ? 'native-sidecar' : 'container' });
  const namespaces = new Informer<KubeObject>(client, Namespaces, { log });
  const budgets = options.budgetsInNamespace
    ? undefined
    : new Informer<KubeObject>(client, LlmBudgets, { log });
  await Promise.all([namespaces.start(), budgets?.start()]);
  const budgetsInNamespace =
    options.budgetsInNamespace ?? ((ns: string) => budgets?.list(ns) ?? []);

  // The certificate manager may deliver a new certificate before the server exists.
  const live: { server?: WebhookServer } = {};
  const certs = startCertManager({
    client,
    settings,
    log,
    isLeader: options.isLeader,
    injectedPods: options.injectedPods,
    intervalMs: options.certIntervalMs,
    policy: options.certPolicy,
    onMaterial: (material) => {
      live.server?.setCertificate(material);
      options.onMaterial?.(material);
    },
  });
  // Followers wait here until the leader has written the Secret (or cert-manager has).
  const material = await certs.ready();
  const caBundle = () => certs.material()?.caBundle ?? material.caBundle;
  const server = await startWebhookServer({
    host: options.host ?? '0.0.0.0',
    port: settings.operator.webhookPort,
    tls: material,
    log,
    mutatePod: (request) =>
      admitPod(request, {
        config: settings,
        namespaceLabels: (ns) => namespaces.get(ns)?.metadata?.labels,
        caBundle,
        nativeSidecars,
        version: options.version,
      }),
    validateLlmObject: (request) =>
      admitLlmObject(request, { config: settings, budgetsInNamespace }),
  });
  live.server = server;
  return {
    server,
    certs,
    caBundle,
    async stop() {
      certs.stop();
      await server.close();
      await Promise.all([namespaces.stop(), budgets?.stop()]);
    },
  };
}
