// A 16-connection window cut into slices: targets take turns in mirrored order, so the targets a
// report compares run seconds apart and a drift in the host's speed hits both alike.
import type { ThroughputResult } from './http-load.js';

/** Every target `slices` times: forward, then backward, and so on (A B C C B A A B C …). */
export function sliceOrder<T>(targets: readonly T[], slices: number): T[] {
  return Array.from({ length: slices }, (_, i) =>
    i % 2 === 0 ? [...targets] : [...targets].reverse(),
  ).flat();
}

/** One window's figures from its slices: rates from the totals, latencies from the median slice. */
export function joinSlices(parts: readonly ThroughputResult[]): ThroughputResult {
  if (parts.length === 0) throw new Error('no slices to join');
  const total = (key: 'requests' | 'seconds' | 'errors' | 'non2xx') =>
    parts.reduce((sum, p) => sum + p[key], 0);
  const middle = (key: 'p50Ms' | 'p99Ms') =>
    ([...parts].sort((a, b) => a[key] - b[key])[Math.floor(parts.length / 2)] as ThroughputResult)[
      key
    ];
  return {
    rps: total('requests') / total('seconds'),
    requests: total('requests'),
    seconds: total('seconds'),
    p50Ms: middle('p50Ms'),
    p99Ms: middle('p99Ms'),
    errors: total('errors'),
    non2xx: total('non2xx'),
  };
}
