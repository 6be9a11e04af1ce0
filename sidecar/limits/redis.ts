// Shared token buckets in Redis, for `scope: shared` limits. The only module that imports ioredis.
// Every check is one atomic round trip (a Lua script) timed by Redis's own clock, so all replicas
// agree on refill time; every call is bounded by a timeout and fails fast while Redis is down.
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from '../telemetry/log.js';

export interface SharedTake {
  key: string;
  capacity: number;
  refillPerMs: number;
  amount: number;
}

export type SharedTakeResult =
  | { ok: true; levels: number[]; fullInMs: number[] }
  | { ok: false; index: number; retryAfterMs: number; level: number };

export interface SharedStore {
  /** False while disconnected or cooling down after a failure: callers fall back without a round trip. */
  available(): boolean;
  /** Takes every amount or none (all-or-nothing across the request's shared limits). */
  takeAll(takes: SharedTake[]): Promise<SharedTakeResult>;
  /** Adds `delta` (refund > 0, charge < 0) to a bucket, capped at its capacity. */
  adjust(take: Omit<SharedTake, 'amount'>, delta: number): Promise<void>;
  close(): Promise<void>;
}

export class SharedStoreUnavailable extends Error {
  readonly code = 'rate_limit_store_unavailable';
}

// Bucket hash fields: l = level, t = ms of the last update (Redis TIME). A missing key is a full bucket.
// Keys expire when the bucket would be full again, so idle limits cost no memory.
const REFILL = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function level_of(key, cap, rate, now)
  local s = redis.call('HMGET', key, 'l', 't')
  if not s[1] then return cap end
  local elapsed = now - tonumber(s[2])
  if elapsed < 0 then elapsed = 0 end
  return math.min(cap, tonumber(s[1]) + elapsed * rate)
end
local function store(key, level, cap, rate, now)
  local ttl = math.ceil((cap - level) / rate)
  if ttl < 1 then
    redis.call('DEL', key)
  else
    redis.call('HSET', key, 'l', tostring(level), 't', tostring(now))
    redis.call('PEXPIRE', key, ttl + 1000)
  end
end
`;

const TAKE_ALL = `${REFILL}
local now = now_ms()
local levels = {}
for i, key in ipairs(KEYS) do
  local cap = tonumber(ARGV[3 * i - 2])
  local rate = tonumber(ARGV[3 * i - 1])
  local amount = tonumber(ARGV[3 * i])
  local level = level_of(key, cap, rate, now)
  if level < amount then
    return {0, i, tostring(math.ceil((amount - level) / rate)), tostring(level)}
  end
  levels[i] = level - amount
end
local out = {1}
for i, key in ipairs(KEYS) do
  local cap = tonumber(ARGV[3 * i - 2])
  local rate = tonumber(ARGV[3 * i - 1])
  store(key, levels[i], cap, rate, now)
  out[#out + 1] = tostring(levels[i])
end
return out
`;

const ADJUST = `${REFILL}
local now = now_ms()
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local level = math.min(cap, level_of(KEYS[1], cap, rate, now) + tonumber(ARGV[3]))
store(KEYS[1], level, cap, rate, now)
return tostring(level)
`;

interface Script {
  source: string;
  sha: string;
}

const script = (source: string): Script => ({
  source,
  sha: createHash('sha1').update(source).digest('hex'),
});
const takeAllScript = script(TAKE_ALL);
const adjustScript = script(ADJUST);

export interface RedisStoreOptions {
  url: string;
  log: Logger;
  /** Upper bound on one round trip; a slower answer counts as Redis down. */
  commandTimeoutMs?: number;
  /** After a failed call, skip Redis for this long before trying again. */
  cooldownMs?: number;
  keyPrefix?: string;
  onAvailabilityChange?: (available: boolean) => void;
}

export function createRedisStore(options: RedisStoreOptions): SharedStore {
  const { log } = options;
  const cooldownMs = options.cooldownMs ?? 1000;
  const prefix = options.keyPrefix ?? 'llmproxy:rl:';
  const client = new Redis(options.url, {
    // Fail fast instead of queueing while disconnected: the caller falls back or fails closed.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: options.commandTimeoutMs ?? 200,
    connectTimeout: 2000,
    disconnectTimeout: 200,
    // Reconnect forever, at most every two seconds: recovery is automatic.
    retryStrategy: (times) => Math.min(100 * times, 2000),
  });
  let coolUntil = 0;
  let up = false;
  const setUp = (value: boolean, reason?: string): void => {
    if (value === up) return;
    up = value;
    if (value) log.info('shared rate limits use Redis again', { event: 'redis_available' });
    else
      log.warn('Redis unavailable for shared rate limits', {
        event: 'redis_unavailable',
        ...(reason ? { reason } : {}),
      });
    options.onAvailabilityChange?.(value);
  };
  // An unhandled 'error' event would crash the process; the URL (which may hold a password) is never logged.
  client.on('error', (err: Error & { code?: string }) => setUp(false, err.code ?? 'error'));
  client.on('ready', () => {
    coolUntil = 0;
    setUp(true);
  });
  client.on('close', () => setUp(false, 'connection_closed'));

  const failed = (err: unknown): never => {
    coolUntil = Date.now() + cooldownMs;
    const reason = (err as { code?: string; name?: string }).code ?? 'timeout_or_error';
    setUp(false, reason);
    throw new SharedStoreUnavailable(`shared rate limit store unavailable (${reason})`);
  };

  const run = async (s: Script, keys: string[], args: (string | number)[]): Promise<unknown> => {
    try {
      return await client.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
      return client.eval(s.source, keys.length, ...keys, ...args);
    }
  };

  return {
    available: () => client.status === 'ready' && Date.now() >= coolUntil,

    async takeAll(takes) {
      const keys = takes.map((t) => prefix + t.key);
      const args = takes.flatMap((t) => [t.capacity, t.refillPerMs, t.amount]);
      let reply: unknown;
      try {
        reply = await run(takeAllScript, keys, args);
      } catch (err) {
        return failed(err);
      }
      setUp(true);
      const values = reply as (string | number)[];
      if (Number(values[0]) === 1) {
        const levels = values.slice(1).map(Number);
        return {
          ok: true,
          levels,
          fullInMs: levels.map((level, i) => {
            const t = takes[i]!;
            return Math.max(0, Math.ceil((t.capacity - level) / t.refillPerMs));
          }),
        };
      }
      return {
        ok: false,
        index: Number(values[1]) - 1,
        retryAfterMs: Number(values[2]),
        level: Number(values[3]),
      };
    },

    async adjust(take, delta) {
      try {
        await run(adjustScript, [prefix + take.key], [take.capacity, take.refillPerMs, delta]);
      } catch (err) {
        failed(err);
      }
    },

    async close() {
      client.removeAllListeners('ready');
      client.removeAllListeners('close');
      if (client.status !== 'ready') return client.disconnect();
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    },
  };
}
