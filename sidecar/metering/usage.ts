// Provider usage objects normalized into one shape. Input counts every input token, cached or not.
import type { ProviderType } from '../policy/compiled.js';

export interface Usage {
  /** All input tokens, including cache reads and cache writes (Anthropic reports those apart; summed here). */
  inputTokens: number;
  /** All output tokens, including reasoning tokens. */
  outputTokens: number;
  cachedInputTokens?: number;
  cacheCreationInputTokens?: number;
  reasoningTokens?: number;
  /** The model the provider says answered (may differ from the requested one, e.g. a dated version). */
  responseModel?: string;
  /** True when any count is the sidecar's estimate rather than the provider's report. */
  estimated: boolean;
}

export type Family = 'openai' | 'anthropic';

export const familyOf = (providerType: ProviderType): Family =>
  providerType === 'anthropic' ? 'anthropic' : 'openai';

/** Counts as reported, before they are combined; undefined = not reported. */
export interface ReportedUsage {
  input?: number;
  output?: number;
  cacheRead?: number;
  cacheCreation?: number;
  reasoning?: number;
}

const count = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;

const record = (value: unknown): Record<string, unknown> | undefined =>
  value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;

/** OpenAI chat/completions/embeddings (`prompt_tokens`...) and responses (`input_tokens`...). */
export function readOpenAiUsage(value: unknown): ReportedUsage | undefined {
  const u = record(value);
  if (!u) return undefined;
  const input = count(u.prompt_tokens) ?? count(u.input_tokens);
  if (input === undefined) return undefined;
  const inputDetails = record(u.prompt_tokens_details) ?? record(u.input_tokens_details);
  const outputDetails = record(u.completion_tokens_details) ?? record(u.output_tokens_details);
  return compact({
    input,
    // embeddings report no output at all: that is zero, not unknown
    output: count(u.completion_tokens) ?? count(u.output_tokens) ?? 0,
    cacheRead: count(inputDetails?.cached_tokens),
    reasoning: count(outputDetails?.reasoning_tokens),
  });
}

/** Anthropic `usage`: input excludes cache reads and writes, which it reports separately. */
export function readAnthropicUsage(value: unknown): ReportedUsage | undefined {
  const u = record(value);
  if (!u) return undefined;
  return compact({
    input: count(u.input_tokens),
    output: count(u.output_tokens),
    cacheRead: count(u.cache_read_input_tokens),
    cacheCreation: count(u.cache_creation_input_tokens),
  });
}

/** Later reports override earlier ones field by field (Anthropic's message_delta is cumulative). */
export function mergeReported(a: ReportedUsage, b: ReportedUsage): ReportedUsage {
  return { ...a, ...b };
}

export function combine(
  family: Family,
  reported: ReportedUsage,
  fallback: { input: number; output: number },
  exact: boolean,
): Usage {
  const cacheRead = reported.cacheRead;
  const cacheCreation = reported.cacheCreation;
  const baseInput = reported.input ?? fallback.input;
  const inputTokens =
    family === 'anthropic' && reported.input !== undefined
      ? baseInput + (cacheRead ?? 0) + (cacheCreation ?? 0)
      : baseInput;
  const outputTokens = exact
    ? (reported.output ?? 0)
    : Math.max(reported.output ?? 0, fallback.output);
  return {
    inputTokens,
    outputTokens,
    ...(cacheRead !== undefined ? { cachedInputTokens: cacheRead } : {}),
    ...(cacheCreation !== undefined ? { cacheCreationInputTokens: cacheCreation } : {}),
    ...(reported.reasoning !== undefined ? { reasoningTokens: reported.reasoning } : {}),
    estimated: !exact || reported.input === undefined,
  };
}

function compact(u: ReportedUsage): ReportedUsage {
  const out: ReportedUsage = {};
  for (const [k, v] of Object.entries(u) as [keyof ReportedUsage, number | undefined][])
    if (v !== undefined) out[k] = v;
  return out;
}
