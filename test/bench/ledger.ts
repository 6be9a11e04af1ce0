// `make bench-ledger`: the budget ledger under load. Simulated sidecars (the real managed-mode
// client and the real allowances, many per process) spend against one LlmBudget through a real
// operator process and a real API server. Reports how long a call waits for an allowance, how
// many status writes the spend costs, and whether the status ends up holding every dollar once.
// Writes .dev/bench-ledger.md.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { LlmBudget } from '../../crds/v1alpha1/index.js';
import {
  KubeClient,
  LlmBudgets,
  LlmPolicies,
  ServiceAccounts,
  loadKubeConfig,
  type KubeObject,
} from '../../operator/kube/index.js';
import { BudgetAllowances } from '../../sidecar/budget/allowances.js';
import { connectToOperator, type OperatorConnection } from '../../sidecar/control/index.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { startControlPlane } from '../support/controlplane.js';
import { createInjectedPodWithToken } from '../support/pods.js';
import { llmPolicy } from '../support/policies.js';
import { freePort, waitUntil } from '../support/sidecar.js';
import {
  applyCrds,
  startOperatorProcess,
  writeServingTls,
  type OperatorProcess,
} from '../support/operator-process.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SIDECARS = Number(process.env.LEDGER_SIDECARS ?? 200);
const SECONDS = Number(process.env.LEDGER_SECONDS ?? 20);
/** Each simulated sidecar makes a call this often (ms), each costing COST micro-dollars. */
const CALL_EVERY_MS = Number(process.env.LEDGER_CALL_EVERY_MS ?? 100);
const COST = 1500;
const NS = 'ledger-bench';
const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} };

interface Sidecar {
  connection: OperatorConnection;
  allowances: BudgetAllowances;
  ready: boolean;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'llmproxy-ledger-bench-'));
  const log = (line: string) => process.stderr.write(`[ledger-bench] ${line}\n`);
  log(`starting a control plane; ${SIDECARS} sidecars, ${SECONDS} s`);
  const cp = await startControlPlane();
  let operator: OperatorProcess | undefined;
  const sidecars: Sidecar[] = [];
  try {
    await applyCrds(cp);
    await cp.kubectl(['create', 'namespace', NS]);
    const client = new KubeClient(loadKubeConfig(cp.kubeconfigPath));
    await client.create(ServiceAccounts, { metadata: { name: 'app', namespace: NS } });
    await client.create(
      LlmPolicies,
      llmPolicy({ name: 'bench', namespace: NS, app: 'bench', baseURL: 'https://api.openai.com' }),
    );
    await client.create(LlmBudgets, {
      apiVersion: 'llmproxy.io/v1alpha1',
      kind: 'LlmBudget',
      metadata: { name: 'bench', namespace: NS },
      spec: {
        policyRef: { name: 'bench' },
        limit: process.env.LEDGER_LIMIT ?? '100',
        period: 'monthly',
      },
    } as KubeObject);

    log('creating pods and minting their tokens');
    const tokenFiles: string[] = [];
    for (let i = 0; i < SIDECARS; i += 25) {
      const batch = Array.from({ length: Math.min(25, SIDECARS - i) }, (_, j) => i + j);
      await Promise.all(
        batch.map(async (n) => {
          const name = `bench-${n}`;
          const file = join(dir, `${name}.token`);
          const fixture = { name, namespace: NS, labels: { app: 'bench' } };
          await createInjectedPodWithToken(cp, client, fixture, file);
          tokenFiles[n] = file;
        }),
      );
    }

    const pki = await writeServingTls(dir);
    const metricsPort = await freePort();
    operator = await startOperatorProcess({
      cp,
      namespace: NS,
      tlsDir: dir,
      ca: pki.caPem,
      metricsPort,
      args: ['--log-level', 'warn'],
    });
    const get = (url: string) =>
      new Promise<string>((resolveGet, reject) => {
        https
          .get(url, { ca: pki.caPem }, (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolveGet(body));
          })
          .on('error', reject);
      });

    log('connecting the sidecars');
    const connectStart = performance.now();
    for (const [i, tokenFile] of tokenFiles.entries()) {
      if (i > 0 && i % 50 === 0) await new Promise((r) => setTimeout(r, 200));
      const holder: { sidecar?: Sidecar } = {};
      const connection = connectToOperator({
        url: operator.url,
        tokenFile,
        caFile: join(dir, 'ca.pem'),
        log: quiet,
        onPolicy: (policy) => {
          holder.sidecar?.allowances.setBudgets(policy.budgets ?? []);
          if (holder.sidecar) holder.sidecar.ready = true;
        },
      });
      const allowances = new BudgetAllowances({
        log: quiet,
        transport: { lease: (request) => connection.lease(request) },
      });
      holder.sidecar = { connection, allowances, ready: false };
      sidecars.push(holder.sidecar);
    }
    await waitUntil(() => sidecars.every((s) => s.ready), 120_000, 100);
    log(
      `all ${SIDECARS} sidecars hold the policy after ${Math.round(performance.now() - connectStart)} ms`,
    );

    const metricsBefore = await get(`https://127.0.0.1:${metricsPort}/metrics`);
    const waits: number[] = [];
    let awaited = 0;
    let refused = 0;
    let spent = 0;
    const deadline = Date.now() + SECONDS * 1000;
    await Promise.all(
      sidecars.map(async (s, i) => {
        await new Promise((r) => setTimeout(r, (i * CALL_EVERY_MS) / SIDECARS));
        while (Date.now() < deadline) {
          const started = performance.now();
          const pending = s.allowances.admit();
          const verdict = pending instanceof Promise ? (awaited++, await pending) : pending;
          waits.push(performance.now() - started);
          if (verdict.ok) {
            s.allowances.spend(COST);
            spent += COST;
          } else refused++;
          await new Promise((r) => setTimeout(r, CALL_EVERY_MS));
        }
      }),
    );
    log('closing the sidecars (final reports)');
    await Promise.all(sidecars.map((s) => s.allowances.close()));
    const settleStart = performance.now();
    let status: LlmBudget['status'];
    await waitUntil(
      async () => {
        status = ((await client.get(LlmBudgets, 'bench', NS)) as unknown as LlmBudget).status;
        return Math.round(Number(status?.spent ?? 0) * 1e6) === spent;
      },
      30_000,
      200,
    ).catch(() => undefined);
    const settleMs = performance.now() - settleStart;
    const counted = Math.round(Number(status?.spent ?? 0) * 1e6);
    const metricsAfter = await get(`https://127.0.0.1:${metricsPort}/metrics`);
    const counter = (text: string, name: string) =>
      Number(new RegExp(`^${name.replace(/[{}"=]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
    const delta = (name: string) => counter(metricsAfter, name) - counter(metricsBefore, name);
    const writes = delta('llmproxy_operator_budget_ledger_writes_total{result="ok"}');
    const failures = delta('llmproxy_operator_budget_ledger_writes_total{result="error"}');
    const reports = delta('llmproxy_operator_budget_reports_total{result="received"}');
    const statusBytes = JSON.stringify(await client.get(LlmBudgets, 'bench', NS)).length;
    client.close();

    waits.sort((a, b) => a - b);
    const calls = waits.length;
    const lines = [
      `# Budget ledger under load (${new Date().toISOString()})`,
      '',
      `${SIDECARS} simulated sidecars (real managed client and allowances, one process) against one operator process and a real kube-apiserver/etcd, one LlmBudget, a call every ${CALL_EVERY_MS} ms per sidecar for ${SECONDS} s, ${cpus().length} CPUs.`,
      '',
      '| measure | value |',
      '|---|---|',
      `| calls admitted / refused | ${calls - refused} / ${refused} |`,
      `| calls that waited for an allowance | ${awaited} (${((awaited * 100) / Math.max(1, calls)).toFixed(2)}%) |`,
      `| admission wait p50 / p99 / max | ${percentile(waits, 50).toFixed(3)} / ${percentile(waits, 99).toFixed(3)} / ${(waits.at(-1) ?? 0).toFixed(1)} ms |`,
      `| spend reports received by the operator | ${reports} (${(reports / SECONDS).toFixed(1)}/s) |`,
      `| status writes (ok / failed) | ${writes} / ${failures} (${(writes / SECONDS).toFixed(1)}/s) |`,
      `| LlmBudget object size at the end | ${(statusBytes / 1024).toFixed(1)} KiB |`,
      `| spend made / counted in status | ${(spent / 1e6).toFixed(6)} / ${(counted / 1e6).toFixed(6)} USD (${counted === spent ? 'exact' : 'MISMATCH'}) |`,
      `| status caught up after the last report | ${Math.round(settleMs)} ms |`,
    ];
    const report = `${lines.join('\n')}\n`;
    process.stdout.write(report);
    mkdirSync(join(ROOT, '.dev'), { recursive: true });
    writeFileSync(join(ROOT, '.dev/bench-ledger.md'), report);
    if (counted !== spent) process.exitCode = 1;
  } finally {
    await Promise.all(sidecars.map((s) => s.connection.close()));
    await operator?.kill();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`ledger bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
