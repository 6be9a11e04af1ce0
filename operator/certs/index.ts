// The operator's own PKI: a CA and a serving certificate in a Secret, rotated without a moment
// where clients and replicas disagree, or taken from cert-manager.
export {
  MutatingWebhookConfigurations,
  Secrets,
  ValidatingWebhookConfigurations,
  startCertManager,
  type CertManager,
  type CertManagerOptions,
  type ServingMaterial,
} from './manager.js';
export {
  DEFAULT_CERT_POLICY,
  caBundleOf,
  planCertificates,
  serviceDnsNames,
  type CertPolicy,
  type CertState,
  type CertStep,
} from './plan.js';
export { executeSteps, secretFromState, servingMaterial, stateFromSecret } from './execute.js';
export { createCa, createServingCert, inspect, type KeyPairPem } from './pki.js';
