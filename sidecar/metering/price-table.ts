// The sidecar's price table and its arithmetic. The data is @pydantic/genai-prices' own, for the
// providers llmproxy routes, cut down at build time to the usage llmproxy reports
// (price-table.generated.ts, `make prices`). The package stays out of the sidecar: its whole table
// of every provider cost 5-6 MB of peak RSS (docs/benchmarks.md). The arithmetic is calcPrice's,
// step for step; price-table.test.ts checks it against calcPrice on every model of the table.

import type { ProviderType } from '../policy/compiled.js';

/** genai-prices provider ids. openai-compatible servers are self-hosted: only an override can price them. */
export const PRICE_PROVIDER: Readonly<Record<ProviderType, string | undefined>> = {
  openai: 'openai',
  'azure-openai': 'azure',
  anthropic: 'anthropic',
  'openai-compatible': undefined,
};

export type MatchLogic =
  | { and: MatchLogic[] }
  | { or: MatchLogic[] }
  | { equals: string }
  | { starts_with: string }
  | { ends_with: string }
  | { contains: string }
  | { regex: string };

/** USD per million tokens (`*_mtok`) or per thousand requests (`requests_kcount`). */
export type Rate = number | TieredRate;
/** The base rate, or the rate of the highest tier whose `start` the request's input tokens exceed. */
export interface TieredRate {
  base: number;
  tiers: { start: number; price: number }[];
}

export const PRICE_KEYS = [
  'input_mtok',
  'output_mtok',
  'cache_read_mtok',
  'cache_write_mtok',
  'requests_kcount',
] as const;
export type PriceKey = (typeof PRICE_KEYS)[number];
export type Rates = Partial<Record<PriceKey, Rate>>;

export type PriceConstraint =
  | { type: 'start_date'; start_date: string }
  | { type: 'time_of_date'; start_time: string; end_time: string };

export interface PricedModel {
  id: string;
  match: MatchLogic;
  /** One set of rates, or dated ones: the last whose constraint holds applies, else the first. */
  prices: Rates | { constraint?: PriceConstraint; prices: Rates }[];
}

export interface PricedProvider {
  models: PricedModel[];
  /** Providers whose own models price this one's when none of its own match (Azure hosts others). */
  fallback?: string[];
}

export interface PriceTable {
  /** The package and version the table was generated from. */
  source: string;
  providers: Readonly<Record<string, PricedProvider>>;
}

/** Token counts in genai-prices' terms: cache reads and writes are counted inside input_tokens. */
export type TokenUsage = {
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens?: number;
  cache_write_tokens?: number;
};

/**
 * The model `model` prices as on `providerId`, as calcPrice finds it: case- and space-insensitive,
 * the provider's own models before its fallbacks', then once more with a compact date suffix
 * (`-20240806`) written as `-2024-08-06`.
 */
export function findPricedModel(
  table: PriceTable,
  providerId: string,
  model: string,
): PricedModel | undefined {
  const provider = table.providers[providerId];
  if (!provider) return undefined;
  const id = model.toLowerCase().trim();
  const found = findIn(table, provider, id);
  if (found) return found;
  const dated = withDashedDates(id);
  return dated === id ? undefined : findIn(table, provider, dated);
}

function findIn(table: PriceTable, provider: PricedProvider, id: string): PricedModel | undefined {
  const fallbacks = (provider.fallback ?? []).map((name) => table.providers[name]);
  for (const p of [provider, ...fallbacks]) {
    const found = p?.models.find((m) => matches(m.match, id));
    if (found) return found;
  }
  return undefined;
}

/** `id` is already lower case; the patterns' strings may not be. */
function matches(logic: MatchLogic, id: string): boolean {
  if ('or' in logic) return logic.or.some((l) => matches(l, id));
  if ('and' in logic) return logic.and.every((l) => matches(l, id));
  if ('equals' in logic) return id === logic.equals.toLowerCase();
  if ('starts_with' in logic) return id.startsWith(logic.starts_with.toLowerCase());
  if ('ends_with' in logic) return id.endsWith(logic.ends_with.toLowerCase());
  if ('contains' in logic) return id.includes(logic.contains.toLowerCase());
  return new RegExp(logic.regex).test(id);
}

const COMPACT_DATE = /(-)(20\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=-|:|$)/g;

function withDashedDates(id: string): string {
  return id.replace(COMPACT_DATE, (whole, dash: string, y: string, m: string, d: string) => {
    const date = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)));
    const real =
      date.getUTCFullYear() === Number(y) &&
      date.getUTCMonth() === Number(m) - 1 &&
      date.getUTCDate() === Number(d);
    return real ? `${dash}${y}-${m}-${d}` : whole;
  });
}

/** The rates that apply at `at`. */
export function ratesAt(model: PricedModel, at: Date): Rates {
  if (!Array.isArray(model.prices)) return model.prices;
  if (Number.isNaN(at.getTime())) throw new RangeError('Invalid time value');
  for (let i = model.prices.length - 1; i >= 0; i--) {
    const { constraint, prices } = model.prices[i]!;
    if (constraint === undefined) return prices;
    if (constraint.type === 'start_date') {
      if (at >= new Date(constraint.start_date)) return prices;
    } else {
      const now =
        at.getUTCHours() * 3600 +
        at.getUTCMinutes() * 60 +
        at.getUTCSeconds() +
        at.getUTCMilliseconds() / 1000;
      const start = secondsOfDay(constraint.start_time);
      const end = secondsOfDay(constraint.end_time);
      if (end < start ? now >= start || now < end : now >= start && now < end) return prices;
    }
  }
  return model.prices[0]!.prices;
}

/** "HH:MM:SS[.fff](Z|±HH:MM)" as seconds past midnight UTC. */
export function secondsOfDay(time: string): number {
  const m = /^(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|([+-])(\d{2}):(\d{2}))$/.exec(time);
  if (!m) throw new RangeError(`invalid time of day: ${time}`);
  const [, h, min, s, fraction = '', zone, sign, zh = '00', zm = '00'] = m;
  if (Number(h) > 23 || Number(min) > 59 || Number(s) > 59 || zh > '23' || zm > '59')
    throw new RangeError(`invalid time of day: ${time}`);
  const local = Number(h) * 3600 + Number(min) * 60 + Number(s) + Number(`0.${fraction}`);
  const offset = (Number(zh) * 60 + Number(zm)) * 60;
  const utcOffset = zone === 'Z' ? 0 : sign === '+' ? offset : -offset;
  return (local - utcOffset + 86400) % 86400;
}

const PER: Record<PriceKey, number> = {
  input_mtok: 1e6,
  output_mtok: 1e6,
  cache_read_mtok: 1e6,
  cache_write_mtok: 1e6,
  requests_kcount: 1e3,
};

/**
 * USD for one request. Cache reads and writes priced at their own rate are taken out of the input
 * tokens and the rest is priced at the input rate; a tiered rate is chosen by all input tokens.
 * Sums in calcPrice's order (the rates' order), so the floating-point result is the same to the
 * bit. Throws on counts that are not finite and non-negative, and on cached tokens exceeding input.
 */
export function priceUsd(rates: Rates, usage: TokenUsage): number {
  let input = 0;
  let output = 0;
  let other = 0;
  let tiered = false;
  for (const key in rates) if (typeof rates[key as PriceKey] === 'object') tiered = true;
  const totalInput = tiered ? count('input_tokens', usage.input_tokens) : 0;
  for (const key in rates) {
    const rate = rates[key as PriceKey];
    if (rate === undefined) continue;
    const n = units(key as PriceKey, rates, usage);
    const per = PER[key as PriceKey];
    const price =
      typeof rate === 'number' ? (rate * n) / per : (tierPrice(rate, n, totalInput) * 1e6) / per;
    if (key === 'output_mtok') output += price;
    else if (key === 'requests_kcount') other += price;
    else input += price;
  }
  return input + output + other;
}

function units(key: PriceKey, rates: Rates, usage: TokenUsage): number {
  switch (key) {
    case 'requests_kcount':
      return 1;
    case 'output_mtok':
      return count('output_tokens', usage.output_tokens);
    case 'cache_read_mtok':
      return count('cache_read_tokens', usage.cache_read_tokens ?? 0);
    case 'cache_write_mtok':
      return count('cache_write_tokens', usage.cache_write_tokens ?? 0);
    case 'input_mtok': {
      let rest = count('input_tokens', usage.input_tokens);
      if (rates.cache_read_mtok !== undefined)
        rest -= count('cache_read_tokens', usage.cache_read_tokens ?? 0);
      if (rates.cache_write_mtok !== undefined)
        rest -= count('cache_write_tokens', usage.cache_write_tokens ?? 0);
      if (rest < 0) throw new RangeError('cached input tokens exceed input tokens');
      return rest;
    }
  }
}

function tierPrice(rate: TieredRate, tokens: number, totalInput: number): number {
  let price = rate.base;
  for (const tier of rate.tiers) if (totalInput > tier.start) price = tier.price;
  return (price * tokens) / 1e6;
}

function count(name: string, n: number): number {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0)
    throw new RangeError(`invalid usage value for ${name}`);
  return n;
}
