// Every refusal the sidecar makes, with a stable code. Status and body shape are chosen here only.
import type { ProviderType } from '../policy/compiled.js';

export type ErrorCode =
  | 'model_not_allowed'
  | 'provider_not_found'
  | 'route_not_found'
  | 'method_not_allowed'
  | 'unsupported_media_type'
  | 'request_too_large'
  | 'invalid_request'
  | 'content_blocked'
  | 'rate_limited'
  | 'budget_exhausted'
  | 'overloaded'
  | 'policy_unavailable'
  | 'credentials_unavailable'
  | 'upstream_unavailable'
  | 'upstream_timeout';

interface ErrorTraits {
  status: number;
  /** SDKs retry 429 and 5xx by default; `x-should-retry: false` stops blind retries of final answers. */
  retryable: boolean;
  openaiType: string;
  anthropicType: string;
}

const TRAITS: Record<ErrorCode, ErrorTraits> = {
  model_not_allowed: {
    status: 403,
    retryable: false,
    openaiType: 'permission_error',
    anthropicType: 'permission_error',
  },
  provider_not_found: {
    status: 404,
    retryable: false,
    openaiType: 'invalid_request_error',
    anthropicType: 'not_found_error',
  },
  route_not_found: {
    status: 404,
    retryable: false,
    openaiType: 'invalid_request_error',
    anthropicType: 'not_found_error',
  },
  method_not_allowed: {
    status: 405,
    retryable: false,
    openaiType: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
  },
  unsupported_media_type: {
    status: 415,
    retryable: false,
    openaiType: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
  },
  request_too_large: {
    status: 413,
    retryable: false,
    openaiType: 'invalid_request_error',
    anthropicType: 'request_too_large',
  },
  invalid_request: {
    status: 400,
    retryable: false,
    openaiType: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
  },
  content_blocked: {
    status: 400,
    retryable: false,
    openaiType: 'invalid_request_error',
    anthropicType: 'invalid_request_error',
  },
  rate_limited: {
    status: 429,
    retryable: true,
    openaiType: 'rate_limit_error',
    anthropicType: 'rate_limit_error',
  },
  budget_exhausted: {
    status: 402,
    retryable: false,
    openaiType: 'insufficient_quota',
    anthropicType: 'permission_error',
  },
  overloaded: {
    status: 503,
    retryable: true,
    openaiType: 'server_error',
    anthropicType: 'overloaded_error',
  },
  policy_unavailable: {
    status: 503,
    retryable: true,
    openaiType: 'server_error',
    anthropicType: 'api_error',
  },
  credentials_unavailable: {
    status: 503,
    retryable: true,
    openaiType: 'server_error',
    anthropicType: 'api_error',
  },
  upstream_unavailable: {
    status: 502,
    retryable: true,
    openaiType: 'server_error',
    anthropicType: 'api_error',
  },
  upstream_timeout: {
    status: 504,
    retryable: true,
    openaiType: 'server_error',
    anthropicType: 'api_error',
  },
};

/**
 * A refusal. The message is written by us from fixed text and policy names only: never from a
 * header value, a request body, a provider response or a secret.
 */
export class ProxyError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly statusOverride?: number,
    /** Names the rule that refused (never request content): a limit id, an entity type. */
    readonly detail: { limitId?: string; entity?: string } = {},
  ) {
    super(message);
  }

  get status(): number {
    return this.statusOverride ?? TRAITS[this.code].status;
  }
}

export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The provider's own error shape, so the official SDKs raise their usual typed errors. */
export function errorResponse(
  error: ProxyError,
  providerType: ProviderType | undefined,
): ErrorResponse {
  const traits = TRAITS[error.code];
  // OpenAI's `param` names what was wrong; here the rule that refused (a limit id, an entity type).
  const rule = error.detail.limitId ?? error.detail.entity ?? null;
  const body =
    providerType === 'anthropic'
      ? {
          type: 'error',
          error: {
            type: traits.anthropicType,
            code: error.code,
            message: error.message,
            ...(rule === null ? {} : { rule }),
          },
        }
      : {
          error: { message: error.message, type: traits.openaiType, param: rule, code: error.code },
        };
  return {
    status: error.status,
    headers: {
      'content-type': 'application/json',
      'x-llmproxy-error': error.code,
      ...(traits.retryable ? {} : { 'x-should-retry': 'false' }),
      ...error.headers,
    },
    body: JSON.stringify(body),
  };
}

/** The same refusal as one server-sent event, for a stream that already started. */
export function streamErrorEvent(error: ProxyError, providerType: ProviderType): string {
  const traits = TRAITS[error.code];
  if (providerType === 'anthropic') {
    const data = {
      type: 'error',
      error: { type: traits.anthropicType, code: error.code, message: error.message },
    };
    return `event: error\ndata: ${JSON.stringify(data)}\n\n`;
  }
  const data = {
    error: { message: error.message, type: traits.openaiType, param: null, code: error.code },
  };
  return `data: ${JSON.stringify(data)}\n\n`;
}
