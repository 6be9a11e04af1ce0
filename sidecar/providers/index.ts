// The wire format of each provider type.
import type { ProviderType } from '../policy/compiled.js';
import { anthropicAdapter } from './anthropic.js';
import { openAiAdapter } from './openai.js';
import type { ProviderAdapter } from './types.js';

export type { Endpoint, Operation, ProviderAdapter } from './types.js';

const ADAPTERS: Record<ProviderType, ProviderAdapter> = {
  openai: openAiAdapter('openai'),
  'openai-compatible': openAiAdapter('openai-compatible'),
  'azure-openai': openAiAdapter('azure-openai'),
  anthropic: anthropicAdapter,
};

export function adapterFor(type: ProviderType): ProviderAdapter {
  return ADAPTERS[type];
}
