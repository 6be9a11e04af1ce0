// Admission: sidecar injection into opted-in pods, validation of LlmPolicy/LlmBudget beyond
// the CRD schema, and the webhook configurations that route both to the operator.
export {
  ADMISSION_API_VERSION,
  admitLlmObject,
  admitPod,
  decodeReview,
  encodeReview,
  type AdmissionRequest,
  type AdmissionResponse,
  type LlmObjectAdmissionDeps,
  type PodAdmissionDeps,
} from './admission.js';
export {
  MUTATE_PODS_PATH,
  SYSTEM_NAMESPACES,
  VALIDATE_PATH,
  WEBHOOK_NAMES,
  mutatingWebhookConfiguration,
  validatingWebhookConfiguration,
  type WebhookConfigurationOptions,
} from './configuration.js';
export { nativeSidecarsSupported, detectNativeSidecars } from './discovery.js';
export {
  ANNOTATION_CA_BUNDLE,
  ANNOTATION_INJECT,
  ANNOTATION_STATUS,
  LABEL_NAMESPACE_INJECTION,
  SIDECAR_NAME,
  InjectionError,
  injectPod,
  injectionRequested,
  servingProblem,
  type InjectionContext,
  type InjectionOutcome,
  type PodObject,
} from './inject.js';
export { applyPatch, diffPatch, type PatchOperation } from './patch.js';
export {
  MAX_REVIEW_BYTES,
  startWebhookServer,
  type WebhookServer,
  type WebhookServerOptions,
  type WebhookStats,
} from './server.js';
export {
  EXPENSIVE_MODELS,
  budgetTarget,
  regionOfSecretArn,
  validateLlmObject,
  type ValidationVerdict,
} from './validate.js';
export { startAdmission, type Admission, type AdmissionOptions } from './start.js';
