import { describe, expect, it } from '@jest/globals';
import type { HistogramMetricData } from '@opentelemetry/sdk-metrics';
import { MAX_SERIES } from './counters.js';
import { bucketIndex, createHistogramTable } from './histograms.js';

async function points(
  record: (h: ReturnType<ReturnType<typeof createHistogramTable>['histogram']>) => void,
) {
  const table = createHistogramTable({ name: 't' });
  const h = table.histogram('h', { unit: 's', description: 'd', boundaries: [1, 2, 4] });
  record(h);
  const { resourceMetrics } = await table.producer.collect();
  const metric = resourceMetrics.scopeMetrics[0]!.metrics[0] as HistogramMetricData | undefined;
  return metric?.dataPoints ?? [];
}

describe('histogram table', () => {
  it('uses upper-inclusive explicit buckets, as the SDK does', () => {
    expect([0, 1, 1.5, 2, 4, 4.01, 100].map((v) => bucketIndex([1, 2, 4], v))).toEqual([
      0, 0, 1, 1, 2, 3, 3,
    ]);
  });

  it('keeps count, sum, min, max and bucket counts per attribute set', async () => {
    const [a, b] = await points((h) => {
      h.record(0.5, { k: 'a' });
      h.record(3, { k: 'a' });
      h.record(10, { k: 'b' });
      h.record(-1, { k: 'a' });
      h.record(Number.NaN, { k: 'a' });
    });
    expect(a).toMatchObject({
      attributes: { k: 'a' },
      value: {
        count: 2,
        sum: 3.5,
        min: 0.5,
        max: 3,
        buckets: { boundaries: [1, 2, 4], counts: [1, 0, 1, 0] },
      },
    });
    expect(b!.value.buckets.counts).toEqual([0, 0, 0, 1]);
  });

  it('reports nothing before the first record and folds excess series into one', async () => {
    expect(await points(() => undefined)).toEqual([]);
    const many = await points((h) => {
      for (let i = 0; i < MAX_SERIES + 5; i++) h.record(1, { i });
    });
    expect(many).toHaveLength(MAX_SERIES + 1);
    expect(many.at(-1)).toMatchObject({
      attributes: { 'otel.metric.overflow': true },
      value: { count: 5 },
    });
  });
});
