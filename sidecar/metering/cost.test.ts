import type { ProviderType } from '../policy/compiled.js';
import { calcPrice, findProvider } from '@pydantic/genai-prices';
import fc from 'fast-check';
import { describe, expect, it } from '@jest/globals';
import { costMicros, flatPrice, flatRates } from './cost.js';
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

  it('prices the same with the per-model cache as the table does uncached (property)', () => {
    const models: Array<[ProviderType, string, string]> = [
      ['openai', 'gpt-4o-mini', 'openai'],
      ['openai', 'gpt-4o', 'openai'],
      ['anthropic', 'claude-3-5-haiku-latest', 'anthropic'],
      ['anthropic', 'claude-sonnet-4-0', 'anthropic'],
      ['openai', 'no-such-model-x', 'openai'],
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...models),
        fc.integer({ min: 0, max: 200_000 }),
        fc.integer({ min: 0, max: 50_000 }),
        ([type, model, providerId], input, output) => {
          const usage = { inputTokens: input, outputTokens: output, estimated: false };
          const direct = calcPrice({ input_tokens: input, output_tokens: output }, model, {
            providerId,
          });
          const expected = direct ? Math.round(direct.total_price * 1_000_000) : null;
          return (
            costMicros(type, model, usage, []) === expected &&
            costMicros(type, model, usage, []) === expected
          );
        },
      ),
    );
  });

  it('prices every flat-rate model of the table exactly as calcPrice does, or fails where it fails (property)', () => {
    const flat = ['openai', 'azure', 'anthropic'].flatMap((providerId) => {
      const provider = findProvider({ providerId })!;
      return provider.models.flatMap((model) => {
        const rates = flatRates(model.prices);
        return rates ? [{ provider: { ...provider, models: [model] }, model, rates }] : [];
      });
    });
    // Most models have flat rates; the others keep calcPrice.
    expect(flat.length).toBeGreaterThan(50);
    const count = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3_000_000 }));
    const cache = fc.option(count, { nil: undefined });
    fc.assert(
      fc.property(
        fc.constantFrom(...flat),
        count,
        count,
        cache,
        cache,
        fc.boolean(),
        ({ provider, model, rates }, plain, output, cacheRead, cacheWrite, consistent) => {
          // Consistent reports count cached tokens inside the input; others may not (and fail).
          const input = consistent ? plain + (cacheRead ?? 0) + (cacheWrite ?? 0) : plain;
          const usage = {
            input_tokens: input,
            output_tokens: output,
            ...(cacheRead !== undefined ? { cache_read_tokens: cacheRead } : {}),
            ...(cacheWrite !== undefined ? { cache_write_tokens: cacheWrite } : {}),
          };
          const outcome = (f: () => number | undefined) => {
            try {
              return f();
            } catch {
              return 'throws';
            }
          };
          const expected = outcome(() => calcPrice(usage, model.id, { provider })?.total_price);
          if (expected === undefined) return true; // the id does not match its own pattern
          return Object.is(
            outcome(() => flatPrice(rates, usage)),
            expected,
          );
        },
      ),
      { numRuns: 3000 },
    );
  });
});
