import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { joinSlices, sliceOrder } from './slices.js';
import type { ThroughputResult } from './http-load.js';

const slice = (requests: number, seconds: number, p50Ms = 1, p99Ms = 2): ThroughputResult => ({
  rps: requests / seconds,
  requests,
  seconds,
  p50Ms,
  p99Ms,
  errors: 0,
  non2xx: 0,
});

describe('bench slices', () => {
  it('mirrors the order so neighbours stay neighbours', () => {
    expect(sliceOrder(['a', 'b', 'c'], 4).join('')).toBe('abccbaabccba');
    expect(sliceOrder(['a', 'b'], 1)).toEqual(['a', 'b']);
  });

  it('gives every target the same number of slices, each pair equally often first (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 9 }), fc.integer({ min: 1, max: 4 }), (n, half) => {
        const targets = Array.from({ length: n }, (_, i) => i);
        const order = sliceOrder(targets, 2 * half);
        for (const t of targets) expect(order.filter((x) => x === t)).toHaveLength(2 * half);
        // Mean position is the same for every target: a linear drift in speed cancels.
        const meanPosition = (t: number) =>
          order.reduce((sum, x, i) => (x === t ? sum + i : sum), 0) / (2 * half);
        for (const t of targets) expect(meanPosition(t)).toBe(meanPosition(0));
      }),
    );
  });

  it('takes rates from the totals, not the mean of the slices', () => {
    const joined = joinSlices([slice(1000, 1), slice(1500, 0.5, 3, 9), slice(600, 1, 2, 4)]);
    expect(joined.requests).toBe(3100);
    expect(joined.seconds).toBe(2.5);
    expect(joined.rps).toBe(1240);
    expect([joined.p50Ms, joined.p99Ms]).toEqual([2, 4]);
    expect(() => joinSlices([])).toThrow('no slices');
  });
});
