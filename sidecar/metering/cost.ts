// What a request cost, in micro-dollars: policy overrides first, then @pydantic/genai-prices.
// Unknown is null, never zero: a zero would read as "free" in every budget.
import { calcPrice, type Provider, type Usage as PriceUsage } from '@pydantic/genai-prices';
import type { ProviderType } from '../policy/compiled.js';
import { globToRegExp } from '../policy/glob.js';
import type { PriceOverride } from './schema.js';
import type { Usage } from './usage.js';

/** genai-prices provider ids. openai-compatible servers are self-hosted: only an override can price them. */
const PRICE_PROVIDER: Record<ProviderType, string | undefined> = {
  openai: 'openai',
  'azure-openai': 'azure',
  anthropic: 'anthropic',
  'openai-compatible': undefined,
};

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
  try {
    const price = cachedCalcPrice(
      {
        input_tokens: usage.inputTokens,
        output_tokens: usage.outputTokens,
        ...(usage.cachedInputTokens ? { cache_read_tokens: usage.cachedInputTokens } : {}),
        ...(usage.cacheCreationInputTokens
          ? { cache_write_tokens: usage.cacheCreationInputTokens }
          : {}),
      },
      model,
      providerId,
    );
    if (!price || !Number.isFinite(price.total_price)) return null;
    return Math.round(price.total_price * 1_000_000);
  } catch {
    return null; // inconsistent counts (cache > input) from a provider: unknown, not zero
  }
}

/**
 * calcPrice scans every model of the provider on each call (about 6% of the sidecar's CPU per
 * request when measured). The first call per model finds the match; later calls get the provider
 * narrowed to that one model. Unknown models are remembered too. Bounded: model names come from clients.
 */
const narrowedProviders = new Map<string, Provider | null>();
const MAX_CACHED_MODELS = 512;

function cachedCalcPrice(usage: PriceUsage, model: string, providerId: string) {
  const key = `${providerId}\n${model}`;
  const narrowed = narrowedProviders.get(key);
  if (narrowed === null) return null;
  if (narrowed) return calcPrice(usage, model, { provider: narrowed });
  const price = calcPrice(usage, model, { providerId });
  if (narrowedProviders.size >= MAX_CACHED_MODELS) narrowedProviders.clear();
  narrowedProviders.set(key, price ? { ...price.provider, models: [price.model] } : null);
  return price;
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
