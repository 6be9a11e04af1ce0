// The ledger's imperative shell: spend reports from every connected sidecar are batched per
// budget and applied to the LlmBudget status with a conditional write (re-read and re-applied on
// conflict). Any replica may write; the resourceVersion makes the writes serial, and the
// per-sidecar sequence numbers in the status make a resent report count once.
import type { LlmBudget } from '../../crds/v1alpha1/index.js';
import { errorMessage } from '../../sidecar/control/protocol.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { LlmBudgets, sameJson, type EventInput, type KubeClient } from '../kube/index.js';
import {
  applyReports,
  DEFAULT_LEDGER_OPTIONS,
  type Grant,
  type LedgerOptions,
  type LedgerStep,
  type SpendReport,
} from './ledger.js';
import { budgetEvents, budgetStatus, budgetTerms, readLedger } from './status.js';

/**
 * Reports arriving within this window share one status write. Each write carries the budget's
 * whole allowance list, so with many pods on one budget this bounds the bytes written to etcd
 * (a thousand pods: about five writes a second) at the cost of a slower first lease.
 */
const DEFAULT_BATCH_MS = 200;

export class LedgerError extends Error {
  constructor(
    readonly reason: 'unknown_budget' | 'unavailable',
    message: string,
  ) {
    super(message);
  }
}

export interface BudgetLedgerOptions {
  client: KubeClient;
  log: Logger;
  /** Records an Event; failures are the caller's to log. */
  recordEvent(event: EventInput): Promise<unknown>;
  /** How long reports are collected before a write. */
  batchMs?: number;
  ledger?: LedgerOptions;
  now?: () => number;
}

export interface LedgerStats {
  reports: number;
  replays: number;
  writes: number;
  failures: number;
  countedMicros: number;
}

interface Pending {
  report: SpendReport;
  resolve(grant: Grant | undefined): void;
  reject(error: LedgerError): void;
}

export class BudgetLedger {
  private readonly pending = new Map<string, Pending[]>();
  private readonly running = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Budgets with a report a call is waiting on: written without the batching delay. */
  private readonly urgent = new Set<string>();
  private readonly stats: LedgerStats = {
    reports: 0,
    replays: 0,
    writes: 0,
    failures: 0,
    countedMicros: 0,
  };
  private closed = false;

  constructor(private readonly options: BudgetLedgerOptions) {}

  /** Counts a sidecar's report on `namespace/name` and answers with its allowance. */
  /**
   * Counts a sidecar's report on `namespace/name` and answers with its allowance. `urgent`: a
   * call is waiting for it, so the batch is written now rather than after the batching window.
   */
  submit(budgetId: string, report: SpendReport, urgent = false): Promise<Grant | undefined> {
    if (this.closed) return Promise.reject(new LedgerError('unavailable', 'operator stopping'));
    this.stats.reports++;
    return new Promise((resolve, reject) => {
      const queue = this.pending.get(budgetId) ?? [];
      queue.push({ report, resolve, reject });
      this.pending.set(budgetId, queue);
      this.schedule(budgetId, urgent);
    });
  }

  /** Brings a budget's status up to date with no report: a new budget, a new period, a new spec. */
  refresh(budgetId: string): Promise<void> {
    return this.write(budgetId, []).then(
      () => undefined,
      (err: unknown) => {
        this.options.log.warn('budget status not refreshed', {
          budget: budgetId,
          reason: errorMessage(err),
        });
      },
    );
  }

  /**
   * Writes a cached budget's status if time alone changed it (a period ended, a lease expired)
   * or the operator never wrote it; the check is pure, so an idle budget costs no request.
   */
  refreshIfStale(budget: LlmBudget): Promise<void> | undefined {
    const read = budgetTerms(budget);
    const at = (this.options.now ?? Date.now)();
    const step = applyReports(
      readLedger(budget.status),
      read.terms,
      [],
      at,
      this.options.ledger ?? DEFAULT_LEDGER_OPTIONS,
    );
    const wanted = budgetStatus(budget, step.ledger, read, at);
    if (sameJson(stripTimes(wanted), stripTimes(budget.status))) return undefined;
    return this.refresh(`${budget.metadata.namespace ?? ''}/${budget.metadata.name}`);
  }

  snapshot(): LedgerStats {
    return { ...this.stats };
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    for (const queue of this.pending.values()) {
      for (const p of queue) p.reject(new LedgerError('unavailable', 'operator stopping'));
    }
    this.pending.clear();
  }

  private schedule(budgetId: string, urgent = false): void {
    if (urgent) this.urgent.add(budgetId);
    if (this.running.has(budgetId)) return;
    const timer = this.timers.get(budgetId);
    if (timer && !urgent) return;
    clearTimeout(timer);
    this.timers.set(
      budgetId,
      setTimeout(
        () => {
          this.timers.delete(budgetId);
          void this.drain(budgetId);
        },
        this.urgent.has(budgetId) ? 0 : (this.options.batchMs ?? DEFAULT_BATCH_MS),
      ),
    );
  }

  /** One write per budget at a time; reports arriving meanwhile go in the next one. */
  private async drain(budgetId: string): Promise<void> {
    const batch = this.pending.get(budgetId) ?? [];
    this.pending.delete(budgetId);
    this.urgent.delete(budgetId);
    if (batch.length === 0) return;
    this.running.add(budgetId);
    try {
      const step = await this.write(
        budgetId,
        batch.map((p) => p.report),
      );
      batch.forEach((p, i) => p.resolve(step.grants[i]));
    } catch (err) {
      const error =
        err instanceof LedgerError
          ? err
          : new LedgerError('unavailable', `budget ledger write failed: ${errorMessage(err)}`);
      for (const p of batch) p.reject(error);
    } finally {
      this.running.delete(budgetId);
      if (this.pending.has(budgetId)) this.schedule(budgetId);
    }
  }

  private async write(budgetId: string, reports: SpendReport[]): Promise<LedgerStep> {
    const [namespace, name] = budgetId.split('/');
    if (!namespace || !name) throw new LedgerError('unknown_budget', 'malformed budget id');
    const now = this.options.now ?? Date.now;
    let last: { step: LedgerStep; budget: LlmBudget } | undefined;
    let result: { written: boolean };
    try {
      result = await this.options.client.updateStatus(
        LlmBudgets,
        name,
        namespace,
        (current) => {
          const budget = current as unknown as LlmBudget;
          const read = budgetTerms(budget);
          const at = now();
          const step = applyReports(
            readLedger(budget.status),
            read.terms,
            reports,
            at,
            this.options.ledger ?? DEFAULT_LEDGER_OPTIONS,
          );
          last = { step, budget };
          return budgetStatus(budget, step.ledger, read, at);
        },
        10,
      );
    } catch (err) {
      this.stats.failures++;
      throw err;
    }
    if (!last) throw new LedgerError('unknown_budget', `LlmBudget ${budgetId} does not exist`);
    const { step, budget } = last;
    if (result.written) {
      this.stats.writes++;
      this.stats.replays += step.replays;
      this.stats.countedMicros += step.counted;
      // Only the write that made the change announces it: Events happen once per crossing.
      for (const event of budgetEvents(budget, step, budgetTerms(budget).terms)) {
        this.options.recordEvent(event).catch((err: unknown) => {
          this.options.log.warn('budget event not recorded', { reason: errorMessage(err) });
        });
      }
    }
    return step;
  }
}

/** Condition transition times differ between two computations at different instants only. */
function stripTimes(status: LlmBudget['status']): unknown {
  if (!status) return undefined;
  return {
    ...status,
    conditions: status.conditions?.map(({ lastTransitionTime: _t, ...rest }) => rest),
  };
}
