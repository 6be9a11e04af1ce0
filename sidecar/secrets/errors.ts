// Failures of the key store, each naming where the key should have come from and why it did not,
// never the value: these messages reach logs and provider-shaped error bodies.

/** Why a secret could not be read; stable, safe to log and to match on. */
export type SecretFailureReason =
  | 'not_found'
  | 'access_denied'
  | 'no_aws_credentials'
  | 'decryption_failed'
  | 'invalid_request'
  | 'unreachable'
  | 'aws_error'
  | 'not_string'
  | 'not_json'
  | 'json_key_missing'
  | 'empty'
  | 'file_unreadable'
  | 'stale'
  | 'not_loaded'
  | 'unknown_provider'
  | 'operator_push_unavailable'
  | 'operator_key_not_received';

const explanations: Record<SecretFailureReason, string> = {
  not_found: 'the secret does not exist',
  access_denied: 'access to the secret was denied',
  no_aws_credentials: 'no AWS credentials were found by the standard credential chain',
  decryption_failed: 'the secret could not be decrypted with its KMS key',
  invalid_request:
    'the secret cannot be read in its current state (for example, scheduled for deletion)',
  unreachable: 'AWS Secrets Manager could not be reached',
  aws_error: 'AWS Secrets Manager returned an error',
  not_string: 'the value is not a string',
  not_json: 'the secret string is not a JSON object, so jsonKey cannot be applied',
  json_key_missing: 'the JSON secret has no such key',
  empty: 'the value is empty',
  file_unreadable: 'the file could not be read',
  stale: 'the cached value is older than the staleness bound and could not be refreshed',
  not_loaded: 'the value has not been loaded',
  unknown_provider: 'the policy names no such provider',
  operator_push_unavailable:
    'fetchFrom is "operator" but this process receives no keys from the operator',
  operator_key_not_received:
    'fetchFrom is "operator" and the operator has not delivered this key (yet): see the LlmPolicy status for why',
};

/** Thrown by a source when one read fails; the cache turns it into CredentialsUnavailableError. */
export class SecretReadError extends Error {
  readonly code = 'secret_read_failed';
  constructor(
    readonly reason: SecretFailureReason,
    /** The AWS error name (e.g. `ResourceNotFoundException`), never its message. */
    readonly awsError?: string,
  ) {
    super(awsError ? `${explanations[reason]} (${awsError})` : explanations[reason]);
  }
}

/** Where a provider's key should come from, described without its value. */
export interface SecretRef {
  /** `awsSecretsManager` secret id (name or ARN), or `file` path. */
  readonly id: string;
  readonly kind: 'awsSecretsManager' | 'file' | 'none';
  readonly jsonKey?: string;
}

/** The provider's key cannot be supplied: the request fails closed with this code. */
export class CredentialsUnavailableError extends Error {
  readonly code = 'credentials_unavailable';
  constructor(
    readonly provider: string,
    readonly ref: SecretRef | undefined,
    readonly reason: SecretFailureReason,
    readonly awsError?: string,
  ) {
    super(describeFailure(provider, ref, reason, awsError));
    this.name = 'CredentialsUnavailableError';
  }
}

function describeFailure(
  provider: string,
  ref: SecretRef | undefined,
  reason: SecretFailureReason,
  awsError: string | undefined,
): string {
  const where = !ref
    ? ''
    : ref.kind === 'file'
      ? ` from file ${ref.id}`
      : ` from secret ${ref.id}${ref.jsonKey ? ` (jsonKey "${ref.jsonKey}")` : ''}`;
  const detail = awsError ? `${explanations[reason]} (${awsError})` : explanations[reason];
  return `credentials for provider "${provider}" unavailable${where}: ${detail}`;
}
