import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { isKnownTimeZone, periodBounds, type Period } from './period.js';

const HOUR = 3_600_000;
const zones = [
  'UTC',
  'Europe/Paris',
  'America/New_York',
  'America/Santiago',
  'Asia/Kolkata',
  'Pacific/Chatham',
  'Australia/Lord_Howe',
  'Asia/Tehran',
  'America/Havana',
  'Asia/Beirut',
  'America/Sao_Paulo',
];
const periods: Period[] = ['daily', 'weekly', 'monthly'];

describe('periodBounds', () => {
  it('starts a UTC day at midnight and a week on Monday', () => {
    const wednesdayNoon = Date.UTC(2026, 10, 25, 12);
    expect(periodBounds(wednesdayNoon, 'daily', 'UTC')).toEqual({
      start: Date.UTC(2026, 10, 25),
      end: Date.UTC(2026, 10, 26),
    });
    expect(periodBounds(wednesdayNoon, 'weekly', 'UTC')).toEqual({
      start: Date.UTC(2026, 10, 23),
      end: Date.UTC(2026, 10, 30),
    });
    expect(periodBounds(wednesdayNoon, 'monthly', 'UTC')).toEqual({
      start: Date.UTC(2026, 10, 1),
      end: Date.UTC(2026, 11, 1),
    });
  });

  it('rolls a December month into January', () => {
    expect(periodBounds(Date.UTC(2026, 11, 31, 23, 59), 'monthly', 'UTC')).toEqual({
      start: Date.UTC(2026, 11, 1),
      end: Date.UTC(2027, 0, 1),
    });
  });

  it('starts a Paris day at local midnight, across the spring clock change', () => {
    // 2026-03-29: clocks go from 02:00 to 03:00; the day is 23 hours long.
    const bounds = periodBounds(Date.UTC(2026, 2, 29, 12), 'daily', 'Europe/Paris');
    expect(bounds.start).toBe(Date.UTC(2026, 2, 28, 23));
    expect(bounds.end).toBe(Date.UTC(2026, 2, 29, 22));
  });

  it('starts a Chatham month at local midnight on the day its clocks change', () => {
    // 2000-10-01 in Pacific/Chatham: +12:45 until 02:45 local, then +13:45.
    const bounds = periodBounds(Date.UTC(2000, 7, 31, 11, 15), 'monthly', 'Pacific/Chatham');
    expect(bounds.start).toBe(Date.UTC(2000, 7, 31, 11, 15));
    expect(bounds.end).toBe(Date.UTC(2000, 8, 30, 11, 15));
  });

  it('tells a real zone from a typo', () => {
    expect(isKnownTimeZone('Europe/Paris')).toBe(true);
    expect(isKnownTimeZone('Europe/Pariss')).toBe(false);
  });

  it('always contains now, and its length is a plausible day, week or month', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2060, 0, 1) }),
        fc.constantFrom(...zones),
        fc.constantFrom(...periods),
        (now, zone, period) => {
          const { start, end } = periodBounds(now, period, zone);
          expect(start).toBeLessThanOrEqual(now);
          expect(end).toBeGreaterThan(now);
          const length = end - start;
          const [min, max] =
            period === 'daily'
              ? [22, 26]
              : period === 'weekly'
                ? [7 * 24 - 2, 7 * 24 + 2]
                : [27 * 24, 32 * 24];
          expect(length).toBeGreaterThanOrEqual(min * HOUR);
          expect(length).toBeLessThanOrEqual(max * HOUR);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('gives the next period as the one starting where this one ends', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2060, 0, 1) }),
        fc.constantFrom(...zones),
        fc.constantFrom(...periods),
        (now, zone, period) => {
          const current = periodBounds(now, period, zone);
          expect(periodBounds(current.end, period, zone).start).toBe(current.end);
          expect(periodBounds(current.end - 1, period, zone).start).toBe(current.start);
        },
      ),
      { numRuns: 5000 },
    );
  });
});
