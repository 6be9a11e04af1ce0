// What a request cost, in micro-dollars: policy overrides first, then genai-prices' table.
// Unknown is null, never zero: a zero would read as "free" in every budget.
import type { ProviderType } from '../policy/compiled.js';
import { globToRegExp } from '../policy/glob.js';
import { PRICE_TABLE } from './price-table.generated.js';
import {
  findPricedModel,
  PRICE_PROVIDER,
  type PricedModel,
  priceUsd,
  ratesAt,
} from './price-table.js';
import type { PriceOverride } from './schema.js';
import type { Usage } from './usage.js';

/**
 * Cost of `usage` on `model`, rounded to whole micro-dollars, or null when no price is known.
 * `providerName` (the grant's route name) lets an override name a provider by name or by type.
 */
export function costMicros(
  providerType: ProviderType,
  model: string,
  usage: Usage,
  overrides: PriceOverride[],
  providerName?: string,
): number | null {
  const override = findOverride(overrides, providerType, providerName, model);
  if (override) return overrideCost(override, usage);
  const providerId = PRICE_PROVIDER[providerType];
  if (providerId === undefined) return null;
  const priced = pricedModel(providerId, model);
  if (!priced) return null;
  try {
    const usd = priceUsd(ratesAt(priced, new Date()), {
      input_tokens: usage.inputTokens,
      output_tokens: usage.outputTokens,
      ...(usage.cachedInputTokens ? { cache_read_tokens: usage.cachedInputTokens } : {}),
      ...(usage.cacheCreationInputTokens
        ? { cache_write_tokens: usage.cacheCreationInputTokens }
        : {}),
    });
    return Number.isFinite(usd) ? Math.round(usd * 1_000_000) : null;
  } catch {
    return null; // inconsistent counts (cache > input) from a provider: unknown, not zero
  }
}

/**
 * Finding a model scans the provider's patterns (and its fallbacks'), so each name's result is
 * remembered, unknown ones too. Bounded: model names come from clients.
 */
const pricedModels = new Map<string, PricedModel | null>();
const MAX_CACHED_MODELS = 512;

function pricedModel(providerId: string, model: string): PricedModel | null {
  const key = `${providerId}\n${model}`;
  const cached = pricedModels.get(key);
  if (cached !== undefined) return cached;
  const found = findPricedModel(PRICE_TABLE, providerId, model) ?? null;
  if (pricedModels.size >= MAX_CACHED_MODELS) pricedModels.clear();
  pricedModels.set(key, found);
  return found;
}

function findOverride(
  overrides: PriceOverride[],
  providerType: ProviderType,
  providerName: string | undefined,
  model: string,
): PriceOverride | undefined {
  return overrides.find(
    (o) =>
      (o.provider === undefined || o.provider === providerType || o.provider === providerName) &&
      globToRegExp(o.model).test(model),
  );
}

/**
 * Exact decimal arithmetic: prices are USD per million tokens with at most six decimals, so
 * tokens x price-in-micro-USD is an integer number of micro-USD per million, divided once at the end.
 */
function overrideCost(o: PriceOverride, usage: Usage): number {
  const input = microUsd(o.inputPerMillionTokens);
  const output = microUsd(o.outputPerMillionTokens);
  const cached =
    o.cachedInputPerMillionTokens === undefined ? input : microUsd(o.cachedInputPerMillionTokens);
  const tokens = (n: number | undefined) => BigInt(Math.max(0, Math.round(n ?? 0)));
  const cachedTokens = tokens(Math.min(usage.cachedInputTokens ?? 0, usage.inputTokens));
  const uncached = tokens(usage.inputTokens) - cachedTokens;
  const total = uncached * input + cachedTokens * cached + tokens(usage.outputTokens) * output;
  // micro-USD per million tokens x tokens / 1e6 = micro-USD; round half up
  return Number((total + 500_000n) / 1_000_000n);
}

/** "2.5" -> 2_500_000n micro-USD. The schema guarantees at most six decimals. */
function microUsd(decimal: string): bigint {
  const [whole, fraction = ''] = decimal.split('.');
  return BigInt(whole!) * 1_000_000n + BigInt(fraction.padEnd(6, '0').slice(0, 6));
}
