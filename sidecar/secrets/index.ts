// The key store's public surface: provider keys from files, AWS Secrets Manager, or nothing.
export {
  createKeyStore,
  type KeyStore,
  type KeyStoreOptions,
  type OperatorKey,
  lazyAwsAdapter,
} from './store.js';
export {
  CredentialsUnavailableError,
  SecretReadError,
  type SecretFailureReason,
  type SecretRef,
} from './errors.js';
export {
  SecretCache,
  type SecretCacheOptions,
  type SecretCacheState,
  type SecretsManagerAdapter,
} from './cache.js';
export { regionFromArn } from './arn.js';
export type { Credentials, FileCredentials, AwsSecretsManagerCredentials } from './schema.js';
