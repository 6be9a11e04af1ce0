import { describe, expect, it } from '@jest/globals';
import * as semconv from '@opentelemetry/semantic-conventions/incubating';
import * as A from './attributes.js';

describe('attribute and metric names', () => {
  it('match the GenAI semantic conventions as published in @opentelemetry/semantic-conventions', () => {
    expect(A.ATTR_GEN_AI_OPERATION_NAME).toBe(semconv.ATTR_GEN_AI_OPERATION_NAME);
    expect(A.ATTR_GEN_AI_PROVIDER_NAME).toBe(semconv.ATTR_GEN_AI_PROVIDER_NAME);
    expect(A.ATTR_GEN_AI_REQUEST_MODEL).toBe(semconv.ATTR_GEN_AI_REQUEST_MODEL);
    expect(A.ATTR_GEN_AI_RESPONSE_MODEL).toBe(semconv.ATTR_GEN_AI_RESPONSE_MODEL);
    expect(A.ATTR_GEN_AI_USAGE_INPUT_TOKENS).toBe(semconv.ATTR_GEN_AI_USAGE_INPUT_TOKENS);
    expect(A.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS).toBe(semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS);
    expect(A.ATTR_GEN_AI_TOKEN_TYPE).toBe(semconv.ATTR_GEN_AI_TOKEN_TYPE);
    expect(A.ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK).toBe(
      semconv.ATTR_GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    );
    expect(A.ATTR_SERVER_ADDRESS).toBe(semconv.ATTR_SERVER_ADDRESS);
    expect(A.ATTR_SERVER_PORT).toBe(semconv.ATTR_SERVER_PORT);
    expect(A.ATTR_ERROR_TYPE).toBe(semconv.ATTR_ERROR_TYPE);
    expect(A.ATTR_HTTP_RESPONSE_STATUS_CODE).toBe(semconv.ATTR_HTTP_RESPONSE_STATUS_CODE);
    expect(A.ATTR_USER_HASH).toBe(semconv.ATTR_USER_HASH);
    expect(A.GEN_AI_TOKEN_TYPE_INPUT).toBe(semconv.GEN_AI_TOKEN_TYPE_VALUE_INPUT);
    expect(A.GEN_AI_TOKEN_TYPE_OUTPUT).toBe(semconv.GEN_AI_TOKEN_TYPE_VALUE_OUTPUT);
    expect(A.METRIC_GEN_AI_CLIENT_OPERATION_DURATION).toBe(
      semconv.METRIC_GEN_AI_CLIENT_OPERATION_DURATION,
    );
    expect(A.METRIC_GEN_AI_CLIENT_TOKEN_USAGE).toBe(semconv.METRIC_GEN_AI_CLIENT_TOKEN_USAGE);
    expect(A.METRIC_GEN_AI_CLIENT_TIME_TO_FIRST_CHUNK).toBe(
      semconv.METRIC_GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK,
    );
  });

  it('allow a DLP count attribute per entity type and nothing that carries content by default', () => {
    expect(A.SPAN_ATTRIBUTE_ALLOWLIST.has('llmproxy.dlp.count.email')).toBe(true);
    expect(A.SPAN_ATTRIBUTE_ALLOWLIST.has('gen_ai.input.messages')).toBe(false);
    expect(A.SPAN_ATTRIBUTE_ALLOWLIST.has('http.request.header.authorization')).toBe(false);
    expect(A.METRIC_ATTRIBUTE_ALLOWLIST.has(A.ATTR_USER_HASH)).toBe(false);
  });
});
