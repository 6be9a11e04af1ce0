// Pod objects shaped like the ones the mutating webhook stores, for tests that create pods
// directly (there is no kubelet): the status annotation, and a sidecar that alone mounts the
// projected llmproxy.io token. The operator serves only pods whose spec confines that token.
// And an app's own opted-in Pod, for tests that let the webhook inject it.
import type { PodManifest } from './local-operator.js';

export interface PodFixture {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  serviceAccount?: string;
  annotations?: Record<string, string>;
}

export function injectedPod(fixture: PodFixture) {
  return {
    metadata: {
      name: fixture.name,
      namespace: fixture.namespace,
      labels: fixture.labels ?? {},
      annotations: { 'llmproxy.io/status': '{"version":"e2e"}', ...fixture.annotations },
    },
    spec: {
      serviceAccountName: fixture.serviceAccount ?? 'app',
      initContainers: [
        {
          name: 'llmproxy-sidecar',
          image: 'ghcr.io/llmproxy/llmproxy:e2e',
          restartPolicy: 'Always',
          volumeMounts: [
            {
              name: 'llmproxy-token',
              mountPath: '/var/run/secrets/llmproxy.io/token',
              readOnly: true,
            },
          ],
        },
      ],
      containers: [{ name: 'app', image: 'busybox' }],
      volumes: [
        {
          name: 'llmproxy-token',
          projected: {
            sources: [
              {
                serviceAccountToken: {
                  audience: 'llmproxy.io',
                  expirationSeconds: 3600,
                  path: 'token',
                },
              },
            ],
          },
        },
      ],
    },
  };
}

/** A Pod that opts in to injection, as an app's manifest has it (for createPodThroughWebhook). */
export function optedInPod(labels: Record<string, string>): PodManifest {
  return {
    metadata: {
      generateName: `${labels.app ?? 'app'}-`,
      labels,
      annotations: { 'llmproxy.io/inject': 'true' },
    },
    spec: {
      serviceAccountName: 'app',
      containers: [{ name: 'app', image: 'registry.example/chat:1' }],
    },
  };
}
