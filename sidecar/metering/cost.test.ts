import type { ProviderType } from '../policy/compiled.js';
import { calcPrice } from '@pydantic/genai-prices';
import fc from 'fast-check';
import { describe, expect, it } from '@jest/globals';
import { costMicros } from './cost.js';
import type { Usage } from './usage.js';

const usage = (over: Partial<Usage> = {}): Usage => ({
  inputTokens: 1_000_000,
  outputTokens: 100_000,
  estimated: false,
  ...over,
});

describe('costMicros', () => {
  it('prices a known model from the pricing table', () => {
    // gpt-4o: $2.50 per million input, $10 per million output
    expect(costMicros('openai', 'gpt-4o', usage(), [])).toBe(3_500_000);
  });

  it('prices cached input at the cache rate', () => {
    const full = costMicros('openai', 'gpt-4o', usage({ outputTokens: 0 }), [])!;
    const cached = costMicros(
      'openai',
      'gpt-4o',
      usage({ outputTokens: 0, cachedInputTokens: 1_000_000 }),
      [],
    )!;
    expect(cached).toBeLessThan(full);
    expect(cached).toBeGreaterThan(0);
  });

  it('prices Anthropic cache writes and reads', () => {
    const c = costMicros(
      'anthropic',
      'claude-3-5-haiku-20241022',
      usage({
        inputTokens: 3_000_000,
        cachedInputTokens: 1_000_000,
        cacheCreationInputTokens: 1_000_000,
        outputTokens: 0,
      }),
      [],
    );
    // $0.80 plain + $0.08 read + $1.00 write
    expect(c).toBe(1_880_000);
  });

  it('reports an unknown model as unknown (null), never as free', () => {
    expect(costMicros('openai', 'no-such-model-xyz', usage(), [])).toBeNull();
  });

  it('prices a self-hosted openai-compatible model only by override', () => {
    expect(costMicros('openai-compatible', 'gpt-4o', usage(), [])).toBeNull();
    const override = {
      model: 'llama-*',
      inputPerMillionTokens: '0.1',
      outputPerMillionTokens: '0.2',
    };
    expect(costMicros('openai-compatible', 'llama-3-70b', usage(), [override])).toBe(120_000);
  });

  it('applies a policy override before the table, with exact decimal arithmetic', () => {
    const overrides = [
      {
        provider: 'openai-eu',
        model: 'gpt-4o*',
        inputPerMillionTokens: '1.000001',
        outputPerMillionTokens: '3',
        cachedInputPerMillionTokens: '0.5',
      },
    ];
    const u = usage({ inputTokens: 3, outputTokens: 0, cachedInputTokens: 0 });
    expect(costMicros('openai', 'gpt-4o', u, overrides, 'openai-eu')).toBe(3); // 3.000003 µ$
    expect(
      costMicros('openai', 'gpt-4o', usage({ cachedInputTokens: 500_000 }), overrides, 'openai-eu'),
    ).toBe(
      500_000 + 250_000 + 300_000 + 1, // 0.5 µ$ of the 1.000001 rate rounds half up
    );
    // another provider name: the override does not apply
    expect(costMicros('openai', 'gpt-4o', usage(), overrides, 'openai-us')).toBe(3_500_000);
  });

  it("prices as genai-prices' calcPrice does, remembered models too (property)", () => {
    const models: Array<[ProviderType, string, string]> = [
      ['openai', 'gpt-4o-mini', 'openai'],
      ['openai', 'gpt-4o', 'openai'],
      ['azure-openai', 'gpt-4o', 'azure'],
      ['azure-openai', 'claude-sonnet-4-5', 'azure'],
      ['anthropic', 'claude-3-5-haiku-latest', 'anthropic'],
      ['anthropic', 'claude-sonnet-4-0', 'anthropic'],
      ['openai', 'no-such-model-x', 'openai'],
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...models),
        fc.integer({ min: 0, max: 400_000 }),
        fc.integer({ min: 0, max: 50_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        ([type, model, providerId], input, output, cacheRead, cacheWrite) => {
          const usage = {
            inputTokens: input,
            outputTokens: output,
            cachedInputTokens: cacheRead,
            cacheCreationInputTokens: cacheWrite,
            estimated: false,
          };
          const counts = {
            input_tokens: input,
            output_tokens: output,
            ...(cacheRead ? { cache_read_tokens: cacheRead } : {}),
            ...(cacheWrite ? { cache_write_tokens: cacheWrite } : {}),
          };
          let expected: number | null;
          try {
            const direct = calcPrice(counts, model, { providerId });
            expected = direct ? Math.round(direct.total_price * 1_000_000) : null;
          } catch {
            expected = null; // cached tokens beyond the input: unknown, not free
          }
          expect(costMicros(type, model, usage, [])).toBe(expected);
          expect(costMicros(type, model, usage, [])).toBe(expected);
        },
      ),
    );
  });
});
