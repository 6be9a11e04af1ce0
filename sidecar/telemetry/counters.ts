// Monotonic counters summed here and reported when metrics are collected. The metrics SDK hashes
// every attribute set on every synchronous record, which dominated the per-request cost; an
// observable counter over this table costs one map lookup per request instead.
import type { Attributes, Meter } from '@opentelemetry/api';

/**
 * Distinct attribute sets kept per counter (under the SDK's own limit of 2000); beyond it, sums go
 * to one overflow series.
 */
export const MAX_SERIES = 1000;
const OVERFLOW: Attributes = { 'otel.metric.overflow': true };

/** A key for an attribute set; callers build their sets in a fixed order, so no sorting. */
export function attributeKey(attributes: Attributes): string {
  let key = '';
  for (const k in attributes) key += `${k}\u0001${String(attributes[k])}\u0002`;
  return key;
}

export interface SummedCounter {
  /** `key` is attributeKey(attributes), when the caller has it already. */
  add(value: number, attributes: Attributes, key?: string): void;
}

export function createSummedCounter(
  meter: Meter,
  name: string,
  options: { unit: string; description: string },
): SummedCounter {
  const rows = new Map<string, { attributes: Attributes; value: number }>();
  meter.createObservableCounter(name, options).addCallback((result) => {
    for (const row of rows.values()) result.observe(row.value, row.attributes);
  });
  return {
    add(value, attributes, knownKey) {
      if (!(value > 0) || !Number.isFinite(value)) return;
      let key = knownKey ?? attributeKey(attributes);
      let row = rows.get(key);
      if (row === undefined) {
        if (rows.size >= MAX_SERIES) {
          key = '\u0000overflow';
          row = rows.get(key);
        }
        if (row === undefined) {
          row = { attributes: key === '\u0000overflow' ? OVERFLOW : attributes, value: 0 };
          rows.set(key, row);
        }
      }
      row.value += value;
    },
  };
}
