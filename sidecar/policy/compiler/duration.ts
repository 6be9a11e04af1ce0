// Go-style durations ("90s", "5m", "1h30m") as the CRD states refresh intervals.

const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };
const PART = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/gy;

/** Whole seconds, rounded up so a refresh is never more frequent than asked. */
export function durationSeconds(text: string): number {
  let total = 0;
  let consumed = 0;
  for (const match of text.matchAll(PART)) {
    total += Number(match[1]) * (UNIT_SECONDS[match[2] ?? ''] ?? Number.NaN);
    consumed += match[0].length;
  }
  if (consumed !== text.length || text.length === 0 || !Number.isFinite(total)) {
    throw new RangeError(`not a duration: ${JSON.stringify(text)}`);
  }
  return Math.ceil(total);
}
