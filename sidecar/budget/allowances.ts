// Budget enforcement in the sidecar: each `block` budget of the policy has an allowance leased
// by the operator. A request is admitted while every allowance is positive; its cost is taken
// off after the response and reported, and the allowance is renewed before it runs out. So the
// overshoot across all pods is bounded by requests in flight, not by how often spend is reported.
import { randomBytes } from 'node:crypto';
import type { LeaseRequest, LeaseResponse } from '../control/protocol.js';
import { errorMessage } from '../control/protocol.js';
import type { Logger } from '../telemetry/log.js';
import type { BudgetRef } from './schema.js';

export interface LeaseTransport {
  lease(request: LeaseRequest): Promise<LeaseResponse>;
}

export type BudgetVerdict =
  | { ok: true }
  | { ok: false; code: 'budget_exhausted' | 'policy_unavailable'; budget: string; message: string };

export interface AllowancesOptions {
  transport: LeaseTransport;
  log: Logger;
  now?: () => number;
  /** How long a request waits for an allowance it does not have yet. */
  waitMs?: number;
  /** Spend is reported at least this often even while the allowance lasts. */
  reportEveryMs?: number;
  /** An exhausted budget is asked again after this long (the limit may have been raised). */
  exhaustedRecheckMs?: number;
}

interface BudgetState {
  ref: BudgetRef;
  /** What may still be spent; negative after the last admitted request cost more than was left. */
  allowance: number;
  /** The last amount granted, to renew at a quarter of it. */
  granted: number;
  expiresAt: number;
  exhaustedAt?: number;
  /** Spend not yet sent, in micro-dollars (fractions carried). */
  unreported: number;
  /** Spend sent in the request now in flight, for the grant to be reconciled against. */
  inFlight: number;
}

interface Outgoing {
  request: LeaseRequest;
  /** The budget states each report was built from. */
  states: BudgetState[];
}

const ALLOWANCE_OK: BudgetVerdict = { ok: true };
/** Enforcement never waits for this (allowances do); it is how fresh `kubectl get llmbudgets` is. */
const REPORT_EVERY_MS = 10_000;

export class BudgetAllowances {
  private readonly epoch = randomBytes(12).toString('base64url');
  private readonly budgets = new Map<string, BudgetState>();
  private seq = 0;
  private outgoing?: Outgoing;
  private renewing?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private failures = 0;
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly options: AllowancesOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Follows the policy in force: new budgets start with no allowance, dropped ones are forgotten. */
  setBudgets(refs: readonly BudgetRef[]): void {
    const ids = new Set(refs.map((r) => r.id));
    for (const id of this.budgets.keys()) if (!ids.has(id)) this.budgets.delete(id);
    for (const ref of refs) {
      const existing = this.budgets.get(ref.id);
      if (existing) existing.ref = ref;
      else
        this.budgets.set(ref.id, {
          ref,
          allowance: 0,
          granted: 0,
          expiresAt: 0,
          unreported: 0,
          inFlight: 0,
        });
    }
    this.arm();
  }

  /** Synchronous when every allowance is in hand (the common case); waits only to obtain one. */
  admit(): BudgetVerdict | Promise<BudgetVerdict> {
    if (this.budgets.size === 0) return ALLOWANCE_OK;
    const verdict = this.check(false);
    if (verdict !== undefined) return verdict;
    return this.renewAndCheck();
  }

  /** What the admin /status endpoint shows: allowances in dollars, never anything secret. */
  status(): Array<{ budget: string; action: string; allowanceUsd: number; exhausted: boolean }> {
    const now = this.now();
    return [...this.budgets.values()].map((s) => ({
      budget: s.ref.id,
      action: s.ref.action,
      allowanceUsd: s.expiresAt > now ? Math.max(0, s.allowance) / 1e6 : 0,
      exhausted: s.exhaustedAt !== undefined,
    }));
  }

  /** Takes a finished request's cost off every budget (all of them cover this pod's spend). */
  spend(costMicros: number | null): void {
    if (!costMicros || costMicros <= 0 || this.budgets.size === 0) return;
    let low = false;
    const now = this.now();
    for (const state of this.budgets.values()) {
      state.unreported += costMicros;
      if (state.ref.action !== 'block') continue;
      state.allowance -= costMicros;
      if (state.allowance < state.granted / 4 || state.expiresAt - now < 30_000) low = true;
    }
    if (low) void this.renew();
  }

  /** Reports what is left and returns the allowances, so a pod that goes away frees its share. */
  async close(timeoutMs = 2000): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.budgets.size === 0) return;
    await this.renewing;
    const send = (request: LeaseRequest) =>
      withTimeout(this.options.transport.lease(request), timeoutMs).then(
        () => true,
        () => false,
      );
    // An unanswered report goes first, as it was; then the rest, giving the allowances back.
    if (this.outgoing && !(await send(this.outgoing.request))) return;
    await send(this.build(true).request);
  }

  private check(afterRenew: boolean): BudgetVerdict | undefined {
    const now = this.now();
    for (const state of this.budgets.values()) {
      if (state.ref.action !== 'block') continue;
      if (state.allowance > 0 && state.expiresAt > now) continue;
      const recheck = this.options.exhaustedRecheckMs ?? 2000;
      if (state.exhaustedAt !== undefined && (afterRenew || now - state.exhaustedAt < recheck)) {
        return {
          ok: false,
          code: 'budget_exhausted',
          budget: state.ref.id,
          message: `the LlmBudget ${state.ref.id} is spent for this period; calls resume when it resets or its limit is raised`,
        };
      }
      if (afterRenew) {
        return {
          ok: false,
          code: 'policy_unavailable',
          budget: state.ref.id,
          message: `no spend allowance for the LlmBudget ${state.ref.id} could be obtained from the operator; retry shortly`,
        };
      }
      return undefined;
    }
    return ALLOWANCE_OK;
  }

  private async renewAndCheck(): Promise<BudgetVerdict> {
    await withTimeout(this.renew(true), this.options.waitMs ?? 3000).catch(() => undefined);
    return this.check(true) ?? ALLOWANCE_OK;
  }

  /**
   * One lease request at a time; callers arriving meanwhile share it. Never rejects. `urgent`:
   * a call waits on it, so the operator should not hold it for batching.
   */
  private renew(urgent = false): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.renewing ??= this.exchange(urgent)
      .catch(() => undefined)
      .finally(() => {
        this.renewing = undefined;
        this.arm();
      });
    return this.renewing;
  }

  private build(release = false): Outgoing {
    const states = [...this.budgets.values()];
    const seq = ++this.seq;
    const reports = states.map((state) => {
      // Whole micro-dollars are sent; the fraction waits for the next report.
      const spent = Math.floor(state.unreported);
      state.unreported -= spent;
      state.inFlight = spent;
      return {
        budget: state.ref.id,
        seq,
        spentMicros: spent,
        want: !release && state.ref.action === 'block',
        ...(release ? { release: true } : {}),
      };
    });
    return { request: { epoch: this.epoch, reports }, states };
  }

  private async exchange(urgent: boolean): Promise<void> {
    if (this.budgets.size === 0) return;
    // A request whose outcome is unknown is resent as it was: same numbers, so it counts once.
    this.outgoing ??= this.build();
    const { states } = this.outgoing;
    const request = urgent ? { ...this.outgoing.request, urgent } : this.outgoing.request;
    const sentAt = this.now();
    let response: LeaseResponse;
    try {
      response = await this.options.transport.lease(request);
    } catch (err) {
      this.failures++;
      if (this.failures === 1 || this.failures % 20 === 0) {
        this.options.log.warn('budget allowance not renewed; keeping the current one', {
          reason: errorMessage(err),
        });
      }
      throw err;
    }
    this.outgoing = undefined;
    this.failures = 0;
    const byId = new Map(response.grants.map((g) => [g.budget, g]));
    for (const state of states) {
      const grant = byId.get(state.ref.id);
      if (this.budgets.get(state.ref.id) !== state) continue;
      if (!grant || 'error' in grant) {
        if (grant?.error === 'unavailable') {
          // Not counted: put the spend back for the next report.
          state.unreported += state.inFlight;
        } else {
          this.options.log.warn('the operator does not know a budget of this policy', {
            budget: state.ref.id,
            reason: grant?.error ?? 'missing',
          });
        }
        state.inFlight = 0;
        continue;
      }
      state.inFlight = 0;
      if (state.ref.action !== 'block') continue;
      // The grant counts from when the report was applied; spend since then comes off it.
      const spentSince = Math.floor(state.unreported);
      state.allowance = grant.amountMicros - spentSince;
      state.granted = grant.amountMicros;
      state.expiresAt = sentAt + grant.expiresInMs;
      state.exhaustedAt = grant.exhausted ? this.now() : undefined;
    }
  }

  /** Reports spend on a timer so budgets move while allowances last, and retries failures. */
  private arm(): void {
    clearTimeout(this.timer);
    if (this.closed || this.budgets.size === 0) return;
    const every = this.options.reportEveryMs ?? REPORT_EVERY_MS;
    const delay =
      this.failures > 0 ? Math.min(every, 250 * 2 ** Math.min(this.failures, 5)) : every;
    this.timer = setTimeout(() => {
      const pending = [...this.budgets.values()].some((s) => s.unreported >= 1);
      if (pending || this.outgoing || this.failures > 0) void this.renew();
      else this.arm();
    }, delay);
    this.timer.unref();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out')), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
