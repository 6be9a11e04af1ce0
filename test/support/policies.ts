// LlmPolicy objects for e2e tests: one openai provider granting gpt-4o-mini (or the models
// given), the pods selected by their app label. Most tests need nothing more; the few that do
// build their own.
import type { ProviderCredentials } from '../../crds/v1alpha1/index.js';
import type { KubeObject } from '../../operator/kube/index.js';

export interface PolicyFixture {
  name: string;
  namespace: string;
  /** The `app` label of the pods it selects. */
  app: string;
  baseURL: string;
  /** The provider's name, the route segment (default openai). */
  provider?: string;
  /** Default `{ none: {} }`. */
  credentials?: ProviderCredentials;
  /** The models it allows (default gpt-4o-mini). */
  models?: string[];
}

export function llmPolicy(fixture: PolicyFixture): KubeObject {
  const provider = fixture.provider ?? 'openai';
  return {
    apiVersion: 'llmproxy.io/v1alpha1',
    kind: 'LlmPolicy',
    metadata: { name: fixture.name, namespace: fixture.namespace },
    spec: {
      podSelector: { matchLabels: { app: fixture.app } },
      providers: [
        {
          name: provider,
          type: 'openai',
          baseURL: fixture.baseURL,
          credentials: fixture.credentials ?? { none: {} },
        },
      ],
      models: [{ provider, allow: fixture.models ?? ['gpt-4o-mini'] }],
    },
  } as KubeObject;
}
