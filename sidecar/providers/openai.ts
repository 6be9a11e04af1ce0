// OpenAI and the APIs that copy it: OpenAI-compatible servers and Azure OpenAI.
import type { ProviderType } from '../policy/compiled.js';
import type { Endpoint, Operation, ProviderAdapter } from './types.js';

const OPERATIONS: Record<string, Operation> = {
  'chat/completions': 'chat',
  completions: 'text_completion',
  embeddings: 'embeddings',
  responses: 'chat',
};

const OPENAI_PATH = /^\/v1\/(chat\/completions|completions|embeddings|responses)$/;
const COMPATIBLE_PATH = /^(?:\/v1)?\/(chat\/completions|completions|embeddings|responses)$/;
const AZURE_DEPLOYMENT_PATH =
  /^\/openai\/deployments\/([A-Za-z0-9._-]{1,64})\/(chat\/completions|completions|embeddings)$/;
const AZURE_V1_PATH = /^\/openai\/v1\/(chat\/completions|embeddings|responses)$/;

/** Output-token fields across OpenAI's APIs; all are capped, so no alias slips past the cap. */
const OUTPUT_TOKEN_FIELDS = ['max_tokens', 'max_completion_tokens', 'max_output_tokens'] as const;

function endpointFor(pattern: RegExp, path: string): Endpoint | undefined {
  const match = pattern.exec(path);
  const operation = match?.[1] && OPERATIONS[match[1]];
  return operation ? { operation } : undefined;
}

function azureEndpoint(path: string): Endpoint | undefined {
  const deployment = AZURE_DEPLOYMENT_PATH.exec(path);
  if (deployment?.[1] && deployment[2]) {
    const operation = OPERATIONS[deployment[2]];
    return operation ? { operation, modelFromPath: deployment[1] } : undefined;
  }
  return endpointFor(AZURE_V1_PATH, path);
}

function capFieldFor(endpoint: Endpoint, body: Record<string, unknown>): string | undefined {
  if (endpoint.operation === 'embeddings') return undefined;
  if ('input' in body && !('messages' in body) && endpoint.operation === 'chat')
    return 'max_output_tokens';
  return endpoint.operation === 'chat' ? 'max_completion_tokens' : 'max_tokens';
}

export function openAiAdapter(type: Exclude<ProviderType, 'anthropic'>): ProviderAdapter {
  const endpoint =
    type === 'azure-openai'
      ? azureEndpoint
      : (path: string) => endpointFor(type === 'openai' ? OPENAI_PATH : COMPATIBLE_PATH, path);
  return {
    type,
    endpoint,
    requestedModel: (body, ep) => ep.modelFromPath ?? body.model,
    capOutputTokens(body, ep, cap) {
      let present = false;
      for (const field of OUTPUT_TOKEN_FIELDS) {
        const value = body[field];
        if (value === undefined || value === null) continue;
        present = true;
        if (typeof value !== 'number' || !Number.isFinite(value) || value > cap) body[field] = cap;
      }
      const field = capFieldFor(ep, body);
      if (!present && field) body[field] = cap;
    },
    statedOutputTokens(body) {
      let bound: number | undefined;
      for (const field of OUTPUT_TOKEN_FIELDS) {
        const value = body[field];
        if (typeof value === 'number' && Number.isFinite(value))
          bound = Math.max(bound ?? 0, value);
      }
      return bound;
    },
    isStreaming: (body) => body.stream === true,
    credentialHeaders: (key): Record<string, string> =>
      type === 'azure-openai' ? { 'api-key': key } : { authorization: `Bearer ${key}` },
    defaultHeaders: {},
  };
}
