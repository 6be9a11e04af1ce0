// Standalone mode: compile a YAML stream of LlmPolicy/LlmBudget manifests (the files a team
// applies to its cluster) for one pod, with the checks the API server would have made.
import { parseAllDocuments } from 'yaml';
import { API_VERSION, type LlmBudget, type LlmPolicy } from '../../../crds/v1alpha1/index.js';
import { validateObject } from '../../../crds/validate.js';
import type { CompiledPolicy } from '../compiled.js';
import { compile } from './compile-pod.js';

/** The pod as `--pod-labels` (and optionally namespace and service account) describe it. */
export interface StandalonePod {
  namespace?: string;
  labels: Record<string, string>;
  serviceAccount?: string;
}

export class ManifestError extends Error {
  readonly code = 'invalid_manifest';
  constructor(readonly problems: string[]) {
    super(`invalid policy manifests:\n  ${problems.join('\n  ')}`);
  }
}

export const DEFAULT_NAMESPACE = 'default';

/**
 * Parses, validates and compiles manifests for one pod. Manifests without a namespace take the
 * pod's; those of another namespace select nothing. When the pod's namespace is not given, it
 * is the one the manifests name (so the cluster's own files work as they are), else `default`.
 * Secrets Manager credentials are read by the sidecar itself (fetchFrom: sidecar), since
 * there is no operator to read them for it.
 */
export function compileManifestStream(yamlText: string, pod: StandalonePod): CompiledPolicy {
  const namespace = pod.namespace ?? impliedNamespace(yamlText);
  const { policies, budgets } = parseManifests(yamlText, namespace);
  return compile({
    pod: { namespace, labels: pod.labels, serviceAccount: pod.serviceAccount ?? 'default' },
    policies: policies.map(sidecarFetches),
    budgets,
  });
}

export function parseManifests(
  yamlText: string,
  namespace: string,
): { policies: LlmPolicy[]; budgets: LlmBudget[] } {
  const problems: string[] = [];
  const policies: LlmPolicy[] = [];
  const budgets: LlmBudget[] = [];
  const seen = new Set<string>();
  parseAllDocuments(yamlText).forEach((document, i) => {
    const where = `document ${i + 1}`;
    if (document.errors.length > 0) {
      problems.push(...document.errors.map((e) => `${where}: YAML: ${e.message.split('\n')[0]}`));
      return;
    }
    const value: unknown = document.toJS();
    if (value === null || value === undefined) return; // an empty document between separators
    const refusal = refuseKind(value);
    if (refusal) {
      problems.push(`${where}: ${refusal}`);
      return;
    }
    const withNamespace = defaultNamespace(value as Manifest, namespace);
    const label = `${where} (${withNamespace.kind} ${withNamespace.metadata?.name ?? '?'})`;
    const result = validateObject(withNamespace);
    if (!result.ok) {
      problems.push(...result.problems.map((p) => `${label}: ${p}`));
      return;
    }
    const object = result.value;
    const id = `${object.kind} ${object.metadata.namespace}/${object.metadata.name}`;
    if (seen.has(id)) {
      problems.push(`${label}: duplicate ${id}`);
      return;
    }
    seen.add(id);
    if (object.kind === 'LlmPolicy') policies.push(object);
    else budgets.push(object);
  });
  if (problems.length > 0) throw new ManifestError(problems);
  return { policies, budgets };
}

/** The one namespace the manifests state, or `default`; several are ambiguous without the pod's. */
function impliedNamespace(yamlText: string): string {
  const stated = new Set<string>();
  for (const document of parseAllDocuments(yamlText)) {
    const value = document.errors.length === 0 ? (document.toJS() as unknown) : undefined;
    const namespace = (value as Manifest | null | undefined)?.metadata?.namespace;
    if (typeof namespace === 'string') stated.add(namespace);
  }
  if (stated.size > 1) {
    throw new ManifestError([
      `the manifests name several namespaces (${[...stated].sort().join(', ')}): give the pod's namespace too`,
    ]);
  }
  return [...stated][0] ?? DEFAULT_NAMESPACE;
}

interface Manifest {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: { name?: string; namespace?: string };
}

function refuseKind(value: unknown): string | undefined {
  if (typeof value !== 'object' || Array.isArray(value)) {
    return 'expected a Kubernetes object (a mapping with apiVersion and kind)';
  }
  const { apiVersion, kind } = value as Manifest;
  if (apiVersion === API_VERSION && (kind === 'LlmPolicy' || kind === 'LlmBudget'))
    return undefined;
  return `${String(kind ?? 'an object without kind')} (${String(apiVersion ?? 'no apiVersion')}) is not accepted here: a policy file holds only ${API_VERSION} LlmPolicy and LlmBudget manifests`;
}

function defaultNamespace(value: Manifest, namespace: string): Manifest {
  if (typeof value.metadata !== 'object' || value.metadata === null) return value;
  if (value.metadata.namespace !== undefined) return value;
  return { ...value, metadata: { ...value.metadata, namespace } };
}

function sidecarFetches(policy: LlmPolicy): LlmPolicy {
  const providers = policy.spec.providers?.map((p) =>
    p.credentials.awsSecretsManager
      ? {
          ...p,
          credentials: {
            awsSecretsManager: {
              ...p.credentials.awsSecretsManager,
              fetchFrom: 'sidecar' as const,
            },
          },
        }
      : p,
  );
  return providers ? { ...policy, spec: { ...policy.spec, providers } } : policy;
}
