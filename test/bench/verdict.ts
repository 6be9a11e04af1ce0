// When a benchmark round-by-round comparison may call a target met or missed. The machine this
// runs on has bursts of noise that slow one round in several; a verdict needs a majority of rounds
// large enough that chance alone would give it less than 5% of the time (a one-sided sign test
// on the median): all 5 of 5 rounds, 8 of 9, 9 of 10.

export type Verdict = 'met' | 'missed' | 'noise';

/** P(X ≥ k) for X ~ Binomial(n, 1/2): the chance of k or more rounds on one side by luck. */
export function signTestTail(n: number, k: number): number {
  let sum = 0;
  let choose = 1; // C(n, 0)
  for (let i = 0; i <= n; i++) {
    if (i >= k) sum += choose;
    choose = (choose * (n - i)) / (i + 1);
  }
  return sum / 2 ** n;
}

export const SIGNIFICANCE = 0.05;

export function verdict(values: readonly number[], ok: (value: number) => boolean): Verdict {
  const n = values.length;
  if (n === 0) return 'noise';
  const passed = values.filter(ok).length;
  if (signTestTail(n, passed) < SIGNIFICANCE) return 'met';
  if (signTestTail(n, n - passed) < SIGNIFICANCE) return 'missed';
  return 'noise';
}

/** Rounds that must agree for a verdict, for the report's wording. */
export function roundsNeeded(n: number): number {
  for (let k = 0; k <= n; k++) if (signTestTail(n, k) < SIGNIFICANCE) return k;
  return Infinity;
}
