// Every span attribute, metric name and unit llmproxy emits, in one place. The gen_ai.* names
// follow the OpenTelemetry GenAI semantic conventions (incubating in
// @opentelemetry/semantic-conventions, so copied here as its README advises; a test checks them
// against the package). The allowlists below are the only names that ever leave the process.
import { ENTITY_TYPES } from '../protection/index.js';

export const ATTR_GEN_AI_OPERATION_NAME = 'gen_ai.operation.name';
export const ATTR_GEN_AI_PROVIDER_NAME = 'gen_ai.provider.name';
export const ATTR_GEN_AI_REQUEST_MODEL = 'gen_ai.request.model';
export const ATTR_GEN_AI_RESPONSE_MODEL = 'gen_ai.response.model';
export const ATTR_GEN_AI_USAGE_INPUT_TOKENS = 'gen_ai.usage.input_tokens';
export const ATTR_GEN_AI_USAGE_OUTPUT_TOKENS = 'gen_ai.usage.output_tokens';
export const ATTR_GEN_AI_TOKEN_TYPE = 'gen_ai.token.type';
export const ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = 'gen_ai.response.time_to_first_chunk';
export const ATTR_SERVER_ADDRESS = 'server.address';
export const ATTR_SERVER_PORT = 'server.port';
export const ATTR_ERROR_TYPE = 'error.type';
export const ATTR_HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code';
/** An HMAC of the end user (OpenAI `user` field): correlates without identifying. */
export const ATTR_USER_HASH = 'user.hash';

export const ATTR_LLMPROXY_PROVIDER = 'llmproxy.provider';
export const ATTR_LLMPROXY_POLICY_VERSION = 'llmproxy.policy.version';
export const ATTR_LLMPROXY_LIMIT_IDS = 'llmproxy.limit_ids';
export const ATTR_LLMPROXY_LIMIT_ID = 'llmproxy.limit_id';
export const ATTR_LLMPROXY_COST_MICROS = 'llmproxy.cost_micros';
export const ATTR_LLMPROXY_DECISION = 'llmproxy.decision';
export const ATTR_LLMPROXY_REFUSAL_CODE = 'llmproxy.refusal.code';
export const ATTR_LLMPROXY_DLP_ENTITY = 'llmproxy.dlp.entity';
export const ATTR_LLMPROXY_DLP_COUNT_PREFIX = 'llmproxy.dlp.count.';
/** An HMAC of the `x-llmproxy-user` header. */
export const ATTR_LLMPROXY_CALLER_HASH = 'llmproxy.caller.hash';
export const ATTR_LLMPROXY_OUTCOME = 'llmproxy.outcome';
/** Prompt/completion text, only when a policy sets telemetry.captureContent, redacted first. */
export const ATTR_LLMPROXY_CONTENT_INPUT = 'llmproxy.content.input';
export const ATTR_LLMPROXY_CONTENT_OUTPUT = 'llmproxy.content.output';

export const GEN_AI_TOKEN_TYPE_INPUT = 'input';
export const GEN_AI_TOKEN_TYPE_OUTPUT = 'output';
export const ERROR_TYPE_OTHER = '_OTHER';

export type Decision = 'allowed' | 'redacted' | 'refused';

export const METRIC_GEN_AI_CLIENT_OPERATION_DURATION = 'gen_ai.client.operation.duration';
export const METRIC_GEN_AI_CLIENT_TOKEN_USAGE = 'gen_ai.client.token.usage';
export const METRIC_GEN_AI_CLIENT_TIME_TO_FIRST_CHUNK =
  'gen_ai.client.operation.time_to_first_chunk';
export const METRIC_LLMPROXY_REQUESTS = 'llmproxy.requests';
export const METRIC_LLMPROXY_COST = 'llmproxy.cost.micros';
export const METRIC_LLMPROXY_LIMITER_REJECTIONS = 'llmproxy.limiter.rejections';
export const METRIC_LLMPROXY_CREDENTIAL_REFRESHES = 'llmproxy.credential.refreshes';
export const METRIC_LLMPROXY_DLP_DETECTIONS = 'llmproxy.dlp.detections';

/** Bucket boundaries the conventions recommend for the two gen_ai histograms. */
export const DURATION_BUCKETS_SECONDS = [
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
export const TOKEN_BUCKETS = [
  1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
];

export const DLP_COUNT_ATTRIBUTES: readonly string[] = ENTITY_TYPES.map(
  (e) => ATTR_LLMPROXY_DLP_COUNT_PREFIX + e,
);

/** Span attributes that may be exported. Anything else is dropped by the redacting processor. */
export const SPAN_ATTRIBUTE_ALLOWLIST: ReadonlySet<string> = new Set([
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_USER_HASH,
  ATTR_LLMPROXY_PROVIDER,
  ATTR_LLMPROXY_POLICY_VERSION,
  ATTR_LLMPROXY_LIMIT_IDS,
  ATTR_LLMPROXY_LIMIT_ID,
  ATTR_LLMPROXY_COST_MICROS,
  ATTR_LLMPROXY_DECISION,
  ATTR_LLMPROXY_REFUSAL_CODE,
  ATTR_LLMPROXY_DLP_ENTITY,
  ATTR_LLMPROXY_CALLER_HASH,
  ATTR_LLMPROXY_CONTENT_INPUT,
  ATTR_LLMPROXY_CONTENT_OUTPUT,
  ...DLP_COUNT_ATTRIBUTES,
]);

/** Metric attributes: low-cardinality ones only (no hashes, no content, no counts). */
export const METRIC_ATTRIBUTE_ALLOWLIST: ReadonlySet<string> = new Set([
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_TOKEN_TYPE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_ERROR_TYPE,
  ATTR_LLMPROXY_PROVIDER,
  ATTR_LLMPROXY_DECISION,
  ATTR_LLMPROXY_REFUSAL_CODE,
  ATTR_LLMPROXY_LIMIT_ID,
  ATTR_LLMPROXY_DLP_ENTITY,
  ATTR_LLMPROXY_OUTCOME,
]);
