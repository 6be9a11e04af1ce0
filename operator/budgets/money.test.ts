import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { formatMicros, parseMicros } from './money.js';

describe('money', () => {
  it('reads the decimal dollars the API accepts', () => {
    expect(parseMicros('250.00')).toBe(250_000_000);
    expect(parseMicros('0.000001')).toBe(1);
    expect(parseMicros('12.5')).toBe(12_500_000);
    expect(parseMicros('1e3')).toBeUndefined();
    expect(parseMicros('-1')).toBeUndefined();
    expect(parseMicros(undefined)).toBeUndefined();
  });

  it('writes dollars with at least two decimals and no more than six', () => {
    expect(formatMicros(1_500_000)).toBe('1.50');
    expect(formatMicros(1_234_567)).toBe('1.234567');
    expect(formatMicros(0)).toBe('0.00');
    expect(formatMicros(10)).toBe('0.00001');
  });

  it('round-trips every amount the API can hold', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 999_999_999_999_999 }), (micros) => {
        expect(parseMicros(formatMicros(micros))).toBe(micros);
      }),
    );
  });
});
