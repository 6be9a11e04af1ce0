// Metering: input estimates before forwarding, usage from every response, cost, one record per request.
export { costMicros } from './cost.js';
export { estimateInputTokens, IMAGE_TOKENS } from './estimate.js';
export {
  createResponseMeter,
  prepareStreamingRequest,
  type MeterOptions,
  type ResponseMeter,
} from './meter.js';
export type { PriceOverride } from './schema.js';
export { createLogUsageSink, type UsageRecord, type UsageSink } from './sink.js';
export type { Usage } from './usage.js';
