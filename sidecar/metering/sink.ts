// One usage record per request, handed to a pluggable sink (the operator issue ships them upstream).
import type { Logger } from '../telemetry/log.js';
import type { Usage } from './usage.js';

export interface UsageRecord {
  provider: string;
  model: string;
  usage: Usage;
  costMicros: number | null;
  limitIds: string[];
  /** Already hashed (HMAC) by the caller-identification step. */
  caller?: string;
  status: number;
  aborted: boolean;
}

export interface UsageSink {
  record(r: UsageRecord): void;
}

/** Logs metadata only: counts, cost, ids. Never content. */
export function createLogUsageSink(log: Logger): UsageSink {
  return {
    record(r) {
      log.info('usage', {
        event: 'usage',
        provider: r.provider,
        model: r.model,
        responseModel: r.usage.responseModel,
        inputTokens: r.usage.inputTokens,
        outputTokens: r.usage.outputTokens,
        cachedInputTokens: r.usage.cachedInputTokens,
        cacheCreationInputTokens: r.usage.cacheCreationInputTokens,
        reasoningTokens: r.usage.reasoningTokens,
        estimated: r.usage.estimated,
        costMicros: r.costMicros,
        limitIds: r.limitIds,
        caller: r.caller,
        status: r.status,
        aborted: r.aborted,
      });
    },
  };
}
