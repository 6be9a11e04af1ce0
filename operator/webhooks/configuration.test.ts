import { describe, expect, it } from '@jest/globals';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration } from './configuration.js';
import { testSettings } from './testdata.js';

type Webhook = Record<string, unknown> & {
  name: string;
  clientConfig: Record<string, unknown>;
  namespaceSelector: { matchLabels?: Record<string, string>; matchExpressions: unknown[] };
};
const webhooks = (o: Record<string, unknown>) => o.webhooks as Webhook[];

describe('webhook configurations', () => {
  const config = testSettings();

  it('send pods to the Service, only on CREATE, failing closed, reinvoked, within 5 s', () => {
    const mutating = mutatingWebhookConfiguration({ config, caBundle: 'PEM' });
    expect(webhooks(mutating).map((w) => w.name)).toEqual([
      'inject.pods.llmproxy.io',
      'namespace-inject.pods.llmproxy.io',
    ]);
    for (const w of webhooks(mutating)) {
      expect(w).toMatchObject({
        failurePolicy: 'Fail',
        reinvocationPolicy: 'IfNeeded',
        sideEffects: 'None',
        timeoutSeconds: 5,
        admissionReviewVersions: ['v1'],
        rules: [{ operations: ['CREATE'], resources: ['pods'] }],
        clientConfig: {
          service: {
            namespace: 'llmproxy-system',
            name: 'llmproxy-operator',
            port: 9443,
            path: '/mutate-pods',
          },
          caBundle: Buffer.from('PEM').toString('base64'),
        },
      });
      expect(w.namespaceSelector.matchExpressions).toContainEqual({
        key: 'kubernetes.io/metadata.name',
        operator: 'NotIn',
        values: ['kube-system', 'kube-public', 'kube-node-lease', 'llmproxy-system'],
      });
    }
    expect(webhooks(mutating)[1]?.namespaceSelector.matchLabels).toEqual({
      'llmproxy.io/injection': 'enabled',
    });
  });

  it('validate LlmPolicy and LlmBudget writes, failing open since the schema still holds', () => {
    const [w] = webhooks(validatingWebhookConfiguration({ config }));
    expect(w).toMatchObject({
      name: 'validate.llmproxy.io',
      failurePolicy: 'Ignore',
      rules: [{ operations: ['CREATE', 'UPDATE'], resources: ['llmpolicies', 'llmbudgets'] }],
    });
    expect(w?.clientConfig.caBundle).toBeUndefined();
  });

  it('call a URL in tests, and leave the caBundle to cert-manager when it is in charge', () => {
    const url = mutatingWebhookConfiguration({ config, url: 'https://127.0.0.1:1234' });
    expect(webhooks(url)[0]?.clientConfig).toEqual({ url: 'https://127.0.0.1:1234/mutate-pods' });
    const cm = validatingWebhookConfiguration({
      config: testSettings({ operator: { certManager: true } }),
    });
    expect(cm.metadata).toEqual({
      name: 'llmproxy',
      annotations: { 'cert-manager.io/inject-ca-from': 'llmproxy-system/llmproxy-operator-tls' },
    });
  });
});
