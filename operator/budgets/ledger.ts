// The money ledger of one LlmBudget, as a pure function: spend the sidecars report, the
// allowances leased to them, the period and its thresholds. The operator reads the status,
// applies a batch and writes it back conditionally (resourceVersion), so any replica may write
// and none double counts or loses an update.
import { periodBounds, type Period } from './period.js';

export interface BudgetTerms {
  limitMicros: number;
  period: Period;
  timeZone: string;
  /** Percentages, ascending. */
  thresholds: readonly number[];
  action: 'block' | 'alert';
}

/** One sidecar's lease on the budget, and the last of its reports already counted. */
export interface Allowance {
  pod: string;
  uid: string;
  amountMicros: number;
  expiresAt: number;
  epoch: string;
  seq: number;
}

export interface Ledger {
  periodStart: number;
  periodEnd: number;
  spentMicros: number;
  allowances: Allowance[];
  /** Thresholds already announced this period. */
  alerted: number[];
}

/** What one sidecar sends: spend since its previous report, and whether it wants an allowance. */
export interface SpendReport {
  pod: string;
  uid: string;
  /** The sidecar process; a new one starts its sequence again. */
  epoch: string;
  /** Strictly increasing per epoch; a report at or below the counted one is a replay. */
  seq: number;
  spentMicros: number;
  want: boolean;
  /** The sidecar is going away: its unspent allowance returns to the budget. */
  release?: boolean;
  /** How many pods the budget covers as the operator sees them: nobody leases more than a share. */
  coveredPods?: number;
}

export interface Grant {
  /** What the sidecar may spend from the moment its report was counted. */
  amountMicros: number;
  expiresAt: number;
  /** Nothing was left to lease: further spend is refused until the budget moves. */
  exhausted: boolean;
}

export interface LedgerOptions {
  leaseMs: number;
  /** An allowance tops up to this fraction of the limit (the smaller, the tighter the overshoot). */
  chunkFraction: number;
  maxAllowances: number;
}

export const DEFAULT_LEDGER_OPTIONS: LedgerOptions = {
  leaseMs: 120_000,
  chunkFraction: 0.02,
  maxAllowances: 2000,
};

export interface LedgerStep {
  ledger: Ledger;
  /** By report index: only reports that asked for an allowance get one. */
  grants: (Grant | undefined)[];
  crossed: number[];
  /** The period rolled over in this step (the stored one had ended). */
  periodStarted: boolean;
  /** Spend reached the limit in this step. */
  exhaustedNow: boolean;
  counted: number;
  replays: number;
}

/** Expired allowances are kept this long (at zero) so a late replay is still recognised. */
const REPLAY_MEMORY_LEASES = 10;

export function applyReports(
  previous: Ledger | undefined,
  terms: BudgetTerms,
  reports: readonly SpendReport[],
  now: number,
  options: LedgerOptions = DEFAULT_LEDGER_OPTIONS,
): LedgerStep {
  const bounds = periodBounds(now, terms.period, terms.timeZone);
  // A replica whose clock lags must not roll a period back.
  const rolled = previous !== undefined && bounds.start > previous.periodStart;
  const base: Ledger =
    previous === undefined || rolled
      ? {
          periodStart: bounds.start,
          periodEnd: bounds.end,
          spentMicros: 0,
          // Leases survive a new period: they are spend the sidecars may still make, now in it.
          allowances: previous?.allowances ?? [],
          alerted: [],
        }
      : previous;
  const ledger: Ledger = {
    ...base,
    // A longer period (daily to monthly) extends the current one; a shorter one rolls above.
    periodEnd: rolled || previous === undefined ? bounds.end : Math.max(base.periodEnd, bounds.end),
    allowances: base.allowances
      .filter((a) => a.expiresAt > now - REPLAY_MEMORY_LEASES * options.leaseMs)
      .map((a) => ({ ...a, amountMicros: a.expiresAt > now ? a.amountMicros : 0 })),
    alerted: [...base.alerted],
  };
  const spentBefore = rolled ? 0 : base.spentMicros;
  const byUid = new Map(ledger.allowances.map((a) => [a.uid, a]));
  let counted = 0;
  let replays = 0;

  const entryFor = (report: SpendReport): Allowance => {
    let entry = byUid.get(report.uid);
    if (!entry) {
      entry = {
        pod: report.pod,
        uid: report.uid,
        amountMicros: 0,
        expiresAt: now,
        epoch: report.epoch,
        seq: 0,
      };
      byUid.set(report.uid, entry);
    } else if (entry.epoch !== report.epoch) {
      // A restarted sidecar holds nothing of its predecessor's lease.
      entry.epoch = report.epoch;
      entry.seq = 0;
      entry.amountMicros = 0;
    }
    return entry;
  };

  for (const report of reports) {
    const entry = entryFor(report);
    if (report.seq <= entry.seq) {
      replays++;
      continue;
    }
    const spent = Math.max(0, Math.round(report.spentMicros));
    ledger.spentMicros += spent;
    counted += spent;
    entry.amountMicros = Math.max(0, entry.amountMicros - spent);
    entry.seq = report.seq;
    if (report.release) {
      entry.amountMicros = 0;
      entry.expiresAt = now;
    }
  }

  const chunk = Math.max(1, Math.floor(terms.limitMicros * options.chunkFraction));
  // No holder may take more than an equal share of what is left, counting every live lease and
  // every sidecar asking now: otherwise the first fifty pods of a big deployment lease a small
  // budget whole and the rest are refused while almost nothing is spent.
  const holders = new Set(
    // A sidecar that asked recently and got nothing still waits for its share.
    [...byUid.values()].filter((a) => a.expiresAt > now).map((a) => a.uid),
  );
  for (const report of reports) if (report.want && !report.release) holders.add(report.uid);
  const covered = Math.max(0, ...reports.map((r) => r.coveredPods ?? 0));
  const fairShare = Math.floor(
    Math.max(0, terms.limitMicros - ledger.spentMicros) / Math.max(1, holders.size, covered),
  );
  const target = Math.max(1, Math.min(chunk, fairShare));
  const grants = reports.map((report): Grant | undefined => {
    if (!report.want || report.release) return undefined;
    const entry = entryFor(report);
    if (terms.action === 'alert') {
      // Nothing to enforce: the sidecar only reports.
      return { amountMicros: 0, expiresAt: now + options.leaseMs, exhausted: false };
    }
    let leasedToOthers = 0;
    for (const other of byUid.values()) if (other !== entry) leasedToOthers += other.amountMicros;
    const available = terms.limitMicros - ledger.spentMicros - leasedToOthers - entry.amountMicros;
    const full = byUid.size > options.maxAllowances && entry.amountMicros === 0;
    // A renewal is also the moment to give back more than a fair share: the sidecar replaces
    // its allowance with what this grant says.
    if (entry.amountMicros > target) entry.amountMicros = target;
    if (!full && entry.amountMicros < target && available > 0) {
      entry.amountMicros += Math.min(target - entry.amountMicros, available);
    }
    entry.expiresAt = now + options.leaseMs;
    return {
      amountMicros: entry.amountMicros,
      expiresAt: entry.expiresAt,
      exhausted: entry.amountMicros === 0,
    };
  });

  ledger.allowances = [...byUid.values()].sort((a, b) =>
    a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0,
  );
  const crossed = terms.thresholds.filter(
    (t) => ledger.spentMicros * 100 >= t * terms.limitMicros && !ledger.alerted.includes(t),
  );
  ledger.alerted = [...ledger.alerted, ...crossed].sort((a, b) => a - b);
  return {
    ledger,
    grants,
    crossed,
    periodStarted: rolled,
    exhaustedNow: spentBefore < terms.limitMicros && ledger.spentMicros >= terms.limitMicros,
    counted,
    replays,
  };
}

export type BudgetState = 'Ok' | 'Warning' | 'Exhausted';

export function budgetState(ledger: Ledger, terms: BudgetTerms): BudgetState {
  if (ledger.spentMicros >= terms.limitMicros) return 'Exhausted';
  const lowest = terms.thresholds[0];
  if (lowest !== undefined && ledger.spentMicros * 100 >= lowest * terms.limitMicros)
    return 'Warning';
  return 'Ok';
}

/** What is leased and not yet spent, summed: spend that may still arrive this period. */
export function outstandingMicros(ledger: Ledger, now: number): number {
  return ledger.allowances.reduce((sum, a) => sum + (a.expiresAt > now ? a.amountMicros : 0), 0);
}
