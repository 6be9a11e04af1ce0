// Pod objects shaped like the ones the mutating webhook stores, for tests that create pods
// directly (there is no kubelet): the status annotation, and a sidecar that alone mounts the
// projected llmproxy.io token. The operator serves only pods whose spec confines that token,
// which createInjectedPodWithToken mints as the kubelet would.
// And an app's own opted-in Pod, for tests that let the webhook inject it.
import { writeFileSync } from 'node:fs';
import { Pods, type KubeClient } from '../../operator/kube/index.js';
import type { ControlPlane } from './controlplane.js';
import type { PodManifest } from './local-operator.js';

export interface PodFixture {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  serviceAccount?: string;
  annotations?: Record<string, string>;
  /** E.g. one that keeps a deleted pod terminating instead of gone. */
  finalizers?: string[];
}

export function injectedPod(fixture: PodFixture) {
  return {
    metadata: {
      name: fixture.name,
      namespace: fixture.namespace,
      labels: fixture.labels ?? {},
      annotations: { 'llmproxy.io/status': '{"version":"e2e"}', ...fixture.annotations },
      ...(fixture.finalizers ? { finalizers: fixture.finalizers } : {}),
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

/**
 * Creates the injectedPod and writes to `tokenFile` what its sidecar would find in the projected
 * volume: an llmproxy.io token bound to that Pod. Returns the token.
 */
export async function createInjectedPodWithToken(
  cp: ControlPlane,
  client: KubeClient,
  fixture: PodFixture,
  tokenFile: string,
): Promise<string> {
  const manifest = injectedPod(fixture);
  const pod = await client.create(Pods, manifest);
  const token = await cp.tokenFor(fixture.namespace, manifest.spec.serviceAccountName, {
    audiences: ['llmproxy.io'],
    boundPod: { name: fixture.name, uid: pod.metadata?.uid ?? '' },
  });
  writeFileSync(tokenFile, token);
  return token;
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
