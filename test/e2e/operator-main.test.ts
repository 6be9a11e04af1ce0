// The operator as a process (dist/operator/main.js) against the real API server: a sidecar gets its
// policy from it, keeps enforcing it while the operator is killed, and receives the change made
// meanwhile once the operator is back; SIGTERM releases the Lease.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import {
  KubeClient,
  Leases,
  LlmPolicies,
  Pods,
  ServiceAccounts,
  loadKubeConfig,
  type KubeObject,
} from '../../operator/kube/index.js';
import { connectToOperator, type OperatorConnection } from '../../sidecar/control/index.js';
import type { CompiledPolicy } from '../../sidecar/policy/compiled.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { createInjectedPodWithToken, injectedPod } from '../support/pods.js';
import { freshNamespace, sharedControlPlane, type ControlPlane } from '../support/e2e.js';
import {
  applyCrds,
  startOperatorProcess,
  writeServingTls,
  type OperatorProcess,
} from '../support/operator-process.js';
import { freePort } from '../support/sidecar.js';
import type { TestPki } from '../support/tls.js';

const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} };

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const allowed = (p: CompiledPolicy | undefined) =>
  (p?.providers ?? []).flatMap((g) => g.models.allow.map((r) => r.pattern));

describe('the operator process', () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let ns: string;
  let dir: string;
  let pki: TestPki;
  let port: number;
  let metricsPort: number;
  let operator: ChildProcess | undefined;
  let sidecar: OperatorConnection | undefined;
  const runs: OperatorProcess[] = [];
  const received: CompiledPolicy[] = [];

  /** The watch answer for `token`, retried until 403: the pod may not be in the operator's cache
   * yet (unknown pods wait, fail-closed). */
  const watchUntilRefused = async (token: string) => {
    let res = await get(`https://127.0.0.1:${port}/v1/policy/watch`, token);
    const deadline = Date.now() + 10_000;
    while (res.status !== 403 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      res = await get(`https://127.0.0.1:${port}/v1/policy/watch`, token).catch(() => res);
    }
    return res;
  };

  const startOperator = async (): Promise<ChildProcess> => {
    const started = await startOperatorProcess({
      cp,
      namespace: ns,
      tlsDir: dir,
      ca: pki.caPem,
      port,
      metricsPort,
    });
    runs.push(started);
    return started.process;
  };
  /** What every operator process of this file printed. */
  const output = () => runs.map((r) => r.output()).join('');

  const get = (url: string, token?: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const headers = token ? { authorization: `Bearer ${token}` } : undefined;
      const req = https.get(url, { ca: pki.caPem, headers }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });

  const exited = (child: ChildProcess): Promise<number | null> =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
      child.once('exit', (code) => resolve(code));
    });

  beforeAll(async () => {
    cp = await sharedControlPlane();
    await applyCrds(cp);
    await cp.kubectl(['wait', '--for=condition=Established', 'crd/llmpolicies.llmproxy.io']);
    client = new KubeClient(loadKubeConfig(cp.kubeconfigPath));
    ns = await freshNamespace('operator-main');
    await client.create(ServiceAccounts, { metadata: { name: 'app', namespace: ns } });
    await client.create(LlmPolicies, {
      apiVersion: 'llmproxy.io/v1alpha1',
      kind: 'LlmPolicy',
      metadata: { name: 'demo', namespace: ns },
      spec: {
        podSelector: { matchLabels: { app: 'demo' } },
        providers: [
          {
            name: 'local',
            type: 'openai-compatible',
            baseURL: 'http://vllm.models.svc.cluster.local:8000/v1',
            credentials: { none: {} },
          },
        ],
        models: [{ provider: 'local', allow: ['llama-3-*'] }],
      },
    } as KubeObject);
    dir = mkdtempSync(path.join(os.tmpdir(), 'llmproxy-operator-main-'));
    pki = await writeServingTls(dir);
    await createInjectedPodWithToken(
      cp,
      client,
      { name: 'demo-1', namespace: ns, labels: { app: 'demo' } },
      path.join(dir, 'token'),
    );
    port = await freePort();
    metricsPort = await freePort();
  });

  afterAll(async () => {
    await sidecar?.close();
    if (operator && operator.exitCode === null) operator.kill('SIGKILL');
    client?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the pod its policy', async () => {
    operator = await startOperator();
    sidecar = connectToOperator({
      url: `https://127.0.0.1:${port}`,
      tokenFile: path.join(dir, 'token'),
      caFile: path.join(dir, 'ca.pem'),
      log: quiet,
      onPolicy: (p) => received.push(p),
      backoff: { baseMs: 100, maxMs: 1000 },
    });
    await waitFor(() => received.length === 1);
    expect(allowed(received[0])).toEqual(['llama-3-*']);
    await waitFor(
      async () =>
        (await client.get(Leases, 'llmproxy-operator', ns))?.spec?.holderIdentity === 'operator-0',
    );
  });

  it('refuses (403, counted) a pod that did not opt in but projects an llmproxy.io token itself', async () => {
    // Selected by the policy, but never injected: no llmproxy.io/status annotation.
    const stray = await client.create(Pods, {
      metadata: { name: 'stray-1', namespace: ns, labels: { app: 'demo' } },
      spec: { serviceAccountName: 'app', containers: [{ name: 'app', image: 'busybox' }] },
    });
    const token = await cp.tokenFor(ns, 'app', {
      audiences: ['llmproxy.io'],
      boundPod: { name: 'stray-1', uid: stray.metadata?.uid ?? '' },
    });
    const res = await watchUntilRefused(token);
    expect(res.status).toBe(403);
    expect(res.body).not.toContain('llama');
    const metrics = await get(`https://127.0.0.1:${metricsPort}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(
      /llmproxy_operator_auth_failures_total\{reason="not_injected"\} [1-9]/,
    );
    expect(metrics.body).toMatch(/llmproxy_operator_connected_sidecars 1\b/);
    expect(metrics.body).toMatch(/llmproxy_operator_policy_acks_total\{result="ack"\} [1-9]/);
  });

  it('refuses a pod that wrote the status annotation itself and hands the token to its app', async () => {
    // The annotation is only a claim; the app container mounting the token volume gives it away.
    const fixture = injectedPod({ name: 'forger-1', namespace: ns, labels: { app: 'demo' } });
    fixture.spec.containers[0] = {
      name: 'app',
      image: 'busybox',
      volumeMounts: [{ name: 'llmproxy-token', mountPath: '/steal', readOnly: true }],
    } as (typeof fixture.spec.containers)[number];
    const forger = await client.create(Pods, fixture);
    const token = await cp.tokenFor(ns, 'app', {
      audiences: ['llmproxy.io'],
      boundPod: { name: 'forger-1', uid: forger.metadata?.uid ?? '' },
    });
    const res = await watchUntilRefused(token);
    expect(res.status).toBe(403);
    expect(res.body).not.toContain('llama');
    await waitFor(() => output().includes('container app mounts llmproxy-token'));
  });

  it('keeps the sidecar on its last policy while the operator is killed, and catches up after', async () => {
    operator?.kill('SIGKILL');
    await exited(operator as ChildProcess);
    await waitFor(() => sidecar?.state().connected === false);
    await client.patch(LlmPolicies, 'demo', ns, {
      spec: { models: [{ provider: 'local', allow: ['llama-3-*', 'qwen-*'] }] },
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(sidecar?.state().policyVersion).toBe(received[0]?.version);

    operator = await startOperator();
    await waitFor(() => allowed(received.at(-1)).includes('qwen-*'));
    expect(sidecar?.state().connected).toBe(true);
  });

  it('releases the Lease on SIGTERM', async () => {
    operator?.kill('SIGTERM');
    expect(await exited(operator as ChildProcess)).toBe(0);
    const lease = await client.get(Leases, 'llmproxy-operator', ns);
    expect(lease?.spec?.holderIdentity ?? null).toBeNull();
    // Nothing secret in what the operator printed.
    const token = (await import('node:fs')).readFileSync(path.join(dir, 'token'), 'utf8');
    expect(output()).not.toContain(token.trim());
  });
});
