// US dollars as the API writes them ("12.5") and as the ledger counts them (integer micro-dollars).
const DECIMAL_USD = /^(\d{1,9})(?:\.(\d{1,6}))?$/;

/** Parses a DecimalUsd string; undefined when it is not one. */
export function parseMicros(text: string | undefined): number | undefined {
  const match = text === undefined ? null : DECIMAL_USD.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * 1_000_000 + Number((match[2] ?? '').padEnd(6, '0'));
}

/** Formats micro-dollars as DecimalUsd with at least two decimals: 1500000 → "1.50". */
export function formatMicros(micros: number): string {
  const whole = Math.max(0, Math.round(micros));
  const dollars = Math.floor(whole / 1_000_000);
  const fraction = String(whole % 1_000_000)
    .padStart(6, '0')
    .replace(/0{1,4}$/, '');
  return `${dollars}.${fraction.padEnd(2, '0')}`;
}
