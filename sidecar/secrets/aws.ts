// The AWS SDK adapter: the only module that imports it. Maps SDK errors to reasons without
// ever copying an AWS message, and keeps the SDK's own logging silent.
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { SecretReadError, type SecretFailureReason } from './errors.js';
import type { SecretsManagerAdapter } from './cache.js';

export interface ClosableSecretsManagerAdapter extends SecretsManagerAdapter {
  close(): void;
}

/** The SDK logs nothing of ours: no request or response, at any level. */
const silent = {
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/**
 * A Secrets Manager client for one region (undefined: the SDK's default region chain).
 * Credentials come from the standard Node chain (env, web identity/IRSA, EKS Pod Identity,
 * profile, IMDS); the endpoint from the SDK's standard settings, which include
 * `AWS_ENDPOINT_URL_SECRETS_MANAGER` and `AWS_ENDPOINT_URL`.
 */
export function createSecretsManagerAdapter(region?: string): ClosableSecretsManagerAdapter {
  const client = new SecretsManagerClient({
    ...(region ? { region } : {}),
    credentials: fromNodeProviderChain(),
    logger: silent,
    maxAttempts: 3,
    requestHandler: {
      connectionTimeout: 3_000,
      requestTimeout: 10_000,
      throwOnRequestTimeout: true,
      logger: silent,
    },
  });
  return {
    async describe(secretId) {
      try {
        const out = await client.send(new DescribeSecretCommand({ SecretId: secretId }));
        return {
          versionIdsToStages: out.VersionIdsToStages ?? {},
          ...(out.LastChangedDate ? { lastChangedDate: out.LastChangedDate } : {}),
          ...(out.LastRotatedDate ? { lastRotatedDate: out.LastRotatedDate } : {}),
          ...(out.CreatedDate ? { createdDate: out.CreatedDate } : {}),
        };
      } catch (error) {
        throw toReadError(error);
      }
    },
    async getValue(secretId, versionStage) {
      try {
        const out = await client.send(
          new GetSecretValueCommand({ SecretId: secretId, VersionStage: versionStage }),
        );
        return {
          versionId: out.VersionId ?? '',
          ...(out.SecretString !== undefined ? { secretString: out.SecretString } : {}),
        };
      } catch (error) {
        throw toReadError(error);
      }
    },
    close() {
      client.destroy();
    },
  };
}

const reasonByErrorName: Record<string, SecretFailureReason> = {
  ResourceNotFoundException: 'not_found',
  AccessDeniedException: 'access_denied',
  AccessDenied: 'access_denied',
  UnrecognizedClientException: 'access_denied',
  InvalidClientTokenId: 'access_denied',
  InvalidSignatureException: 'access_denied',
  SignatureDoesNotMatch: 'access_denied',
  ExpiredTokenException: 'access_denied',
  DecryptionFailure: 'decryption_failed',
  InvalidRequestException: 'invalid_request',
  InvalidParameterException: 'invalid_request',
  CredentialsProviderError: 'no_aws_credentials',
  TimeoutError: 'unreachable',
  AbortError: 'unreachable',
  InternalServiceError: 'unreachable',
};

/**
 * Classifies an SDK failure. Only the error's name travels on (AWS's own names are a closed set);
 * its message does not, so nothing a server or proxy wrote can reach a log or an error body.
 */
export function toReadError(error: unknown): SecretReadError {
  const e = (error ?? {}) as {
    name?: unknown;
    code?: unknown;
    $fault?: unknown;
    $metadata?: { httpStatusCode?: number };
  };
  const status = e.$metadata?.httpStatusCode;
  const rawName = typeof e.name === 'string' && /^[A-Za-z]{1,64}$/.test(e.name) ? e.name : '';
  const known = reasonByErrorName[rawName];
  if (known) return new SecretReadError(known, rawName);
  // A response the SDK could not parse (a proxy's HTML page, an XML error) surfaces as a
  // JavaScript error such as SyntaxError: name the HTTP status instead, which is what happened.
  const name = /Exception$|Fault$/.test(rawName)
    ? rawName
    : status !== undefined
      ? `HTTP${status}`
      : undefined;
  if (status === 403) return new SecretReadError('access_denied', name);
  if (e.$fault === 'server' || (status !== undefined && status >= 500)) {
    return new SecretReadError('unreachable', name);
  }
  // Socket-level failures (ECONNREFUSED, ENOTFOUND, ECONNRESET...) never got an HTTP status.
  const errno = status === undefined ? socketErrorCode(error) : undefined;
  if (errno) return new SecretReadError('unreachable', errno);
  return new SecretReadError('aws_error', name);
}

const SOCKET_ERRORS =
  /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|EPIPE|ECONNABORTED)\b/;

/**
 * The errno code of a connection failure. The SDK's retry layer re-wraps errors it does not
 * recognise as its own `Error` (a socket error from another realm, for one) into a bare message,
 * so the code is also looked for there; only the matched code is kept, never the message.
 */
function socketErrorCode(error: unknown): string | undefined {
  const e = (error ?? {}) as { code?: unknown; message?: unknown };
  if (typeof e.code === 'string' && /^E[A-Z_]+$/.test(e.code)) return e.code;
  return typeof e.message === 'string' ? SOCKET_ERRORS.exec(e.message)?.[1] : undefined;
}
