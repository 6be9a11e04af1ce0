// When a budget's current period began and ends, in its own time zone: pure, clock passed in.
export type Period = 'daily' | 'weekly' | 'monthly';

export interface PeriodBounds {
  start: number;
  end: number;
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** Throws RangeError for a zone the runtime does not know; callers report it on the budget. */
function formatFor(timeZone: string): Intl.DateTimeFormat {
  let format = formats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formats.set(timeZone, format);
  }
  return format;
}

export function isKnownTimeZone(timeZone: string): boolean {
  try {
    formatFor(timeZone);
    return true;
  } catch {
    return false;
  }
}

interface LocalDate {
  year: number;
  /** 1-12 */
  month: number;
  day: number;
}

function localParts(instant: number, timeZone: string): LocalDate & { utcOfLocal: number } {
  const parts: Record<string, number> = {};
  for (const part of formatFor(timeZone).formatToParts(instant)) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  const { year = 1970, month = 1, day = 1, hour = 0, minute = 0, second = 0 } = parts;
  return {
    year,
    month,
    day,
    utcOfLocal: Date.UTC(year, month - 1, day, hour, minute, second),
  };
}

/** The offset of local time from UTC at an instant, in ms. */
function offsetAt(instant: number, timeZone: string): number {
  const wholeSecond = Math.floor(instant / 1000) * 1000;
  return localParts(wholeSecond, timeZone).utcOfLocal - wholeSecond;
}

/**
 * The instant a calendar day starts locally: the one that reads 00:00 on the wall clock, or,
 * where midnight was skipped by a clock change, the instant the clock jumped past it.
 */
function startOfLocalDay(date: LocalDate, timeZone: string): number {
  const naive = Date.UTC(date.year, date.month - 1, date.day);
  const first = naive - offsetAt(naive, timeZone);
  const second = naive - offsetAt(first, timeZone);
  const readsMidnight = (instant: number) => localParts(instant, timeZone).utcOfLocal === naive;
  const candidates = [first, second].filter(readsMidnight);
  if (candidates.length > 0) return Math.min(...candidates);
  return Math.max(first, second);
}

function addDays(date: LocalDate, days: number): LocalDate {
  const d = new Date(Date.UTC(date.year, date.month - 1, date.day + days));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}

/** Days start at local midnight, weeks on Monday (ISO 8601), months on the 1st. */
export function periodBounds(now: number, period: Period, timeZone: string): PeriodBounds {
  const today = localParts(now, timeZone);
  let first: LocalDate;
  let next: LocalDate;
  if (period === 'daily') {
    first = today;
    next = addDays(today, 1);
  } else if (period === 'weekly') {
    const weekday =
      (new Date(Date.UTC(today.year, today.month - 1, today.day)).getUTCDay() + 6) % 7;
    first = addDays(today, -weekday);
    next = addDays(first, 7);
  } else {
    first = { year: today.year, month: today.month, day: 1 };
    next =
      today.month === 12
        ? { year: today.year + 1, month: 1, day: 1 }
        : { year: today.year, month: today.month + 1, day: 1 };
  }
  return { start: startOfLocalDay(first, timeZone), end: startOfLocalDay(next, timeZone) };
}
