// Which Secrets Manager secrets LlmPolicies reference, provider by provider, in the compiled
// form the sidecar and the operator's caches both use (defaults filled in).
import type { LlmPolicySpec } from '../../crds/v1alpha1/index.js';
import { compileCredentials } from '../../sidecar/policy/compiler/index.js';
import type { AwsSecretsManagerCredentials } from '../../sidecar/secrets/index.js';

export interface PolicySecretRef {
  provider: string;
  ref: AwsSecretsManagerCredentials;
}

/**
 * The Secrets Manager references of one LlmPolicy (as the API server stored it, so validated
 * against the CRD schema), sorted by provider name (pure).
 */
export function secretRefsOf(policy: object): PolicySecretRef[] {
  const refs: PolicySecretRef[] = [];
  const spec = (policy as { spec?: Partial<LlmPolicySpec> }).spec;
  for (const provider of spec?.providers ?? []) {
    if (!provider.credentials?.awsSecretsManager) continue;
    const compiled = compileCredentials(provider.credentials);
    if ('awsSecretsManager' in compiled) {
      refs.push({ provider: provider.name, ref: compiled.awsSecretsManager });
    }
  }
  return refs.sort((a, b) => (a.provider < b.provider ? -1 : a.provider > b.provider ? 1 : 0));
}
