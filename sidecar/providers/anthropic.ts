// Anthropic's Messages API.
import type { ProviderAdapter } from './types.js';

const MESSAGES_PATH = /^\/v1\/messages$/;

export const anthropicAdapter: ProviderAdapter = {
  type: 'anthropic',
  endpoint: (path) => (MESSAGES_PATH.test(path) ? { operation: 'chat' } : undefined),
  requestedModel: (body) => body.model,
  capOutputTokens(body, _endpoint, cap) {
    const value = body.max_tokens;
    if (typeof value !== 'number' || !Number.isFinite(value) || value > cap) body.max_tokens = cap;
  },
  statedOutputTokens: (body) => (typeof body.max_tokens === 'number' ? body.max_tokens : undefined),
  isStreaming: (body) => body.stream === true,
  credentialHeaders: (key) => ({ 'x-api-key': key }),
  defaultHeaders: { 'anthropic-version': '2023-06-01' },
};
