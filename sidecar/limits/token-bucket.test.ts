import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { fullBucket, msUntilFull, perMinute, refill, settle, take } from './token-bucket.js';

describe('token bucket', () => {
  const shape = perMinute(600); // 10 per second

  it('starts full and refills at limit per minute', () => {
    let state = fullBucket(shape, 0);
    const first = take(shape, state, 600, 0);
    expect(first.ok).toBe(true);
    state = first.state;
    expect(refill(shape, state, 1000).level).toBeCloseTo(10);
    expect(refill(shape, state, 120_000).level).toBe(600);
  });

  it('says how long until a refused amount fits', () => {
    const empty = { level: 0, updatedAt: 0 };
    const result = take(shape, empty, 25, 0);
    expect(result).toMatchObject({ ok: false, retryAfterMs: 2500, neverFits: false });
    expect(take(shape, empty, 25, 2500).ok).toBe(true);
  });

  it('marks an amount larger than the whole bucket as never fitting', () => {
    const result = take(shape, fullBucket(shape, 0), 601, 0);
    expect(result).toMatchObject({ ok: false, neverFits: true });
  });

  it('refunds an over-reservation but never above capacity', () => {
    const taken = take(shape, fullBucket(shape, 0), 100, 0);
    const settled = settle(shape, taken.state, 100, 10, 0);
    expect(settled.level).toBe(590);
    expect(settle(shape, fullBucket(shape, 0), 100, 0, 0).level).toBe(600);
  });

  it('charges an under-reservation as debt that later requests wait out', () => {
    const taken = take(shape, { level: 50, updatedAt: 0 }, 50, 0);
    const settled = settle(shape, taken.state, 50, 80, 0);
    expect(settled.level).toBe(-30);
    expect(take(shape, settled, 1, 0)).toMatchObject({ ok: false, retryAfterMs: 3100 });
  });

  it('refills nothing when the clock steps back', () => {
    const state = { level: 5, updatedAt: 10_000 };
    expect(refill(shape, state, 5_000)).toEqual(state);
  });

  it('reports the time until full for RateLimit-Reset', () => {
    expect(msUntilFull(shape, { level: 590, updatedAt: 0 })).toBe(1000);
    expect(msUntilFull(shape, fullBucket(shape, 0))).toBe(0);
  });
});

const request = fc.record({
  gapMs: fc.integer({ min: 0, max: 90_000 }),
  reserved: fc.integer({ min: 1, max: 3_000 }),
  used: fc.integer({ min: 0, max: 4_000 }),
});

describe('token bucket invariants', () => {
  it('admits in total at most the limit plus refill plus one in-flight overshoot', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5_000 }),
        fc.array(request, { maxLength: 200 }),
        (capacity, requests) => {
          const shape = perMinute(capacity);
          let state = fullBucket(shape, 0);
          let now = 0;
          let used = 0;
          let lastOvershoot = 0;
          for (const r of requests) {
            now += r.gapMs;
            const taken = take(shape, state, r.reserved, now);
            state = taken.state;
            if (!taken.ok) continue;
            // one request in flight at a time: it settles before the next arrives
            state = settle(shape, state, r.reserved, r.used, now);
            used += r.used;
            lastOvershoot = Math.max(0, r.used - r.reserved);
          }
          const allowed = capacity + shape.refillPerMs * now + lastOvershoot;
          expect(used).toBeLessThanOrEqual(allowed + 1e-6);
        },
      ),
    );
  });

  it('keeps the level within [-overshoot, capacity] through any take and settle sequence', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5_000 }),
        fc.array(request, { maxLength: 200 }),
        (capacity, requests) => {
          const shape = perMinute(capacity);
          let state = fullBucket(shape, 0);
          let now = 0;
          for (const r of requests) {
            now += r.gapMs;
            const taken = take(shape, state, r.reserved, now);
            state = taken.state;
            expect(state.level).toBeLessThanOrEqual(capacity);
            if (!taken.ok) continue;
            expect(state.level).toBeGreaterThanOrEqual(0);
            state = settle(shape, state, r.reserved, r.used, now);
            expect(state.level).toBeLessThanOrEqual(capacity);
            // a refund never pushes it below zero; only a charge beyond the reservation can
            expect(state.level).toBeGreaterThanOrEqual(Math.min(0, r.reserved - r.used) - 1e-9);
          }
        },
      ),
    );
  });
});
