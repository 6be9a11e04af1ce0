import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { Logger, LogFields } from '../telemetry/log.js';
import { createLimiters, type Admitted, type LimitRequest, type Refused } from './index.js';
import type { SharedStore, SharedTake } from './redis.js';
import type { RateLimit } from './schema.js';
import { fullBucket, settle, take, type BucketState } from './token-bucket.js';

function recordingLog(): Logger & {
  lines: { level: string; message: string; fields?: LogFields }[];
} {
  const lines: { level: string; message: string; fields?: LogFields }[] = [];
  const at = (level: string) => (message: string, fields?: LogFields) => {
    lines.push({ level, message, ...(fields ? { fields } : {}) });
  };
  return { lines, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}

/** A shared store with Redis's semantics in memory, which a test can take down. */
function memoryStore(
  clock: () => number,
): SharedStore & { down: boolean; failNext: boolean; calls: number } {
  const buckets = new Map<string, BucketState>();
  const state = (t: Omit<SharedTake, 'amount'>) =>
    buckets.get(t.key) ?? fullBucket({ capacity: t.capacity, refillPerMs: t.refillPerMs }, clock());
  const store = {
    down: false,
    failNext: false,
    calls: 0,
    available: () => !store.down,
    async takeAll(takes: SharedTake[]) {
      store.calls += 1;
      if (store.down || store.failNext) {
        store.failNext = false;
        throw new Error('down');
      }
      const next: BucketState[] = [];
      for (const [i, t] of takes.entries()) {
        const r = take(
          { capacity: t.capacity, refillPerMs: t.refillPerMs },
          state(t),
          t.amount,
          clock(),
        );
        if (!r.ok)
          return {
            ok: false as const,
            index: i,
            retryAfterMs: r.retryAfterMs,
            level: r.state.level,
          };
        next.push(r.state);
      }
      takes.forEach((t, i) => buckets.set(t.key, next[i]!));
      return { ok: true as const, levels: next.map((s) => s.level), fullInMs: next.map(() => 0) };
    },
    async adjust(t: Omit<SharedTake, 'amount'>, delta: number) {
      if (store.down) throw new Error('down');
      const shape = { capacity: t.capacity, refillPerMs: t.refillPerMs };
      buckets.set(t.key, settle(shape, state(t), delta, 0, clock()));
    },
    async close() {},
  };
  return store;
}

const limit = (l: Partial<RateLimit> & { id: string }): RateLimit => ({ scope: 'pod', ...l });
const req = (over: Partial<LimitRequest> = {}): LimitRequest => ({
  provider: 'openai',
  model: 'gpt-4o',
  estimatedInputTokens: 100,
  maxOutputTokens: 100,
  ...over,
});

function setup(limits: RateLimit[], extra: Partial<Parameters<typeof createLimiters>[0]> = {}) {
  let now = 1_000_000;
  const log = recordingLog();
  const limiters = createLimiters({ log, clock: () => now, ...extra });
  limiters.apply(limits);
  return {
    limiters,
    log,
    advance: (ms: number) => (now += ms),
    now: () => now,
  };
}

async function admitted(p: Promise<Admitted | Refused>): Promise<Admitted> {
  const r = await p;
  if (!r.ok) throw new Error(`expected admission, got ${r.message}`);
  return r;
}

async function refused(p: Promise<Admitted | Refused>): Promise<Refused> {
  const r = await p;
  if (r.ok) throw new Error('expected a refusal');
  return r;
}

describe('limiters', () => {
  it('admits any request when no limit matches, with no rate headers', async () => {
    const { limiters } = setup([
      limit({ id: 'other', match: { provider: 'anthropic' }, requestsPerMinute: 1 }),
    ]);
    const a = await admitted(limiters.admit(req()));
    expect(a.limitIds).toEqual([]);
    expect(a.headers).toEqual({});
  });

  it('admits N requests per minute, then refuses with 429, the limit id and Retry-After', async () => {
    const { limiters, advance } = setup([limit({ id: 'rpm', requestsPerMinute: 3 })]);
    for (let i = 0; i < 3; i++) await admitted(limiters.admit(req()));
    const r = await refused(limiters.admit(req()));
    expect(r).toMatchObject({ status: 429, reason: 'rate', limitId: 'rpm', retryAfterSeconds: 20 });
    expect(r.headers).toMatchObject({
      'Retry-After': '20',
      'RateLimit-Limit': '3',
      'RateLimit-Remaining': '0',
    });
    expect(r.message).toContain('"rpm"');
    advance(20_000);
    await admitted(limiters.admit(req()));
  });

  it('sends the IETF headers of the tightest matching limit', async () => {
    const { limiters } = setup([
      limit({ id: 'rpm', requestsPerMinute: 100 }),
      limit({ id: 'tpm', tokensPerMinute: 1000 }),
    ]);
    const a = await admitted(
      limiters.admit(req({ estimatedInputTokens: 400, maxOutputTokens: 100 })),
    );
    expect(a.limitIds).toEqual(['rpm', 'tpm']);
    expect(a.headers).toEqual({
      'RateLimit-Limit': '1000',
      'RateLimit-Remaining': '500',
      'RateLimit-Reset': '30',
    });
  });

  it('refuses at once, in distinct words, a request whose max output alone exceeds the whole bucket', async () => {
    const { limiters } = setup([limit({ id: 'tpm', tokensPerMinute: 1000 })]);
    const r = await refused(
      limiters.admit(req({ estimatedInputTokens: 10, maxOutputTokens: 1200 })),
    );
    expect(r).toMatchObject({ status: 429, reason: 'never_fits', limitId: 'tpm' });
    expect(r.message).toMatch(/can never be admitted/);
    // nothing was taken
    const a = await admitted(
      limiters.admit(req({ estimatedInputTokens: 900, maxOutputTokens: 100 })),
    );
    expect(a.headers['RateLimit-Remaining']).toBe('0');
  });

  it('admits a prompt whose byte-bound estimate exceeds the bucket, reserving the whole bucket until it settles', async () => {
    const { limiters } = setup([limit({ id: 'tpm', tokensPerMinute: 1000 })]);
    const big = await admitted(
      limiters.admit(req({ estimatedInputTokens: 4000, maxOutputTokens: 100 })),
    );
    expect(big.headers['RateLimit-Remaining']).toBe('0');
    big.settle({ inputTokens: 300, outputTokens: 50 });
    big.release();
    const next = await admitted(
      limiters.admit(req({ estimatedInputTokens: 100, maxOutputTokens: 100 })),
    );
    expect(Number(next.headers['RateLimit-Remaining'])).toBeGreaterThan(400);
  });

  it('settles against real usage: refunds what was reserved but not used', async () => {
    const { limiters } = setup([limit({ id: 'tpm', tokensPerMinute: 1000 })]);
    const a = await admitted(
      limiters.admit(req({ estimatedInputTokens: 300, maxOutputTokens: 500 })),
    );
    a.settle({ inputTokens: 100, outputTokens: 50 });
    a.settle({ inputTokens: 0, outputTokens: 0 }); // once only
    const b = await admitted(limiters.admit(req({ estimatedInputTokens: 0, maxOutputTokens: 1 })));
    expect(b.headers['RateLimit-Remaining']).toBe('849');
  });

  it('charges usage beyond the reservation, so the next request waits for the debt', async () => {
    const { limiters } = setup([limit({ id: 'tpm', tokensPerMinute: 600 })]);
    const a = await admitted(
      limiters.admit(req({ estimatedInputTokens: 500, maxOutputTokens: 100 })),
    );
    a.settle({ inputTokens: 500, outputTokens: 160 });
    const r = await refused(limiters.admit(req({ estimatedInputTokens: 1, maxOutputTokens: 0 })));
    expect(r.retryAfterSeconds).toBe(7); // 60 tokens of debt + 1 at 10 tokens/s
  });

  it('requires every matching limit and rolls back earlier reservations when a later one refuses', async () => {
    const { limiters } = setup([
      limit({ id: 'tpm', tokensPerMinute: 1000 }),
      limit({ id: 'rpm-gpt', match: { model: 'gpt-*' }, requestsPerMinute: 1 }),
    ]);
    await admitted(limiters.admit(req({ estimatedInputTokens: 100, maxOutputTokens: 100 })));
    const r = await refused(
      limiters.admit(req({ estimatedInputTokens: 100, maxOutputTokens: 100 })),
    );
    expect(r.limitId).toBe('rpm-gpt');
    const other = await admitted(
      limiters.admit(req({ model: 'o3', estimatedInputTokens: 100, maxOutputTokens: 100 })),
    );
    expect(other.limitIds).toEqual(['tpm']);
    expect(other.headers['RateLimit-Remaining']).toBe('600'); // the refused request's 200 came back
  });

  it('matches limits by provider name and case-insensitive model glob', async () => {
    const { limiters } = setup([
      limit({ id: 'a', match: { provider: 'anthropic', model: 'claude-*' }, requestsPerMinute: 5 }),
    ]);
    expect(
      (await admitted(limiters.admit(req({ provider: 'anthropic', model: 'Claude-Sonnet-4' }))))
        .limitIds,
    ).toEqual(['a']);
    expect(
      (await admitted(limiters.admit(req({ provider: 'openai', model: 'claude-x' })))).limitIds,
    ).toEqual([]);
  });

  it('keeps bucket levels across a policy push that leaves a limit unchanged, and resets a changed one', async () => {
    const l = limit({ id: 'rpm', requestsPerMinute: 1, from: ['ns/a'] });
    const { limiters } = setup([l]);
    await admitted(limiters.admit(req()));
    limiters.apply([{ ...l, from: ['ns/b'] }]);
    await refused(limiters.admit(req()));
    limiters.apply([{ ...l, requestsPerMinute: 2 }]);
    await admitted(limiters.admit(req()));
  });
});

describe('concurrency', () => {
  it('sheds a request with 429 when the slots and the queue are full', async () => {
    const { limiters } = setup([limit({ id: 'conc', maxConcurrent: 1 })], { maxQueued: 0 });
    const a = await admitted(limiters.admit(req()));
    const r = await refused(limiters.admit(req()));
    expect(r).toMatchObject({ status: 429, reason: 'concurrency', limitId: 'conc' });
    a.release();
    a.release(); // idempotent: must not free a second slot
    const b = await admitted(limiters.admit(req()));
    await refused(limiters.admit(req()));
    b.release();
  });

  it('queues a request until a slot frees, within the wait bound', async () => {
    const { limiters } = setup([limit({ id: 'conc', maxConcurrent: 1 })], {
      maxQueued: 1,
      maxQueueWaitMs: 5_000,
    });
    const a = await admitted(limiters.admit(req()));
    const waiting = limiters.admit(req());
    await refused(limiters.admit(req())); // queue of one is full
    a.release();
    (await admitted(waiting)).release();
  });

  it('sheds a queued request whose wait runs out, and rolls back its rate reservations', async () => {
    const { limiters } = setup(
      [limit({ id: 'conc', maxConcurrent: 1 }), limit({ id: 'rpm', requestsPerMinute: 10 })],
      { maxQueued: 5, maxQueueWaitMs: 30 },
    );
    const a = await admitted(limiters.admit(req()));
    const r = await refused(limiters.admit(req()));
    expect(r).toMatchObject({ reason: 'concurrency', limitId: 'conc' });
    a.release();
    const b = await admitted(limiters.admit(req()));
    expect(b.headers['RateLimit-Remaining']).toBe('8');
    b.release();
  });

  it('answers 503 when the whole sidecar is over its in-flight cap', async () => {
    const { limiters } = setup([], { maxInFlight: 2 });
    const held = [await admitted(limiters.admit(req())), await admitted(limiters.admit(req()))];
    const r = await refused(limiters.admit(req()));
    expect(r).toMatchObject({ status: 503, reason: 'overloaded' });
    held[0]!.release();
    await admitted(limiters.admit(req()));
  });
});

describe('shared limits', () => {
  it('says at startup that shared limits are per pod in standalone mode, and applies the share', async () => {
    const { limiters, log } = setup([
      limit({ id: 'team', scope: 'shared', share: 0.5, requestsPerMinute: 4 }),
    ]);
    expect(log.lines).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        fields: expect.objectContaining({ limitIds: ['team'] }),
      }),
    );
    await admitted(limiters.admit(req()));
    await admitted(limiters.admit(req()));
    await refused(limiters.admit(req()));
  });

  it('checks shared buckets in the store with the whole limit', async () => {
    let now = 0;
    const store = memoryStore(() => now);
    const limiters = createLimiters({ log: recordingLog(), clock: () => now, sharedStore: store });
    limiters.apply([limit({ id: 'team', scope: 'shared', share: 0.25, requestsPerMinute: 4 })]);
    for (let i = 0; i < 4; i++) await admitted(limiters.admit(req()));
    await refused(limiters.admit(req()));
    expect(store.calls).toBe(5);
    now += 60_000;
    await admitted(limiters.admit(req()));
  });

  it('falls back to the pod share while the store is down, and back to the store when it recovers', async () => {
    const store = memoryStore(() => 0);
    const limiters = createLimiters({ log: recordingLog(), clock: () => 0, sharedStore: store });
    limiters.apply([limit({ id: 'team', scope: 'shared', share: 0.25, requestsPerMinute: 8 })]);
    store.down = true;
    await admitted(limiters.admit(req()));
    await admitted(limiters.admit(req()));
    await refused(limiters.admit(req())); // the pod's share: 2
    store.down = false;
    await admitted(limiters.admit(req())); // the store still has 8
  });

  it('falls back when the store fails during the check itself', async () => {
    const store = memoryStore(() => 0);
    const limiters = createLimiters({ log: recordingLog(), clock: () => 0, sharedStore: store });
    limiters.apply([limit({ id: 'team', scope: 'shared', share: 0.5, requestsPerMinute: 2 })]);
    store.failNext = true;
    const a = await admitted(limiters.admit(req()));
    expect(a.limitIds).toEqual(['team']);
  });

  it('fails closed with 503 when configured to', async () => {
    const store = memoryStore(() => 0);
    const limiters = createLimiters({
      log: recordingLog(),
      clock: () => 0,
      sharedStore: store,
      onRedisDown: 'closed',
    });
    limiters.apply([
      limit({ id: 'team', scope: 'shared', requestsPerMinute: 8 }),
      limit({ id: 'pod', requestsPerMinute: 8 }),
    ]);
    store.down = true;
    expect(await refused(limiters.admit(req()))).toMatchObject({
      status: 503,
      reason: 'store_unavailable',
      limitId: 'team',
    });
    store.down = false;
    store.failNext = true;
    expect(await refused(limiters.admit(req()))).toMatchObject({
      status: 503,
      reason: 'store_unavailable',
    });
    // the pod limit's reservation was rolled back both times
    const a = await admitted(limiters.admit(req()));
    expect(a.limitIds).toEqual(['team', 'pod']);
  });
});

describe('limiter invariants', () => {
  it('admits in total at most tokensPerMinute plus refill plus one in-flight overshoot', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5_000 }),
        fc.array(
          fc.record({
            gapMs: fc.integer({ min: 0, max: 30_000 }),
            input: fc.integer({ min: 0, max: 2_000 }),
            maxOutput: fc.integer({ min: 0, max: 2_000 }),
            usedInput: fc.integer({ min: 0, max: 2_500 }),
            usedOutput: fc.integer({ min: 0, max: 2_000 }),
          }),
          { maxLength: 60 },
        ),
        async (tpm, requests) => {
          let now = 0;
          const limiters = createLimiters({ log: recordingLog(), clock: () => now });
          limiters.apply([limit({ id: 'tpm', tokensPerMinute: tpm })]);
          let used = 0;
          let lastOvershoot = 0;
          for (const r of requests) {
            now += r.gapMs;
            const a = await limiters.admit(
              req({ estimatedInputTokens: r.input, maxOutputTokens: r.maxOutput }),
            );
            if (!a.ok) continue;
            const spent = r.usedInput + r.usedOutput;
            a.settle({ inputTokens: r.usedInput, outputTokens: r.usedOutput });
            a.release();
            used += spent;
            // What a request reserves: its estimate, at most a whole bucket (see neverFits).
            lastOvershoot = Math.max(0, spent - Math.max(1, Math.min(r.input + r.maxOutput, tpm)));
          }
          expect(used).toBeLessThanOrEqual(tpm + (tpm / 60_000) * now + lastOvershoot + 1e-6);
        },
      ),
      { numRuns: 100 },
    );
  });
});
