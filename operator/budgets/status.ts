// LlmBudget status <-> the ledger (pure): what `kubectl get llmbudgets` shows, the conditions
// and the Events a ledger step calls for.
import type { LlmBudget, LlmBudgetStatus } from '../../crds/v1alpha1/index.js';
import type { EventInput } from '../kube/index.js';
import { budgetState, type BudgetTerms, type Ledger, type LedgerStep } from './ledger.js';
import { formatMicros, parseMicros } from './money.js';
import { isKnownTimeZone } from './period.js';

type Condition = NonNullable<LlmBudgetStatus['conditions']>[number];

const DEFAULT_THRESHOLDS = [50, 80, 100];

export interface ReadTerms {
  terms: BudgetTerms;
  /** What is wrong with the spec, for the Ready condition (the ledger still runs, on UTC). */
  problem?: { reason: string; message: string };
}

export function budgetTerms(budget: LlmBudget): ReadTerms {
  const spec = budget.spec;
  const zone = spec.timeZone ?? 'UTC';
  const known = isKnownTimeZone(zone);
  const terms: BudgetTerms = {
    // The API server validates the limit; a zero would only make every request refused.
    limitMicros: parseMicros(spec.limit) ?? 0,
    period: spec.period,
    timeZone: known ? zone : 'UTC',
    thresholds: [...(spec.alertThresholds ?? DEFAULT_THRESHOLDS)].sort((a, b) => a - b),
    action: spec.action ?? 'block',
  };
  if (!known) {
    return {
      terms,
      problem: {
        reason: 'InvalidTimeZone',
        message: `time zone "${zone.slice(0, 64)}" is not an IANA zone this operator knows; periods use UTC until it is fixed`,
      },
    };
  }
  return { terms };
}

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const parseTime = (text: string | undefined): number | undefined => {
  const ms = text === undefined ? NaN : Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
};

/** The ledger the status holds, or undefined for a budget the operator has not written yet. */
export function readLedger(status: LlmBudgetStatus | undefined): Ledger | undefined {
  const periodStart = parseTime(status?.periodStart);
  const periodEnd = parseTime(status?.periodEnd);
  const spentMicros = parseMicros(status?.spent);
  if (periodStart === undefined || periodEnd === undefined || spentMicros === undefined) {
    return undefined;
  }
  return {
    periodStart,
    periodEnd,
    spentMicros,
    alerted: [...(status?.alertedThresholds ?? [])],
    allowances: (status?.allowances ?? []).map((a) => ({
      pod: a.pod,
      uid: a.uid,
      amountMicros: parseMicros(a.amount) ?? 0,
      expiresAt: parseTime(a.expiresAt) ?? 0,
      epoch: a.epoch,
      seq: a.seq,
    })),
  };
}

function condition(
  previous: readonly Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now: string,
): Condition {
  const before = previous?.find((c) => c.type === next.type);
  const unchanged = before?.status === next.status && before.reason === next.reason;
  return { ...next, lastTransitionTime: unchanged ? before.lastTransitionTime : now };
}

/** The status for a ledger (pure); conditions keep their transition time while unchanged. */
export function budgetStatus(
  budget: LlmBudget,
  ledger: Ledger,
  read: ReadTerms,
  now: number,
): LlmBudgetStatus {
  const { terms } = read;
  const generation = budget.metadata.generation ?? 0;
  const previous = budget.status?.conditions;
  const at = iso(now);
  const state = budgetState(ledger, terms);
  const percent = terms.limitMicros > 0 ? (ledger.spentMicros * 100) / terms.limitMicros : 100;
  const highest = ledger.alerted.at(-1);
  const conditions: Condition[] = [
    condition(
      previous,
      read.problem
        ? { type: 'Ready', status: 'False', ...read.problem, observedGeneration: generation }
        : {
            type: 'Ready',
            status: 'True',
            reason: 'Tracking',
            message: 'spend is counted and allowances are leased',
            observedGeneration: generation,
          },
      at,
    ),
    condition(
      previous,
      highest === undefined
        ? {
            type: 'ThresholdCrossed',
            status: 'False',
            reason: 'BelowThresholds',
            message: 'no alert threshold crossed this period',
            observedGeneration: generation,
          }
        : {
            type: 'ThresholdCrossed',
            status: 'True',
            reason: `Threshold${highest}`,
            message: `${highest}% of the limit spent this period`,
            observedGeneration: generation,
          },
      at,
    ),
    condition(
      previous,
      state === 'Exhausted'
        ? {
            type: 'Exhausted',
            status: 'True',
            reason: 'LimitReached',
            message:
              terms.action === 'block'
                ? 'the limit is spent: calls are refused with budget_exhausted until the period ends or the limit is raised'
                : 'the limit is spent (action alert: calls are not refused)',
            observedGeneration: generation,
          }
        : {
            type: 'Exhausted',
            status: 'False',
            reason: 'WithinLimit',
            message: 'spend is within the limit',
            observedGeneration: generation,
          },
      at,
    ),
  ];
  return {
    observedGeneration: generation,
    spent: formatMicros(ledger.spentMicros),
    remaining: formatMicros(Math.max(0, terms.limitMicros - ledger.spentMicros)),
    percentUsed: `${Math.min(percent, 99_999).toFixed(1)}%`,
    periodStart: iso(ledger.periodStart),
    periodEnd: iso(ledger.periodEnd),
    state,
    alertedThresholds: ledger.alerted,
    allowances: ledger.allowances.map((a) => ({
      pod: a.pod,
      uid: a.uid,
      amount: formatMicros(a.amountMicros),
      expiresAt: iso(a.expiresAt),
      epoch: a.epoch,
      seq: a.seq,
    })),
    conditions,
  };
}

/** The Events a step that was written calls for: thresholds, exhaustion, a new period. */
export function budgetEvents(
  budget: LlmBudget,
  step: LedgerStep,
  terms: BudgetTerms,
): EventInput[] {
  const regarding = {
    apiVersion: 'llmproxy.io/v1alpha1',
    kind: 'LlmBudget',
    namespace: budget.metadata.namespace,
    name: budget.metadata.name,
    uid: (budget.metadata as { uid?: string }).uid,
  };
  const spentText = `${formatMicros(step.ledger.spentMicros)} of ${formatMicros(terms.limitMicros)} USD`;
  const events: EventInput[] = [];
  if (step.periodStarted) {
    events.push({
      regarding,
      type: 'Normal',
      reason: 'PeriodStarted',
      action: 'ResetSpend',
      note: `a new ${terms.period} period began at ${iso(step.ledger.periodStart)}; spend starts from zero`,
    });
  }
  for (const threshold of step.crossed) {
    events.push({
      regarding,
      type: 'Warning',
      reason: 'ThresholdCrossed',
      action: 'CountSpend',
      note: `${threshold}% of the budget is spent: ${spentText} this period`,
    });
  }
  if (step.exhaustedNow) {
    events.push({
      regarding,
      type: 'Warning',
      reason: 'BudgetExhausted',
      action: 'CountSpend',
      note:
        terms.action === 'block'
          ? `the budget is spent (${spentText}): calls are refused until ${iso(step.ledger.periodEnd)}`
          : `the budget is spent (${spentText}); action is alert, so calls continue`,
    });
  }
  return events;
}
