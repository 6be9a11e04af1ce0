import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { adapterFor } from './index.js';

describe('provider adapters', () => {
  it('recognises only the proxied endpoints of each provider type', () => {
    expect(adapterFor('openai').endpoint('/v1/chat/completions')).toEqual({ operation: 'chat' });
    expect(adapterFor('openai').endpoint('/v1/files')).toBeUndefined();
    expect(adapterFor('openai-compatible').endpoint('/chat/completions')).toEqual({
      operation: 'chat',
    });
    expect(adapterFor('anthropic').endpoint('/v1/messages')).toEqual({ operation: 'chat' });
    expect(adapterFor('anthropic').endpoint('/v1/complete')).toBeUndefined();
    expect(
      adapterFor('azure-openai').endpoint('/openai/deployments/gpt4o-prod/chat/completions'),
    ).toEqual({ operation: 'chat', modelFromPath: 'gpt4o-prod' });
  });

  it('takes an Azure deployment from the path, not the body', () => {
    const azure = adapterFor('azure-openai');
    const endpoint = azure.endpoint('/openai/deployments/prod/embeddings')!;
    expect(azure.requestedModel({ model: 'other' }, endpoint)).toBe('prod');
  });

  it('injects the key the way each provider expects', () => {
    expect(adapterFor('openai').credentialHeaders('k')).toEqual({ authorization: 'Bearer k' });
    expect(adapterFor('azure-openai').credentialHeaders('k')).toEqual({ 'api-key': 'k' });
    expect(adapterFor('anthropic').credentialHeaders('k')).toEqual({ 'x-api-key': 'k' });
  });

  it('leaves no output-token field above the cap, whatever the client sent (property)', () => {
    const field = fc.oneof(
      fc.integer({ min: -5, max: 100_000 }),
      fc.string(),
      fc.constant(null),
      fc.constant(undefined),
      fc.double(),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), field, field, field, (cap, a, b, c) => {
        const body: Record<string, unknown> = {
          model: 'm',
          messages: [],
          max_tokens: a,
          max_completion_tokens: b,
          max_output_tokens: c,
        };
        const openai = adapterFor('openai');
        openai.capOutputTokens(body, { operation: 'chat' }, cap);
        return ['max_tokens', 'max_completion_tokens', 'max_output_tokens'].every(
          (k) =>
            body[k] === undefined ||
            body[k] === null ||
            (typeof body[k] === 'number' && (body[k] as number) <= cap),
        );
      }),
    );
  });

  it('sets max_tokens for Anthropic, where it is required', () => {
    const body: Record<string, unknown> = { model: 'claude', messages: [] };
    adapterFor('anthropic').capOutputTokens(body, { operation: 'chat' }, 300);
    expect(body.max_tokens).toBe(300);
  });
});
