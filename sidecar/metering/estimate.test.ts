import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { countTokens } from 'gpt-tokenizer';
import { estimateInputTokens, IMAGE_TOKENS } from './estimate.js';

const estimate = (body: unknown) =>
  estimateInputTokens('openai', body, Buffer.byteLength(JSON.stringify(body)));

describe('estimateInputTokens', () => {
  it('never counts fewer tokens than a real tokenizer, for any text', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'grapheme' }), { minLength: 1, maxLength: 5 }),
        (texts) => {
          const body = {
            model: 'gpt-4o',
            messages: texts.map((content) => ({ role: 'user', content })),
          };
          const real = texts.reduce((n, t) => n + countTokens(t), 0);
          expect(estimate(body)).toBeGreaterThanOrEqual(real);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('replaces an inline base64 image by a fixed allowance instead of its bytes', () => {
    const data = 'A'.repeat(200_000);
    const openai = {
      model: 'gpt-4o',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this?' },
            { type: 'image_url', image_url: { url: `data:image/png;base64,${data}` } },
          ],
        },
      ],
    };
    const anthropic = {
      model: 'claude-sonnet-4-20250514',
      messages: [
        {
          role: 'user',
          content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data } }],
        },
      ],
    };
    for (const body of [openai, anthropic]) {
      const e = estimate(body);
      expect(e).toBeGreaterThan(IMAGE_TOKENS);
      expect(e).toBeLessThan(IMAGE_TOKENS + 1_000);
    }
  });

  it('charges an image given by URL its allowance too', () => {
    const body = {
      model: 'gpt-4o',
      input: [
        {
          role: 'user',
          content: [{ type: 'input_image', image_url: 'https://example.com/a.png' }],
        },
      ],
    };
    expect(estimate(body)).toBeGreaterThan(IMAGE_TOKENS);
  });

  it('survives deeply nested JSON without recursion', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(estimateInputTokens('openai', deep, 200_001)).toBe(200_001);
  });

  it('costs a few microseconds for a 4 KiB prompt', () => {
    const body = {
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'lorem ipsum '.repeat(340) }],
    };
    const raw = Buffer.byteLength(JSON.stringify(body));
    for (let i = 0; i < 1000; i++) estimateInputTokens('openai', body, raw);
    const started = process.hrtime.bigint();
    for (let i = 0; i < 10_000; i++) estimateInputTokens('openai', body, raw);
    const perCallUs = Number(process.hrtime.bigint() - started) / 1000 / 10_000;
    expect(perCallUs).toBeLessThan(50); // generous for a loaded CI machine; typically ~1 µs
  });
});
