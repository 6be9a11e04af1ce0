// Where each kind lives in the API, and the REST paths built from that (pure).
import type { KubeObject, Lease, Pod } from './types.js';

/** A resource type; `T` is the object's shape, carried only for typing. */
export interface ResourceKind<T extends KubeObject = KubeObject> {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  /** phantom field: never set, only ties T to the descriptor */
  readonly __type?: T;
}

export function resourceKind<T extends KubeObject>(
  kind: Omit<ResourceKind<T>, '__type'>,
): ResourceKind<T> {
  return kind;
}

export const Pods = resourceKind<Pod>({
  group: '',
  version: 'v1',
  plural: 'pods',
  kind: 'Pod',
  namespaced: true,
});

export const Leases = resourceKind<Lease>({
  group: 'coordination.k8s.io',
  version: 'v1',
  plural: 'leases',
  kind: 'Lease',
  namespaced: true,
});

export const Namespaces = resourceKind<KubeObject>({
  group: '',
  version: 'v1',
  plural: 'namespaces',
  kind: 'Namespace',
  namespaced: false,
});

export const ServiceAccounts = resourceKind<KubeObject>({
  group: '',
  version: 'v1',
  plural: 'serviceaccounts',
  kind: 'ServiceAccount',
  namespaced: true,
});

export const ConfigMaps = resourceKind<KubeObject & { data?: Record<string, string> }>({
  group: '',
  version: 'v1',
  plural: 'configmaps',
  kind: 'ConfigMap',
  namespaced: true,
});

export const Events = resourceKind<KubeObject>({
  group: 'events.k8s.io',
  version: 'v1',
  plural: 'events',
  kind: 'Event',
  namespaced: true,
});

/** Our CRDs; their full types come from crds/v1alpha1 and are applied by the caller. */
export const LlmPolicies = resourceKind<KubeObject>({
  group: 'llmproxy.io',
  version: 'v1alpha1',
  plural: 'llmpolicies',
  kind: 'LlmPolicy',
  namespaced: true,
});

export const LlmBudgets = resourceKind<KubeObject>({
  group: 'llmproxy.io',
  version: 'v1alpha1',
  plural: 'llmbudgets',
  kind: 'LlmBudget',
  namespaced: true,
});

export function apiVersionOf(kind: ResourceKind): string {
  return kind.group === '' ? kind.version : `${kind.group}/${kind.version}`;
}

export interface PathParts {
  namespace?: string;
  name?: string;
  subresource?: 'status' | 'scale' | 'token';
}

/** `/api/v1/namespaces/ns/pods/name/status`, `/apis/llmproxy.io/v1alpha1/llmpolicies`, ... */
export function resourcePath(kind: ResourceKind, parts: PathParts = {}): string {
  const root = kind.group === '' ? `/api/${kind.version}` : `/apis/${kind.group}/${kind.version}`;
  let path = root;
  if (kind.namespaced && parts.namespace !== undefined) {
    path += `/namespaces/${segment(parts.namespace)}`;
  }
  path += `/${kind.plural}`;
  if (parts.name !== undefined) path += `/${segment(parts.name)}`;
  if (parts.subresource !== undefined) {
    if (parts.name === undefined) throw new Error('a subresource needs an object name');
    path += `/${parts.subresource}`;
  }
  return path;
}

/** Object names are DNS labels/subdomains; refuse anything that could change the path. */
function segment(value: string): string {
  if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(value)) {
    throw new Error(`not a valid object name or namespace: ${JSON.stringify(value.slice(0, 64))}`);
  }
  return value;
}

export function objectKey(object: KubeObject): string {
  const meta = object.metadata ?? {};
  return meta.namespace ? `${meta.namespace}/${meta.name ?? ''}` : (meta.name ?? '');
}
