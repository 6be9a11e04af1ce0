// The budget ledger: spend reports in, allowances out, LlmBudget status kept.
import type { CompiledPolicy } from '../../sidecar/policy/compiled.js';
import type { LeaseGrant, LeaseRequest, LeaseResponse } from '../../sidecar/control/protocol.js';
import { BudgetLedger, LedgerError } from './ledger-writer.js';

export {
  BudgetLedger,
  LedgerError,
  type BudgetLedgerOptions,
  type LedgerStats,
} from './ledger-writer.js';
export { DEFAULT_LEDGER_OPTIONS, type LedgerOptions } from './ledger.js';

export interface LeasingPod {
  namespace: string;
  podName: string;
  podUid: string;
}

/**
 * Answers one sidecar's lease request. A pod reports only on budgets its own compiled policy
 * names; anything else is refused per entry, so one pod can neither spend nor drain another's.
 */
export async function answerLease(
  ledger: BudgetLedger,
  pod: LeasingPod,
  policy: CompiledPolicy | undefined,
  request: LeaseRequest,
  /** Pods each budget covers (the operator's count), so allowances are shared from the start. */
  coveredPods: (budgetId: string) => number | undefined = () => undefined,
  now: () => number = Date.now,
): Promise<LeaseResponse> {
  const granted = new Set((policy?.budgets ?? []).map((b) => b.id));
  const grants = await Promise.all(
    request.reports.map(async (report): Promise<LeaseGrant> => {
      const budget = report.budget;
      if (!policy) return { budget, error: 'unavailable' };
      if (!granted.has(budget)) return { budget, error: 'unknown_budget' };
      try {
        const grant = await ledger.submit(
          budget,
          {
            pod: pod.podName,
            uid: pod.podUid,
            epoch: request.epoch,
            seq: report.seq,
            spentMicros: report.spentMicros,
            want: report.want,
            ...(report.release ? { release: true } : {}),
            ...(coveredPods(budget) !== undefined ? { coveredPods: coveredPods(budget) } : {}),
          },
          request.urgent === true,
        );
        if (!grant) return { budget, amountMicros: 0, expiresInMs: 0, exhausted: false };
        return {
          budget,
          amountMicros: grant.amountMicros,
          expiresInMs: Math.max(0, grant.expiresAt - now()),
          exhausted: grant.exhausted,
        };
      } catch (err) {
        return { budget, error: err instanceof LedgerError ? err.reason : 'unavailable' };
      }
    }),
  );
  return { grants };
}
