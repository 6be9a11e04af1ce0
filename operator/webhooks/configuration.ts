// The Mutating- and ValidatingWebhookConfiguration objects, as pure builders: the operator
// patches their caBundle, the chart's tests compare its rendering with them, and the e2e tests
// register them against the local API server with a URL instead of the Service.
//
// Filtering happens in the API server so that pods which did not opt in never reach us (and
// are never refused when the operator is down): system namespaces and the operator's own are
// excluded by namespaceSelector, and CEL matchConditions read the opt-in annotation.
import type { OperatorSettings } from '../config-file.js';
import { ANNOTATION_INJECT, LABEL_NAMESPACE_INJECTION } from './inject.js';

export const MUTATE_PODS_PATH = '/mutate-pods';
export const VALIDATE_PATH = '/validate-llmproxy';
export const SYSTEM_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'] as const;
const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export const WEBHOOK_NAMES = {
  injectAnnotated: 'inject.pods.llmproxy.io',
  injectNamespace: 'namespace-inject.pods.llmproxy.io',
  validate: 'validate.llmproxy.io',
} as const;

export interface WebhookConfigurationOptions {
  config: OperatorSettings;
  /** PEM; omitted when cert-manager injects it (config.operator.certManager). */
  caBundle?: string;
  /**
   * Call this base URL (`https://127.0.0.1:PORT`) instead of the Service: only for tests against
   * a local API server, as envtest does.
   */
  url?: string;
  /** Extra namespace requirements (tests confine the webhooks to their own namespaces). */
  extraNamespaceExpressions?: LabelSelectorRequirement[];
}

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

type Json = Record<string, unknown>;

const annotationIs = (value: string): string =>
  `has(object.metadata.annotations) && '${ANNOTATION_INJECT}' in object.metadata.annotations && object.metadata.annotations['${ANNOTATION_INJECT}'] == '${value}'`;

/** Namespaces never touched: the system ones and the operator's own. */
function excludedNamespaces(config: OperatorSettings): LabelSelectorRequirement {
  return {
    key: NAMESPACE_NAME_LABEL,
    operator: 'NotIn',
    values: [...SYSTEM_NAMESPACES, config.operator.namespace],
  };
}

function clientConfig(options: WebhookConfigurationOptions, path: string): Json {
  const { config, caBundle, url } = options;
  const bundle = caBundle ? { caBundle: Buffer.from(caBundle).toString('base64') } : {};
  if (url) return { url: `${url}${path}`, ...bundle };
  return {
    service: {
      namespace: config.operator.namespace,
      name: config.operator.serviceName,
      port: config.operator.webhookPort,
      path,
    },
    ...bundle,
  };
}

function certManagerAnnotations(config: OperatorSettings): Json {
  if (!config.operator.certManager) return {};
  return {
    annotations: {
      'cert-manager.io/inject-ca-from': `${config.operator.namespace}/${config.operator.certSecretName}`,
    },
  };
}

const COMMON = {
  sideEffects: 'None',
  timeoutSeconds: 5,
  admissionReviewVersions: ['v1'],
  matchPolicy: 'Equivalent',
} as const;

export function mutatingWebhookConfiguration(options: WebhookConfigurationOptions): Json {
  const { config } = options;
  const extra = options.extraNamespaceExpressions ?? [];
  const podRules = [
    {
      apiGroups: [''],
      apiVersions: ['v1'],
      operations: ['CREATE'],
      resources: ['pods'],
      scope: 'Namespaced',
    },
  ];
  const pods = {
    ...COMMON,
    clientConfig: clientConfig(options, MUTATE_PODS_PATH),
    rules: podRules,
    // A pod that asked for the proxy must not start without it.
    failurePolicy: 'Fail',
    // Another webhook may add containers after us: run again so they get the proxy env too.
    reinvocationPolicy: 'IfNeeded',
  };
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: config.operator.webhookConfigurationName, ...certManagerAnnotations(config) },
    webhooks: [
      {
        name: WEBHOOK_NAMES.injectAnnotated,
        ...pods,
        namespaceSelector: { matchExpressions: [excludedNamespaces(config), ...extra] },
        matchConditions: [{ name: 'annotated-inject-true', expression: annotationIs('true') }],
      },
      {
        name: WEBHOOK_NAMES.injectNamespace,
        ...pods,
        namespaceSelector: {
          matchLabels: { [LABEL_NAMESPACE_INJECTION]: 'enabled' },
          matchExpressions: [excludedNamespaces(config), ...extra],
        },
        matchConditions: [
          // `true` is the other webhook's; `false` is an opt-out.
          {
            name: 'not-annotated',
            expression: `!(${annotationIs('true')}) && !(${annotationIs('false')})`,
          },
        ],
      },
    ],
  };
}

export function validatingWebhookConfiguration(options: WebhookConfigurationOptions): Json {
  const { config } = options;
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: config.operator.webhookConfigurationName, ...certManagerAnnotations(config) },
    webhooks: [
      {
        name: WEBHOOK_NAMES.validate,
        ...COMMON,
        clientConfig: clientConfig(options, VALIDATE_PATH),
        rules: [
          {
            apiGroups: ['llmproxy.io'],
            apiVersions: ['v1alpha1'],
            operations: ['CREATE', 'UPDATE'],
            resources: ['llmpolicies', 'llmbudgets'],
            scope: 'Namespaced',
          },
        ],
        // The schema and its CEL rules still hold when the operator is down; these checks add
        // to them, so an outage must not block every policy edit.
        failurePolicy: 'Ignore',
        namespaceSelector: {
          matchExpressions: [
            { key: NAMESPACE_NAME_LABEL, operator: 'NotIn', values: [...SYSTEM_NAMESPACES] },
            ...(options.extraNamespaceExpressions ?? []),
          ],
        },
      },
    ],
  };
}
