// What a request cost, in micro-dollars: policy overrides first, then @pydantic/genai-prices.
// Unknown is null, never zero: a zero would read as "free" in every budget.
import { createRequire } from 'node:module';
import type { ModelInfo, Provider, Usage as PriceUsage } from '@pydantic/genai-prices';
import type { ProviderType } from '../policy/compiled.js';
import { globToRegExp } from '../policy/glob.js';
import type { PriceOverride } from './schema.js';
import type { Usage } from './usage.js';

// The package's minified CommonJS build: the same table as its ESM build, at 1.2 MB less heap in
// every sidecar (V8 keeps each module's source for lazy compilation; the ESM build is unminified).
const { calcPrice } = createRequire(import.meta.url)(
  '@pydantic/genai-prices',
) as typeof import('@pydantic/genai-prices');

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
 * calcPrice scans every model of the provider on each call, then runs a general pricing engine that
 * re-validates the model's whole price set each time (together 5-6% of the sidecar's CPU per request
 * when measured). The first call per model finds the match. A model priced by flat per-million rates
 * for input, output and cache tokens (most of them) is then priced here by the engine's own
 * arithmetic, in the same order (cost.test.ts checks every such model against calcPrice); any other
 * model (tiers, dated or time-of-day prices, per-request rates) keeps calcPrice on the narrowed
 * provider.
 * Unknown models are remembered too. Bounded: model names come from clients.
 */
type Priced = { flat: FlatRate[] } | { provider: Provider } | null;
interface FlatRate {
  key: 'input_tokens' | 'output_tokens' | 'cache_read_tokens' | 'cache_write_tokens';
  perMillion: number;
  output: boolean;
}
const FLAT_KEYS: Readonly<Record<string, FlatRate['key']>> = {
  input_mtok: 'input_tokens',
  output_mtok: 'output_tokens',
  cache_read_mtok: 'cache_read_tokens',
  cache_write_mtok: 'cache_write_tokens',
};
const pricedModels = new Map<string, Priced>();
const MAX_CACHED_MODELS = 512;

function cachedCalcPrice(usage: PriceUsage, model: string, providerId: string) {
  const key = `${providerId}\n${model}`;
  const priced = pricedModels.get(key);
  if (priced === null) return null;
  if (priced && 'flat' in priced) return { total_price: flatPrice(priced.flat, usage) };
  if (priced) return calcPrice(usage, model, { provider: priced.provider });
  const price = calcPrice(usage, model, { providerId });
  if (pricedModels.size >= MAX_CACHED_MODELS) pricedModels.clear();
  pricedModels.set(key, price ? pricingOf(price.provider, price.model) : null);
  return price;
}

function pricingOf(provider: Provider, model: ModelInfo): Priced {
  const flat = flatRates(model.prices);
  return flat ? { flat } : { provider: { ...provider, models: [model] } };
}

/** The model's rates when they are all flat token rates, in the table's order; else undefined. */
export function flatRates(prices: ModelInfo['prices']): FlatRate[] | undefined {
  if (Array.isArray(prices)) return undefined;
  const rates: FlatRate[] = [];
  for (const [name, value] of Object.entries(prices)) {
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return undefined;
    const key = FLAT_KEYS[name];
    // Rates for usage llmproxy never reports (audio, images, 1 h cache writes, searches) price
    // zero tokens; a per-request rate does not, so such a model keeps the engine.
    if (key === undefined && name === 'requests_kcount') return undefined;
    if (key !== undefined) rates.push({ key, perMillion: value, output: key === 'output_tokens' });
  }
  return rates;
}

/**
 * As genai-prices computes it: cache reads and writes priced at their own rate are taken out of the
 * input tokens, and the rest of the input is priced at the input rate; a negative remainder is an
 * inconsistent usage report (thrown, as calcPrice throws).
 */
export function flatPrice(rates: FlatRate[], usage: PriceUsage): number {
  let input = 0;
  let output = 0;
  for (const rate of rates) {
    const tokens = tokenCount(rate.key, usage, rates);
    const price = (rate.perMillion * tokens) / 1_000_000;
    if (rate.output) output += price;
    else input += price;
  }
  return input + output + 0;
}

function tokenCount(key: FlatRate['key'], usage: PriceUsage, rates: FlatRate[]): number {
  const value = (name: FlatRate['key']) => {
    const n = usage[name] ?? 0;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0)
      throw new RangeError(`invalid usage value for ${name}`);
    return n;
  };
  if (key !== 'input_tokens') return value(key);
  let rest = value('input_tokens');
  for (const rate of rates)
    if (rate.key === 'cache_read_tokens' || rate.key === 'cache_write_tokens')
      rest -= value(rate.key);
  if (rest < 0) throw new RangeError('cached input tokens exceed input tokens');
  return rest;
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
