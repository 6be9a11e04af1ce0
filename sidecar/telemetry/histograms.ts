// Histograms aggregated here and handed to the metric readers as a MetricProducer. The metrics
// SDK hashes every attribute set on every record; the per-request histograms (duration, tokens,
// time to first chunk) were most of the telemetry cost, and this table costs a map lookup.
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import { emptyResource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type HistogramMetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import { MAX_SERIES, attributeKey } from './counters.js';

export interface SummedHistogram {
  /** `key` is attributeKey(attributes), when the caller has it already. */
  record(value: number, attributes: Attributes, key?: string): void;
}

interface Row {
  attributes: Attributes;
  start: HrTime;
  counts: number[];
  sum: number;
  count: number;
  min: number;
  max: number;
}

interface Definition {
  name: string;
  unit: string;
  description: string;
  boundaries: readonly number[];
  rows: Map<string, Row>;
}

const OVERFLOW_KEY = '\u0000overflow';
const OVERFLOW: Attributes = { 'otel.metric.overflow': true };

/** Index of the explicit bucket holding `value`: buckets are (b[i-1], b[i]], then (b[last], +inf). */
export function bucketIndex(boundaries: readonly number[], value: number): number {
  let i = 0;
  while (i < boundaries.length && value > boundaries[i]!) i++;
  return i;
}

export function createHistogramTable(scope: { name: string; version?: string }): {
  histogram(
    name: string,
    options: { unit: string; description: string; boundaries: readonly number[] },
  ): SummedHistogram;
  producer: MetricProducer;
} {
  const definitions: Definition[] = [];

  function histogram(
    name: string,
    options: { unit: string; description: string; boundaries: readonly number[] },
  ): SummedHistogram {
    const definition: Definition = { name, ...options, rows: new Map() };
    definitions.push(definition);
    return {
      record(value, attributes, knownKey) {
        if (!Number.isFinite(value) || value < 0) return;
        let key = knownKey ?? attributeKey(attributes);
        let row = definition.rows.get(key);
        if (row === undefined) {
          if (definition.rows.size >= MAX_SERIES) key = OVERFLOW_KEY;
          row = definition.rows.get(key);
          if (row === undefined) {
            row = {
              attributes: key === OVERFLOW_KEY ? OVERFLOW : attributes,
              start: hrTime(),
              counts: new Array<number>(definition.boundaries.length + 1).fill(0),
              sum: 0,
              count: 0,
              min: Infinity,
              max: -Infinity,
            };
            definition.rows.set(key, row);
          }
        }
        row.counts[bucketIndex(definition.boundaries, value)]!++;
        row.sum += value;
        row.count++;
        if (value < row.min) row.min = value;
        if (value > row.max) row.max = value;
      },
    };
  }

  const producer: MetricProducer = {
    collect() {
      const now = hrTime();
      const metrics: HistogramMetricData[] = definitions
        .filter((d) => d.rows.size > 0)
        .map((d) => ({
          descriptor: {
            name: d.name,
            description: d.description,
            unit: d.unit,
            valueType: ValueType.DOUBLE,
          },
          aggregationTemporality: AggregationTemporality.CUMULATIVE,
          dataPointType: DataPointType.HISTOGRAM,
          dataPoints: [...d.rows.values()].map((row) => ({
            startTime: row.start,
            endTime: now,
            attributes: row.attributes,
            value: {
              buckets: { boundaries: [...d.boundaries], counts: [...row.counts] },
              sum: row.sum,
              count: row.count,
              min: row.min,
              max: row.max,
            },
          })),
        }));
      return Promise.resolve({
        // The readers keep the SDK's resource and ignore this one.
        resourceMetrics: { resource: emptyResource(), scopeMetrics: [{ scope, metrics }] },
        errors: [],
      });
    },
  };

  return { histogram, producer };
}
