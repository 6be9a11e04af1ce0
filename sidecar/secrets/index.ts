// The key store's public surface: provider keys from files, AWS Secrets Manager, or nothing.
export { createKeyStore, type KeyStore, type KeyStoreOptions } from './store.js';
export { CredentialsUnavailableError, type SecretFailureReason, type SecretRef } from './errors.js';
export type { SecretsManagerAdapter } from './cache.js';
export { regionFromArn } from './arn.js';
export { Credentials, FileCredentials, AwsSecretsManagerCredentials } from './schema.js';
