// Shared rate limits against a real redis-server: two limiter sets stand in for two sidecars.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import {
  createLimiters,
  type Admitted,
  type Limiters,
  type Refused,
} from '../../sidecar/limits/index.js';
import { createRedisStore } from '../../sidecar/limits/redis.js';
import type { RateLimit } from '../../sidecar/limits/schema.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { startRedis, type RedisServer } from '../support/redis.js';

const quiet: Logger = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} };
const req = { provider: 'openai', model: 'gpt-4o', estimatedInputTokens: 10, maxOutputTokens: 10 };
let redis: RedisServer;
let open: Limiters[] = [];
let keySeq = 0;

beforeAll(async () => {
  redis = await startRedis();
}, 30_000);

afterAll(async () => {
  await redis?.stop();
});

afterEach(async () => {
  redis?.resume();
  await Promise.all(open.map((l) => l.close()));
  open = [];
});

/** A fresh limit id per test, so tests never share buckets. */
function sharedLimit(over: Partial<RateLimit> = {}): RateLimit {
  keySeq += 1;
  return {
    id: `it-${process.pid}-${Date.now()}-${keySeq}`,
    scope: 'shared',
    match: { model: 'gpt-*' },
    ...over,
  };
}

function sidecar(limits: RateLimit[], onRedisDown: 'pod-share' | 'closed' = 'pod-share'): Limiters {
  const limiters = createLimiters({
    sharedStore: createRedisStore({ url: redis.url, log: quiet, commandTimeoutMs: 200 }),
    onRedisDown,
    log: quiet,
  });
  limiters.apply(limits);
  open.push(limiters);
  return limiters;
}

/** Waits until each set checks in Redis: a probe whose pod share is 1 admits twice only through Redis. */
async function untilRedisUsed(sets: Limiters[], limits: RateLimit[]): Promise<void> {
  const probe = sharedLimit({
    requestsPerMinute: 100_000,
    share: 0.00001,
    match: { model: 'probe' },
  });
  for (const set of sets) {
    set.apply([...limits, probe]);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = await set.admit({ ...req, model: 'probe' });
      if (r.ok) {
        r.release();
        const again = await set.admit({ ...req, model: 'probe' });
        if (again.ok) again.release();
        if (again.ok) break;
      }
      if (Date.now() > deadline) throw new Error('Redis never became ready');
      await sleep(50);
    }
    set.apply(limits);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const count = (results: (Admitted | Refused)[]) => results.filter((r) => r.ok).length;

/** Admits `n` requests through each limiter set, interleaved and concurrent; every call timed. */
async function burst(
  sets: Limiters[],
  n: number,
): Promise<{ results: (Admitted | Refused)[]; slowestMs: number }> {
  let slowestMs = 0;
  const calls: Promise<Admitted | Refused>[] = [];
  for (let i = 0; i < n; i++) {
    for (const set of sets) {
      const started = Date.now();
      calls.push(
        set.admit(req).then((r) => {
          slowestMs = Math.max(slowestMs, Date.now() - started);
          if (r.ok) r.release();
          return r;
        }),
      );
    }
  }
  return { results: await Promise.all(calls), slowestMs };
}

describe('shared limits in Redis', () => {
  it('two sidecars sharing N requests per minute admit exactly N together', async () => {
    const limit = sharedLimit({ requestsPerMinute: 25, share: 0.5 });
    const a = sidecar([limit]);
    const b = sidecar([limit]);
    await untilRedisUsed([a, b], [limit]);
    const { results } = await burst([a, b], 40);
    expect(count(results)).toBe(25);
    const refused = results.find((r): r is Refused => !r.ok)!;
    expect(refused).toMatchObject({ status: 429, reason: 'rate', limitId: limit.id });
    expect(Number(refused.headers['Retry-After'])).toBeGreaterThanOrEqual(1);
  });

  it('settles token reservations in Redis, so a refund is visible to the other sidecar', async () => {
    const limit = sharedLimit({ tokensPerMinute: 1000 });
    const a = sidecar([limit]);
    const b = sidecar([limit]);
    await untilRedisUsed([a, b], [limit]);
    const first = await a.admit({ ...req, estimatedInputTokens: 400, maxOutputTokens: 500 });
    expect(first.ok).toBe(true);
    expect((await b.admit({ ...req, estimatedInputTokens: 100, maxOutputTokens: 100 })).ok).toBe(
      false,
    );
    if (first.ok) first.settle({ inputTokens: 100, outputTokens: 100 });
    await sleep(100);
    const second = await b.admit({ ...req, estimatedInputTokens: 100, maxOutputTokens: 100 });
    expect(second.ok).toBe(true);
  });

  it('falls back to the pod share when Redis is killed, never hangs, and recovers when it returns', async () => {
    const limit = sharedLimit({ requestsPerMinute: 1000, share: 0.01 }); // pod share: 10
    const a = sidecar([limit]);
    await untilRedisUsed([a], [limit]);
    expect(count((await burst([a], 5)).results)).toBe(5);

    await redis.kill();
    const down = await burst([a], 30);
    expect(down.slowestMs).toBeLessThan(1000);
    expect(count(down.results)).toBe(10); // the pod's share, nothing more

    await redis.restart();
    const deadline = Date.now() + 15_000;
    let recovered = false;
    while (!recovered && Date.now() < deadline) {
      await sleep(200);
      const r = await a.admit(req);
      if (r.ok) {
        r.release();
        recovered = true; // the fallback share is spent, so this came from Redis
      }
    }
    expect(recovered).toBe(true);
  }, 30_000);

  it('survives Redis killed in the middle of a stream of checks', async () => {
    const limit = sharedLimit({ requestsPerMinute: 100_000, share: 0.5 });
    const a = sidecar([limit]);
    await untilRedisUsed([a], [limit]);
    const until = Date.now() + 1_000;
    let slowestMs = 0;
    let admittedCount = 0;
    const killer = sleep(300).then(() => redis.kill());
    while (Date.now() < until) {
      const started = Date.now();
      const batch = await Promise.all(Array.from({ length: 20 }, () => a.admit(req)));
      slowestMs = Math.max(slowestMs, Date.now() - started);
      for (const r of batch) {
        if (!r.ok) continue;
        admittedCount += 1;
        r.release();
      }
    }
    await killer;
    expect(slowestMs).toBeLessThan(1000);
    expect(admittedCount).toBeGreaterThan(0);
    await redis.restart();
  }, 30_000);

  it('fails closed with 503 while Redis is down when configured to, and recovers', async () => {
    const limit = sharedLimit({ requestsPerMinute: 1000 });
    const a = sidecar([limit], 'closed');
    await untilRedisUsed([a], [limit]);
    expect((await a.admit(req)).ok).toBe(true);
    await redis.kill();
    const down = await burst([a], 10);
    expect(down.slowestMs).toBeLessThan(1000);
    expect(
      down.results.every((r) => !r.ok && r.status === 503 && r.reason === 'store_unavailable'),
    ).toBe(true);
    await redis.restart();
    const deadline = Date.now() + 15_000;
    let recovered = false;
    while (!recovered && Date.now() < deadline) {
      await sleep(200);
      recovered = (await a.admit(req)).ok;
    }
    expect(recovered).toBe(true);
  }, 30_000);

  it('bounds every check by the timeout when Redis hangs, then falls back', async () => {
    const limit = sharedLimit({ requestsPerMinute: 1000, share: 0.01 });
    const a = sidecar([limit]);
    await untilRedisUsed([a], [limit]);
    redis.pause();
    const hung = await burst([a], 20);
    expect(hung.slowestMs).toBeLessThan(1500);
    expect(count(hung.results)).toBe(10);
    redis.resume();
  }, 30_000);
});
