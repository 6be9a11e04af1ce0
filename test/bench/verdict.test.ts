import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { roundsNeeded, signTestTail, verdict } from './verdict.js';

describe('bench verdicts', () => {
  it('computes the binomial tail exactly', () => {
    expect(signTestTail(5, 5)).toBe(1 / 32);
    expect(signTestTail(5, 4)).toBe(6 / 32);
    expect(signTestTail(9, 8)).toBe(10 / 512);
    expect(signTestTail(4, 0)).toBe(1);
  });

  it('needs all of 5 rounds, 8 of 9 and 9 of 10', () => {
    expect([5, 9, 10].map(roundsNeeded)).toEqual([5, 8, 9]);
    // Four rounds can never reach 5%: no verdict at all.
    expect(roundsNeeded(4)).toBe(Infinity);
  });

  it('calls a target met or missed only on enough agreeing rounds', () => {
    const atLeast75 = (v: number) => v >= 75;
    expect(verdict([80, 90, 76, 100, 85], atLeast75)).toBe('met');
    expect(verdict([80, 90, 74, 100, 85], atLeast75)).toBe('noise');
    expect(verdict([60, 70, 74, 50, 65], atLeast75)).toBe('missed');
    expect(verdict([80, 90, 55, 100, 85, 77, 92, 81, 88], atLeast75)).toBe('met');
    expect(verdict([80, 90, 55, 100, 85, 70, 92, 81, 88], atLeast75)).toBe('noise');
    expect(verdict([], atLeast75)).toBe('noise');
  });

  it('never calls both, and swaps met and missed when the test is negated (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 15 }), (values) => {
        const ok = (v: number) => v >= 75;
        const flipped = verdict(values, (v) => !ok(v));
        const expected = { met: 'missed', missed: 'met', noise: 'noise' } as const;
        expect(flipped).toBe(expected[verdict(values, ok)]);
      }),
    );
  });
});
