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
export { RateLimit } from './schema.js';
