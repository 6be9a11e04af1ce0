import { describe, expect, it } from '@jest/globals';
import { emptyDistributionStats } from './distribution/index.js';
import { renderOperatorMetrics } from './metrics.js';

describe('renderOperatorMetrics', () => {
  it('exports refusals under the name the chart alerts on, with one reason label each', () => {
    const text = renderOperatorMetrics({
      distribution: {
        streams: 3,
        connects: 5,
        authFailures: {
          missing_token: 1,
          invalid_token: 2,
          not_a_pod_token: 0,
          review_unavailable: 0,
        },
        forbidden: 4,
        notInjected: 3,
        throttled: 0,
        policiesSent: 7,
        keysSent: 2,
        acks: 6,
        nacks: 1,
        leases: 0,
        badRequests: 0,
        slowConsumers: 0,
      },
      leader: true,
    });
    expect(text).toContain('# TYPE llmproxy_operator_auth_failures_total counter');
    expect(text).toContain('llmproxy_operator_auth_failures_total{reason="invalid_token"} 2');
    expect(text).toContain('llmproxy_operator_auth_failures_total{reason="not_injected"} 3');
    expect(text).toContain('llmproxy_operator_auth_failures_total{reason="other_pod"} 1');
    expect(text).toContain('llmproxy_operator_connected_sidecars 3');
    expect(text).toContain('llmproxy_operator_policy_acks_total{result="nack"} 1');
    expect(text).toContain('llmproxy_operator_key_pushes_total 2');
    expect(text).toContain('llmproxy_operator_leader 1');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('exports the ledger counters, spend in dollars', () => {
    const text = renderOperatorMetrics({
      distribution: { ...emptyDistributionStats(), leases: 4 },
      ledger: { reports: 9, replays: 1, writes: 3, failures: 2, countedMicros: 1_250_000 },
      budgets: [{ namespace: 'team-a', name: 'monthly', spentUsd: 41.27, limitUsd: 250 }],
      leader: false,
    });
    expect(text).toContain('llmproxy_operator_budget_reports_total{result="replay"} 1');
    expect(text).toContain('llmproxy_operator_budget_ledger_writes_total{result="error"} 2');
    expect(text).toContain('llmproxy_operator_budget_spend_usd_total 1.25');
    expect(text).toContain(
      'llmproxy_operator_budget_spent_usd{budget_namespace="team-a",budget="monthly"} 41.27',
    );
    expect(text).toContain(
      'llmproxy_operator_budget_limit_usd{budget_namespace="team-a",budget="monthly"} 250',
    );
  });
});
