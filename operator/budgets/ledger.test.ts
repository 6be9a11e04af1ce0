import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  applyReports,
  budgetState,
  type BudgetTerms,
  type Ledger,
  type SpendReport,
} from './ledger.js';

const NOW = Date.UTC(2026, 10, 25, 12);
const terms: BudgetTerms = {
  limitMicros: 10_000_000,
  period: 'daily',
  timeZone: 'UTC',
  thresholds: [50, 80, 100],
  action: 'block',
};

function report(uid: string, seq: number, spentMicros: number, want = true): SpendReport {
  return { pod: `pod-${uid}`, uid, epoch: 'e1', seq, spentMicros, want };
}

describe('applyReports', () => {
  it('starts a period, leases a slice of the limit and counts spend against it', () => {
    const first = applyReports(undefined, terms, [report('a', 1, 0)], NOW);
    expect(first.ledger.periodStart).toBe(Date.UTC(2026, 10, 25));
    expect(first.grants[0]).toEqual({
      amountMicros: 200_000,
      expiresAt: NOW + 120_000,
      exhausted: false,
    });
    const second = applyReports(first.ledger, terms, [report('a', 2, 150_000)], NOW + 1000);
    expect(second.ledger.spentMicros).toBe(150_000);
    // Topped up again to the slice after the spend is counted.
    expect(second.grants[0]?.amountMicros).toBe(200_000);
  });

  it('counts a replayed report once', () => {
    const first = applyReports(undefined, terms, [report('a', 1, 5000)], NOW);
    const again = applyReports(first.ledger, terms, [report('a', 1, 5000)], NOW + 10);
    expect(again.ledger.spentMicros).toBe(5000);
    expect(again.replays).toBe(1);
  });

  it('takes a restarted sidecar (new epoch) for a new reporter, not a replay', () => {
    const first = applyReports(undefined, terms, [report('a', 7, 5000)], NOW);
    const restarted = applyReports(
      first.ledger,
      terms,
      [{ ...report('a', 1, 3000), epoch: 'e2' }],
      NOW + 10,
    );
    expect(restarted.ledger.spentMicros).toBe(8000);
  });

  it('leases nothing once the limit is spent, and says so', () => {
    const spent = applyReports(undefined, terms, [report('a', 1, 10_000_000)], NOW);
    expect(spent.exhaustedNow).toBe(true);
    expect(spent.grants[0]).toMatchObject({ amountMicros: 0, exhausted: true });
    expect(budgetState(spent.ledger, terms)).toBe('Exhausted');
    expect(spent.crossed).toEqual([50, 80, 100]);
  });

  it('announces each threshold once per period', () => {
    const half = applyReports(undefined, terms, [report('a', 1, 5_000_000, false)], NOW);
    expect(half.crossed).toEqual([50]);
    const more = applyReports(half.ledger, terms, [report('a', 2, 100_000, false)], NOW + 1);
    expect(more.crossed).toEqual([]);
    expect(budgetState(more.ledger, terms)).toBe('Warning');
    const tomorrow = applyReports(
      more.ledger,
      terms,
      [report('a', 3, 5_000_000, false)],
      NOW + 86_400_000,
    );
    expect(tomorrow.periodStarted).toBe(true);
    expect(tomorrow.ledger.spentMicros).toBe(5_000_000);
    expect(tomorrow.crossed).toEqual([50]);
  });

  it('does not roll a period back when a replica clock lags', () => {
    const today = applyReports(undefined, terms, [report('a', 1, 1000, false)], NOW + 86_400_000);
    const lagging = applyReports(today.ledger, terms, [report('a', 2, 1000, false)], NOW);
    expect(lagging.periodStarted).toBe(false);
    expect(lagging.ledger.periodStart).toBe(today.ledger.periodStart);
    expect(lagging.ledger.spentMicros).toBe(2000);
  });

  it('follows a change of period: shorter starts a new one, longer extends the current one', () => {
    const monthly = applyReports(
      undefined,
      { ...terms, period: 'monthly' },
      [report('a', 1, 700, false)],
      NOW,
    );
    const daily = applyReports(monthly.ledger, terms, [report('a', 2, 1, false)], NOW + 1);
    expect(daily.periodStarted).toBe(true);
    expect(daily.ledger.periodEnd).toBe(Date.UTC(2026, 10, 26));
    const back = applyReports(
      daily.ledger,
      { ...terms, period: 'monthly' },
      [report('a', 3, 1, false)],
      NOW + 2,
    );
    expect(back.periodStarted).toBe(false);
    expect(back.ledger.spentMicros).toBe(2);
    expect(back.ledger.periodEnd).toBe(Date.UTC(2026, 11, 1));
  });

  it('shares a small budget among many sidecars asking at once instead of leasing it to the first few', () => {
    const many = Array.from({ length: 200 }, (_, i) => report(`p${i}`, 1, 0));
    const step = applyReports(undefined, terms, many, NOW);
    const amounts = step.grants.map((g) => g?.amountMicros ?? 0);
    expect(Math.min(...amounts)).toBe(50_000);
    expect(amounts.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(terms.limitMicros);
    // A latecomer finds it all leased; as the others renew, their share shrinks and frees room.
    const late = applyReports(step.ledger, terms, [report('late', 1, 0)], NOW + 1);
    expect(late.grants[0]?.exhausted).toBe(true);
    const renewals = Array.from({ length: 200 }, (_, i) => report(`p${i}`, 2, 10_000));
    const shrunk = applyReports(late.ledger, terms, renewals, NOW + 2);
    const again = applyReports(shrunk.ledger, terms, [report('late', 2, 0)], NOW + 3);
    expect(again.grants[0]?.amountMicros).toBeGreaterThan(0);
  });

  it('leases the first of many covered pods no more than its share, so later pods are not starved', () => {
    const first = applyReports(
      undefined,
      terms,
      [{ ...report('p0', 1, 0), coveredPods: 1000 }],
      NOW,
    );
    expect(first.grants[0]?.amountMicros).toBe(10_000);
  });

  it('returns an expired lease to the budget', () => {
    const small: BudgetTerms = { ...terms, limitMicros: 1000 };
    const held = applyReports(undefined, small, [report('a', 1, 0)], NOW, {
      leaseMs: 1000,
      chunkFraction: 1,
      maxAllowances: 10,
    });
    expect(held.grants[0]?.amountMicros).toBe(1000);
    const options = { leaseMs: 1000, chunkFraction: 1, maxAllowances: 10 };
    const blocked = applyReports(held.ledger, small, [report('b', 1, 0)], NOW + 10, options);
    expect(blocked.grants[0]?.exhausted).toBe(true);
    const later = applyReports(blocked.ledger, small, [report('b', 2, 0)], NOW + 5000, options);
    expect(later.grants[0]?.amountMicros).toBe(1000);
  });

  it('gives a released lease back at once', () => {
    const options = { leaseMs: 60_000, chunkFraction: 1, maxAllowances: 10 };
    const small: BudgetTerms = { ...terms, limitMicros: 1000 };
    const held = applyReports(undefined, small, [report('a', 1, 0)], NOW, options);
    const released = applyReports(
      held.ledger,
      small,
      [{ ...report('a', 2, 300, false), release: true }],
      NOW + 1,
      options,
    );
    const other = applyReports(released.ledger, small, [report('b', 1, 0)], NOW + 2, options);
    expect(other.grants[0]?.amountMicros).toBe(700);
  });

  it('never leases more than is left: spend stays within the limit plus one request per sidecar', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1000, max: 5_000_000 }),
        fc.integer({ min: 1, max: 50_000 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 50_000 })), {
          minLength: 1,
          maxLength: 400,
        }),
        (sidecars, limit, maxCost, steps) => {
          const t: BudgetTerms = { ...terms, limitMicros: limit };
          let ledger: Ledger | undefined;
          const local = Array.from({ length: sidecars }, () => ({
            allowance: 0,
            unreported: 0,
            seq: 0,
          }));
          let total = 0;
          for (const [who, rawCost] of steps) {
            const i = who % sidecars;
            const s = local[i]!;
            if (s.allowance > 0) {
              // A request admitted while the allowance is positive may cost more than is left.
              const cost = Math.min(rawCost, maxCost);
              s.allowance -= cost;
              s.unreported += cost;
              total += cost;
              continue;
            }
            s.seq++;
            const step = applyReports(ledger, t, [report(String(i), s.seq, s.unreported)], NOW);
            ledger = step.ledger;
            s.unreported = 0;
            s.allowance = step.grants[0]?.amountMicros ?? 0;
          }
          // Everything reported so far is counted exactly once...
          const reported = total - local.reduce((sum, s) => sum + s.unreported, 0);
          expect(ledger?.spentMicros ?? 0).toBe(reported);
          // ...and overshoot is bounded by one request per sidecar.
          expect(total).toBeLessThanOrEqual(limit + sidecars * maxCost);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('counts every report exactly once however batches are replayed', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.integer({ min: 0, max: 4 }),
            fc.integer({ min: 0, max: 10_000 }),
            fc.boolean(),
          ),
          {
            maxLength: 100,
          },
        ),
        (events) => {
          let ledger: Ledger | undefined;
          const seqs = [0, 0, 0, 0, 0];
          let expected = 0;
          let last: SpendReport | undefined;
          for (const [who, spent, replay] of events) {
            let r: SpendReport;
            if (replay && last) r = last;
            else {
              seqs[who]!++;
              r = report(String(who), seqs[who]!, spent, false);
              expected += spent;
            }
            ledger = applyReports(ledger, { ...terms, limitMicros: 1e12 }, [r], NOW).ledger;
            last = r;
          }
          expect(ledger?.spentMicros ?? 0).toBe(expected);
        },
      ),
    );
  });
});
