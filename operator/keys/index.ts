// Provider keys the operator reads from AWS Secrets Manager and pushes to entitled pods.
export { SecretRegistry, type SecretObservation, type SecretRegistryOptions } from './registry.js';
export { secretRefsOf, type PolicySecretRef } from './refs.js';
