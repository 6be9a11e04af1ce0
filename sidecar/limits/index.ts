// Rate limits: requests and tokens per minute, concurrency, per pod or shared through Redis.
export {
  createLimiters,
  GLOBAL_LIMIT_ID,
  type Admitted,
  type LimitRequest,
  type Limiters,
  type LimitersOptions,
  type RefusalReason,
  type Refused,
} from './limiters.js';
export type { RateLimit } from './schema.js';
export type { SharedStore } from './redis.js';

/**
 * Connects the Redis store for shared limits. Loaded on demand: a sidecar without --redis-url
 * never loads ioredis (about 13 MB of resident memory).
 */
export async function connectSharedStore(
  options: import('./redis.js').RedisStoreOptions,
): Promise<import('./redis.js').SharedStore> {
  const { createRedisStore } = await import('./redis.js');
  return createRedisStore(options);
}
