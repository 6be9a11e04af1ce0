import { calcPrice, findProvider } from '@pydantic/genai-prices';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { PRICE_TABLE } from './price-table.generated.js';
import {
  findPricedModel,
  type MatchLogic,
  PRICE_PROVIDER,
  type PricedModel,
  priceUsd,
  ratesAt,
  secondsOfDay,
  type TokenUsage,
} from './price-table.js';
import { renderPriceTable } from './price-table-source.js';

const ROUTED = Object.values(PRICE_PROVIDER).filter((id) => id !== undefined);

/** Names a model pattern accepts, and near misses. */
function namesOf(logic: MatchLogic): string[] {
  if ('or' in logic) return logic.or.flatMap(namesOf);
  if ('and' in logic) return logic.and.flatMap(namesOf);
  if ('equals' in logic) return [logic.equals];
  if ('starts_with' in logic) return [logic.starts_with, `${logic.starts_with}-preview`];
  if ('ends_with' in logic) return [`x-${logic.ends_with}`];
  if ('contains' in logic) return [`x-${logic.contains}-y`];
  return [];
}

/** Regular expressions among the patterns, to draw matching names from. */
function regexesOf(logic: MatchLogic): string[] {
  if ('or' in logic) return logic.or.flatMap(regexesOf);
  if ('and' in logic) return logic.and.flatMap(regexesOf);
  return 'regex' in logic ? [logic.regex] : [];
}

const models = Object.values(PRICE_TABLE.providers).flatMap((p) => p.models);
const modelNames = [...new Set(models.flatMap((m) => [m.id, ...namesOf(m.match)]))];
const regexes = [...new Set(models.flatMap((m) => regexesOf(m.match)))];
const modelName = fc.oneof(
  { arbitrary: fc.constantFrom(...modelNames), weight: 4 },
  { arbitrary: fc.oneof(...regexes.map((r) => fc.stringMatching(new RegExp(r)))), weight: 1 },
);
const spelledOtherwise = (name: string) =>
  fc.constantFrom(
    name,
    name.toUpperCase(),
    ` ${name}\t`,
    name.replace(/-(20\d\d)-(\d\d)-(\d\d)/, '-$1$2$3'), // a compact date, as some clients send
    `${name}-20250230`, // not a date
    name.slice(0, -1),
  );

const rates = models.flatMap((m) =>
  Array.isArray(m.prices) ? m.prices.map((p) => p.prices) : [m.prices],
);
const tierStarts = [
  ...new Set(
    rates.flatMap((r) =>
      Object.values(r).flatMap((rate) =>
        typeof rate === 'object' ? rate.tiers.flatMap((t) => [t.start, t.start + 1]) : [],
      ),
    ),
  ),
];
const tokens = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 0, max: 2_000_000 }),
  fc.constantFrom(...tierStarts),
);
const usage: fc.Arbitrary<TokenUsage> = fc
  .record({
    plain: tokens,
    output: tokens,
    cacheRead: fc.option(tokens, { nil: undefined }),
    cacheWrite: fc.option(tokens, { nil: undefined }),
    consistent: fc.boolean(),
  })
  .map(({ plain, output, cacheRead, cacheWrite, consistent }) => ({
    // Consistent reports count cached tokens inside the input; others may not (and fail).
    input_tokens: consistent ? plain + (cacheRead ?? 0) + (cacheWrite ?? 0) : plain,
    output_tokens: output,
    ...(cacheRead !== undefined ? { cache_read_tokens: cacheRead } : {}),
    ...(cacheWrite !== undefined ? { cache_write_tokens: cacheWrite } : {}),
  }));
/** Any time, and the first and last moments of every dated price. */
const startDates = models.flatMap((m) =>
  Array.isArray(m.prices)
    ? m.prices.flatMap((p) =>
        p.constraint?.type === 'start_date' ? [new Date(p.constraint.start_date)] : [],
      )
    : [],
);
const instant = fc.oneof(
  fc.date({
    min: new Date('2023-01-01T00:00:00Z'),
    max: new Date('2028-12-31T23:59:59Z'),
    noInvalidDate: true,
  }),
  fc.constantFrom(...startDates.flatMap((d) => [d, new Date(d.getTime() - 1)])),
);

function outcome(f: () => number | null | undefined): number | null | 'throws' {
  try {
    return f() ?? null;
  } catch {
    return 'throws';
  }
}

describe('the price table', () => {
  it('is what the installed genai-prices renders (run `make prices` after upgrading it)', () => {
    const committed = readFileSync(new URL('./price-table.generated.ts', import.meta.url), 'utf8');
    expect(committed).toBe(renderPriceTable());
  });

  it('holds every model of the routed providers and of their fallbacks', () => {
    for (const id of ROUTED) {
      const provider = findProvider({ providerId: id })!;
      expect(PRICE_TABLE.providers[id]!.models.map((m) => m.id)).toEqual(
        provider.models.map((m) => m.id),
      );
      for (const fallback of provider.fallback_model_providers ?? [])
        expect(PRICE_TABLE.providers[fallback]?.models.length).toBeGreaterThan(0);
    }
  });
});

describe('pricing from the table', () => {
  it('finds the model calcPrice finds and prices it as calcPrice does, to the bit, failures included (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ROUTED),
        modelName.chain(spelledOtherwise),
        usage,
        instant,
        (providerId, model, usage, at) => {
          const expected = outcome(
            () => calcPrice(usage, model, { providerId, timestamp: at })?.total_price,
          );
          const found = findPricedModel(PRICE_TABLE, providerId, model);
          expect(found?.id).toBe(
            calcPrice({ input_tokens: 0, output_tokens: 0 }, model, { providerId, timestamp: at })
              ?.model.id,
          );
          const actual = outcome(() => found && priceUsd(ratesAt(found, at), usage));
          expect(actual).toBe(expected);
        },
      ),
      { numRuns: 20_000 },
    );
  });

  it('prices tiered and dated models as calcPrice does across their tiers and dates (property)', () => {
    const special = ROUTED.flatMap((providerId) =>
      PRICE_TABLE.providers[providerId]!.models.filter(
        (m) =>
          Array.isArray(m.prices) ||
          Object.values(m.prices).some((rate) => typeof rate === 'object'),
      ).map((m) => ({ providerId, model: m.id })),
    );
    expect(special.length).toBeGreaterThan(10);
    fc.assert(
      fc.property(
        fc.constantFrom(...special),
        usage,
        instant,
        ({ providerId, model }, usage, at) => {
          const expected = outcome(
            () => calcPrice(usage, model, { providerId, timestamp: at })?.total_price,
          );
          const found = findPricedModel(PRICE_TABLE, providerId, model);
          expect(outcome(() => found && priceUsd(ratesAt(found, at), usage))).toBe(expected);
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it('reads times of day with their offsets, and refuses malformed ones', () => {
    expect(secondsOfDay('00:00:00Z')).toBe(0);
    expect(secondsOfDay('16:30:00Z')).toBe(59_400);
    expect(secondsOfDay('00:30:00+08:00')).toBe(59_400);
    expect(secondsOfDay('23:00:00.5-01:00')).toBe(0.5);
    for (const bad of ['24:00:00Z', '12:00:00', '12:60:00Z', '12:00:00+24:00', 'noon'])
      expect(() => secondsOfDay(bad)).toThrow(RangeError);
  });

  it('applies time-of-day prices inside their window, across midnight too', () => {
    const model: PricedModel = {
      id: 'off-peak',
      match: { equals: 'off-peak' },
      prices: [
        { prices: { input_mtok: 2 } },
        {
          constraint: { type: 'time_of_date', start_time: '16:30:00Z', end_time: '00:30:00Z' },
          prices: { input_mtok: 1 },
        },
      ],
    };
    const rateAt = (iso: string) => ratesAt(model, new Date(iso)).input_mtok;
    expect(rateAt('2026-01-01T12:00:00Z')).toBe(2);
    expect(rateAt('2026-01-01T16:30:00Z')).toBe(1);
    expect(rateAt('2026-01-01T23:59:59Z')).toBe(1);
    expect(rateAt('2026-01-02T00:29:59Z')).toBe(1);
    expect(rateAt('2026-01-02T00:30:00Z')).toBe(2);
  });
});
