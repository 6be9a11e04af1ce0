// Budgets end to end: two operator processes (replicas) against the real API server, sidecar
// processes in managed mode with minted pod-bound tokens for real Pod objects, traffic to the
// fake provider. The ledger lives in LlmBudget status; nothing is counted twice or lost.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { LlmBudget } from '../../crds/v1alpha1/index.js';
import {
  KubeClient,
  LlmBudgets,
  LlmPolicies,
  ServiceAccounts,
  loadKubeConfig,
  type KubeObject,
} from '../../operator/kube/index.js';
import { startFakeProvider, type FakeProvider } from '../fake-provider/server.js';
import { createInjectedPodWithToken } from '../support/pods.js';
import { llmPolicy } from '../support/policies.js';
import { freshNamespace, sharedControlPlane, type ControlPlane } from '../support/e2e.js';
import {
  applyCrds,
  startOperatorProcess,
  writeServingTls,
  type OperatorProcess,
} from '../support/operator-process.js';
import { startSidecar, waitUntil, type RunningSidecar } from '../support/sidecar.js';
import type { TestPki } from '../support/tls.js';

/** The fake provider bills 12 input and 7 output tokens per call; at $1,000 per million each: */
const CALL_MICROS = 19_000;

describe('budgets: spend counted by any replica, enforced by leased allowances', () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let ns: string;
  let dir: string;
  let pki: TestPki;
  let fake: FakeProvider;
  const operators: OperatorProcess[] = [];
  const sidecars: RunningSidecar[] = [];

  const startOperator = (identity: string, port?: number): Promise<OperatorProcess> =>
    startOperatorProcess({ cp, namespace: ns, tlsDir: dir, ca: pki.caPem, identity, port });

  const budget = async (name: string): Promise<LlmBudget> =>
    (await client.get(LlmBudgets, name, ns)) as unknown as LlmBudget;

  const createBudget = (name: string, policy: string, limit: string) =>
    client.create(LlmBudgets, {
      apiVersion: 'llmproxy.io/v1alpha1',
      kind: 'LlmBudget',
      metadata: { name, namespace: ns },
      spec: {
        policyRef: { name: policy },
        limit,
        period: 'monthly',
        alertThresholds: [50, 80, 100],
        priceOverrides: [
          { model: 'gpt-4o-mini', inputPerMillionTokens: '1000', outputPerMillionTokens: '1000' },
        ],
      },
    } as KubeObject);

  const createPolicy = (name: string, app: string, models?: string[]) =>
    client.create(LlmPolicies, llmPolicy({ name, namespace: ns, app, baseURL: fake.url, models }));

  /** A Pod object as the webhook leaves it, and a sidecar process running as that pod. */
  const startPodSidecar = async (name: string, app: string, operator: OperatorProcess) => {
    const tokenFile = path.join(dir, `${name}.token`);
    await createInjectedPodWithToken(
      cp,
      client,
      { name, namespace: ns, labels: { app } },
      tokenFile,
    );
    const sidecar = await startSidecar({
      operator: {
        url: `https://127.0.0.1:${operator.port}`,
        tokenFile,
        caFile: path.join(dir, 'ca.pem'),
      },
      args: ['--pod-name', name, '--pod-namespace', ns, '--log-level', 'warn'],
      waitFor: 'ready',
      startTimeoutMs: 60_000,
    });
    sidecars.push(sidecar);
    return sidecar;
  };

  const call = async (sidecar: RunningSidecar, model = 'gpt-4o-mini') => {
    const res = await fetch(`${sidecar.url}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const body = (await res.json()) as { error?: { code?: string } };
    return { status: res.status, code: body.error?.code, retry: res.headers.get('x-should-retry') };
  };

  const events = async (reason: string, name: string): Promise<string[]> => {
    const res = await cp.kubectl([
      'get',
      'events.events.k8s.io',
      '-n',
      ns,
      '--field-selector',
      `reason=${reason},regarding.name=${name}`,
      '-o',
      'jsonpath={range .items[*]}{.note}{"\\n"}{end}',
    ]);
    return res.stdout.split('\n').filter(Boolean);
  };

  beforeAll(async () => {
    cp = await sharedControlPlane();
    await applyCrds(cp);
    client = new KubeClient(loadKubeConfig(cp.kubeconfigPath));
    ns = await freshNamespace('operator-budgets');
    await client.create(ServiceAccounts, { metadata: { name: 'app', namespace: ns } });
    fake = await startFakeProvider();
    dir = mkdtempSync(path.join(os.tmpdir(), 'llmproxy-budgets-e2e-'));
    pki = await writeServingTls(dir);
    operators.push(
      ...(await Promise.all([startOperator('replica-a'), startOperator('replica-b')])),
    );
  });

  afterAll(async () => {
    await Promise.all(sidecars.map((s) => s.stop()));
    await Promise.all(operators.map((op) => op.kill()));
    await fake?.close();
    client?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows a call through a managed sidecar as spend in the budget status', async () => {
    await createPolicy('meter', 'meter');
    await createBudget('meter', 'meter', '100');
    const sidecar = await startPodSidecar('meter-1', 'meter', operators[0]!);
    await waitUntil(async () => (await call(sidecar)).status === 200, 20_000, 200);
    await waitUntil(async () => (await budget('meter')).status?.spent === '0.019', 20_000, 200);
    const status = (await budget('meter')).status;
    expect(status).toMatchObject({ remaining: '99.981', state: 'Ok', percentUsed: '0.0%' });
    expect(status?.allowances?.[0]).toMatchObject({ pod: 'meter-1' });
    // The sidecar's own view: its lease on the budget, in dollars.
    const own = (await (await fetch(`${sidecar.adminUrl}/readyz`)).json()) as {
      budgets?: Array<{ budget: string; allowanceUsd: number; exhausted: boolean }>;
    };
    expect(own.budgets).toEqual([
      {
        budget: `${ns}/meter`,
        action: 'block',
        allowanceUsd: expect.any(Number),
        exhausted: false,
      },
    ]);
    expect(own.budgets?.[0]?.allowanceUsd).toBeGreaterThan(1.9);
    const table = await cp.kubectl(['get', 'llmbudgets', 'meter', '-n', ns]);
    expect(table.stdout).toMatch(/SPENT\s+LIMIT\s+USED %\s+STATE/);
    expect(table.stdout).toMatch(/meter\s+0\.019\s+100\s+0\.0%\s+Ok/);
  });

  it('holds 20 racing sidecars on two replicas to the limit plus one call each, counting every call once', async () => {
    await createPolicy('race', 'race');
    // 0.50 USD at 0.019 per call: 26 calls fit; 20 sidecars may each finish one more.
    await createBudget('race', 'race', '0.50');
    // Started four at a time: twenty Node processes booting at once swamp a small CI machine.
    const racers: RunningSidecar[] = [];
    for (let i = 0; i < 20; i += 4) {
      racers.push(
        ...(await Promise.all(
          [0, 1, 2, 3].map((j) =>
            startPodSidecar(`race-${i + j}`, 'race', operators[(i + j) % 2]!),
          ),
        )),
      );
    }
    const before = fake.requests.length;
    const refusals: Array<{ status: number; code?: string; retry: string | null }> = [];
    await Promise.all(
      racers.map(async (sidecar) => {
        for (let i = 0; i < 100; i++) {
          const result = await call(sidecar);
          if (result.status === 200) continue;
          refusals.push(result);
          if (result.code === 'budget_exhausted') return;
        }
      }),
    );
    const served = fake.requests.length - before;
    expect(refusals.every((r) => r.code === 'budget_exhausted')).toBe(true);
    expect(refusals[0]).toMatchObject({ status: 402, retry: 'false' });
    expect(served * CALL_MICROS).toBeGreaterThanOrEqual(500_000);
    expect(served * CALL_MICROS).toBeLessThanOrEqual(500_000 + 20 * CALL_MICROS);

    // Sidecars report their last spend when they stop; then the ledger holds every call once.
    await Promise.all(racers.map((s) => s.stop()));
    await waitUntil(
      async () => (await budget('race')).status?.spent === (served * 0.019).toFixed(3),
      20_000,
      200,
    );
    const status = (await budget('race')).status;
    expect(status?.state).toBe('Exhausted');
    expect(status?.alertedThresholds).toEqual([50, 80, 100]);
    expect(status?.conditions?.find((c) => c.type === 'Exhausted')).toMatchObject({
      status: 'True',
      reason: 'LimitReached',
    });
    // Each crossing is announced once, by whichever replica made it.
    await waitUntil(
      async () => (await events('BudgetExhausted', 'race')).length === 1,
      10_000,
      200,
    );
    const crossings = await events('ThresholdCrossed', 'race');
    expect(crossings.map((n) => n.split('%')[0]).sort()).toEqual(['100', '50', '80']);
  });

  it('keeps sidecars serving from their allowance while the operator is killed, and loses no spend', async () => {
    await createPolicy('outage', 'outage');
    await createBudget('outage', 'outage', '100');
    const op = operators[0]!;
    const sidecar = await startPodSidecar('outage-1', 'outage', op);
    for (let i = 0; i < 5; i++) expect((await call(sidecar)).status).toBe(200);
    await op.kill();
    // Its allowance (2% of the limit) covers these calls without the operator.
    for (let i = 0; i < 10; i++) expect((await call(sidecar)).status).toBe(200);
    operators[0] = await startOperator('replica-a', op.port);
    await waitUntil(async () => (await budget('outage')).status?.spent === '0.285', 30_000, 200);
    // Still serving, and nothing double counted after reconnecting.
    expect((await call(sidecar)).status).toBe(200);
    await waitUntil(async () => (await budget('outage')).status?.spent === '0.304', 30_000, 200);
  });

  it('starts a new period once, resetting spend', async () => {
    await createPolicy('period', 'period');
    await createBudget('period', 'period', '10');
    await waitUntil(
      async () => (await budget('period')).status?.periodStart !== undefined,
      20_000,
      200,
    );
    // Pretend last month's ledger was left behind, with spend in it.
    const current = await budget('period');
    await client.patchStatus(LlmBudgets, 'period', ns, {
      status: {
        ...current.status,
        spent: '9.00',
        periodStart: '2020-01-01T00:00:00Z',
        periodEnd: '2020-02-01T00:00:00Z',
      },
    });
    await waitUntil(async () => (await budget('period')).status?.spent === '0.00', 20_000, 200);
    const status = (await budget('period')).status;
    expect(Date.parse(status?.periodStart ?? '')).toBeGreaterThan(Date.parse('2026-01-01'));
    await waitUntil(
      async () => (await events('PeriodStarted', 'period')).length === 1,
      10_000,
      200,
    );
  });

  it("refuses a pod's report on a budget its policy does not name, counting nothing", async () => {
    const before = (await budget('race')).status?.spent;
    const token = readFileSync(path.join(dir, 'meter-1.token'), 'utf8');
    const body = JSON.stringify({
      epoch: 'intruder-0001',
      reports: [{ budget: `${ns}/race`, seq: 1, spentMicros: 0, want: true }],
    });
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = https.request(`https://127.0.0.1:${operators[1]!.port}/v1/budget/lease`, {
        method: 'POST',
        ca: pki.caPem,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toEqual({
      grants: [{ budget: `${ns}/race`, error: 'unknown_budget' }],
    });
    const after = await budget('race');
    expect(after.status?.spent).toBe(before);
    expect(after.status?.allowances?.some((a) => a.pod === 'meter-1')).toBe(false);
  });

  it('says once, with the fix, when a model has no price and so costs a budget nothing', async () => {
    await createPolicy('unpriced', 'unpriced', ['in-house-model-7b']);
    await createBudget('unpriced', 'unpriced', '1');
    const sidecar = await startPodSidecar('unpriced-1', 'unpriced', operators[1]!);
    for (let i = 0; i < 3; i++) expect((await call(sidecar, 'in-house-model-7b')).status).toBe(200);
    await sidecar.waitForOutput('unpriced_model');
    expect(sidecar.output().match(/unpriced_model/g)).toHaveLength(1);
    expect(sidecar.output()).toContain('add a priceOverride to the LlmBudget');
  });

  it('never prints a pod token', () => {
    const printed =
      operators.map((o) => o.output()).join('\n') + sidecars.map((s) => s.output()).join('\n');
    expect(printed).not.toMatch(/eyJhbGciOi[A-Za-z0-9_-]{20,}/);
    expect(printed).not.toContain('Bearer ');
  });
});
