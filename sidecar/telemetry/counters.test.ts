import { describe, expect, it } from '@jest/globals';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { createSummedCounter, MAX_SERIES } from './counters.js';

async function collect(add: (c: ReturnType<typeof createSummedCounter>) => void) {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ readers: [reader] });
  const counter = createSummedCounter(provider.getMeter('t'), 'c', {
    unit: '{x}',
    description: 'd',
  });
  add(counter);
  await reader.forceFlush();
  const points = exporter.getMetrics()[0]!.scopeMetrics[0]!.metrics[0]!.dataPoints;
  await provider.shutdown();
  return points.map((p) => ({ attributes: p.attributes, value: p.value }));
}

describe('createSummedCounter', () => {
  it('sums per attribute set and reports each set once', async () => {
    const points = await collect((c) => {
      c.add(1, { a: 'x', b: 1 });
      c.add(2, { a: 'x', b: 1 });
      c.add(5, { a: 'y', b: 1 });
      c.add(0, { a: 'z' });
      c.add(-3, { a: 'x', b: 1 });
    });
    expect(points).toEqual([
      { attributes: { a: 'x', b: 1 }, value: 3 },
      { attributes: { a: 'y', b: 1 }, value: 5 },
    ]);
  });

  it('folds attribute sets beyond the series limit into one overflow series', async () => {
    const points = await collect((c) => {
      for (let i = 0; i < MAX_SERIES + 10; i++) c.add(1, { i });
    });
    expect(points).toHaveLength(MAX_SERIES + 1);
    expect(points.at(-1)).toEqual({ attributes: { 'otel.metric.overflow': true }, value: 10 });
  });
});
