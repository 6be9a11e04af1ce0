import { describe, expect, it } from '@jest/globals';
import { errorResponse, ProxyError, streamErrorEvent } from './errors.js';

describe('errorResponse', () => {
  it('speaks OpenAI shape by default and Anthropic shape for Anthropic', () => {
    const error = new ProxyError('model_not_allowed', 'no');
    expect(JSON.parse(errorResponse(error, 'openai').body)).toEqual({
      error: { message: 'no', type: 'permission_error', param: null, code: 'model_not_allowed' },
    });
    expect(JSON.parse(errorResponse(error, 'anthropic').body)).toEqual({
      type: 'error',
      error: { type: 'permission_error', code: 'model_not_allowed', message: 'no' },
    });
  });

  it('tells SDKs not to retry final answers, and lets them retry transient ones', () => {
    expect(
      errorResponse(new ProxyError('budget_exhausted', 'x'), 'openai').headers['x-should-retry'],
    ).toBe('false');
    expect(
      errorResponse(new ProxyError('rate_limited', 'x', { 'retry-after': '3' }), 'openai').headers,
    ).toMatchObject({ 'retry-after': '3' });
    expect(
      errorResponse(new ProxyError('rate_limited', 'x'), 'openai').headers['x-should-retry'],
    ).toBeUndefined();
  });

  it('frames a mid-stream error as the provider frames its own', () => {
    expect(streamErrorEvent(new ProxyError('upstream_unavailable', 'gone'), 'anthropic')).toMatch(
      /^event: error\ndata: .*\n\n$/,
    );
    expect(streamErrorEvent(new ProxyError('upstream_unavailable', 'gone'), 'openai')).toMatch(
      /^data: \{"error".*\n\n$/,
    );
  });
});
