// The sidecar's allowances against the operator's real ledger core (no HTTP): what a pod may
// spend, when it is refused, and that spend sent during an outage is counted exactly once.
import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { BudgetAllowances, type LeaseTransport } from '../../sidecar/budget/allowances.js';
import type { LeaseGrant, LeaseRequest } from '../../sidecar/control/protocol.js';
import type { BudgetRef } from '../../sidecar/budget/schema.js';
import { createLogger } from '../../sidecar/telemetry/log.js';
import { applyReports, type BudgetTerms, type Ledger } from './ledger.js';

const quiet = createLogger({
  level: 'error',
  stream: new Writable({ write: (_c, _e, done) => done() }),
});

const BUDGET = 'team-a/monthly';
const ref = (action: 'block' | 'alert' = 'block'): BudgetRef => ({
  id: BUDGET,
  action,
  from: ['team-a/monthly'],
});

/** An in-memory operator: the ledger's pure core, with a switch to make it unreachable. */
function operator(limitMicros: number, action: 'block' | 'alert' = 'block') {
  const terms: BudgetTerms = {
    limitMicros,
    period: 'monthly',
    timeZone: 'UTC',
    thresholds: [100],
    action,
  };
  const state: { ledger?: Ledger; down: boolean; loseAnswers: boolean; requests: number } = {
    down: false,
    loseAnswers: false,
    requests: 0,
  };
  const transport: LeaseTransport = {
    async lease(request: LeaseRequest) {
      state.requests++;
      if (state.down) throw new Error('connect ECONNREFUSED');
      const grants: LeaseGrant[] = [];
      for (const report of request.reports) {
        const step = applyReports(
          state.ledger,
          terms,
          [{ pod: 'p', uid: 'uid-1', epoch: request.epoch, ...report }],
          Date.now(),
          { leaseMs: 60_000, chunkFraction: 0.1, maxAllowances: 10 },
        );
        state.ledger = step.ledger;
        const grant = step.grants[0];
        grants.push(
          grant
            ? {
                budget: report.budget,
                amountMicros: grant.amountMicros,
                expiresInMs: grant.expiresAt - Date.now(),
                exhausted: grant.exhausted,
              }
            : { budget: report.budget, amountMicros: 0, expiresInMs: 0, exhausted: false },
        );
      }
      // The write happened but the answer never arrived: the sidecar must resend, not re-count.
      if (state.loseAnswers) throw new Error('socket hang up');
      return { grants };
    },
  };
  return { transport, state, spent: () => state.ledger?.spentMicros ?? 0 };
}

async function admit(allowances: BudgetAllowances) {
  return await allowances.admit();
}

describe('budget allowances against the ledger', () => {
  it('admits while the allowance lasts and refuses with budget_exhausted once the budget is spent', async () => {
    const op = operator(1000);
    const allowances = new BudgetAllowances({ transport: op.transport, log: quiet });
    allowances.setBudgets([ref()]);
    let admitted = 0;
    for (let i = 0; i < 50; i++) {
      const verdict = await admit(allowances);
      if (!verdict.ok) {
        expect(verdict).toMatchObject({ code: 'budget_exhausted', budget: BUDGET });
        expect(verdict.ok === false && verdict.message).toContain('team-a/monthly');
        break;
      }
      admitted++;
      allowances.spend(60);
    }
    // 1000 micro-dollars at 60 each: 17 requests (the last one overshoots by 20).
    expect(admitted).toBe(17);
    await allowances.close();
    expect(op.spent()).toBe(1020);
  });

  it('never blocks on an alert budget, but still reports its spend', async () => {
    const op = operator(100, 'alert');
    const allowances = new BudgetAllowances({ transport: op.transport, log: quiet });
    allowances.setBudgets([ref('alert')]);
    for (let i = 0; i < 10; i++) {
      expect(allowances.admit()).toEqual({ ok: true });
      allowances.spend(50);
    }
    await allowances.close();
    expect(op.spent()).toBe(500);
  });

  it('refuses with policy_unavailable when no allowance can be had, and recovers', async () => {
    const op = operator(1_000_000);
    op.state.down = true;
    const allowances = new BudgetAllowances({ transport: op.transport, log: quiet, waitMs: 200 });
    allowances.setBudgets([ref()]);
    const refused = await admit(allowances);
    expect(refused).toMatchObject({ ok: false, code: 'policy_unavailable', budget: BUDGET });
    op.state.down = false;
    expect(await admit(allowances)).toEqual({ ok: true });
    await allowances.close();
  });

  it('keeps spending its allowance through an outage and counts that spend exactly once', async () => {
    const op = operator(10_000_000);
    const allowances = new BudgetAllowances({
      transport: op.transport,
      log: quiet,
      reportEveryMs: 5,
    });
    allowances.setBudgets([ref()]);
    expect(await admit(allowances)).toEqual({ ok: true });
    // The operator writes but the answers are lost, then it is gone for a while.
    op.state.loseAnswers = true;
    let total = 0;
    for (let i = 0; i < 30; i++) {
      const verdict = await admit(allowances);
      expect(verdict.ok).toBe(true);
      allowances.spend(9_000);
      total += 9_000;
      if (i === 10) op.state.down = true;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const requestsDuringTrouble = op.state.requests;
    op.state.loseAnswers = false;
    op.state.down = false;
    await allowances.close();
    // Reports went out (and were lost or refused) all along; each was counted once in the end.
    expect(requestsDuringTrouble).toBeGreaterThan(5);
    expect(op.spent()).toBe(total);
  });

  it('starts each budget of a new policy from nothing and forgets dropped ones', async () => {
    const op = operator(1000);
    const allowances = new BudgetAllowances({ transport: op.transport, log: quiet });
    allowances.setBudgets([]);
    expect(allowances.admit()).toEqual({ ok: true });
    expect(op.state.requests).toBe(0);
    allowances.setBudgets([ref()]);
    expect(allowances.admit()).toBeInstanceOf(Promise);
    expect(await admit(allowances)).toEqual({ ok: true });
    await allowances.close();
  });
});
