// The operator's only door to the Kubernetes API. Nothing outside operator/kube imports
// @kubernetes/client-node.
export {
  KubeApiError,
  KubeClient,
  KubeConfig,
  isConflict,
  isGone,
  isNotFound,
  loadKubeConfig,
  microTime,
  sameJson,
  type ListOptions,
  type PatchOptions,
  type PatchType,
  type WatchEvent,
  type WatchOptions,
} from './client.js';
export {
  Informer,
  diffSnapshots,
  nextStep,
  type Change,
  type ChangeType,
  type InformerOptions,
  type InformerStats,
} from './informer.js';
export {
  ConfigMaps,
  Events,
  Leases,
  LlmBudgets,
  LlmPolicies,
  Namespaces,
  Pods,
  ServiceAccounts,
  apiVersionOf,
  objectKey,
  resourceKind,
  resourcePath,
  type ResourceKind,
} from './resources.js';
export type * from './types.js';
