// The operator as a process (operator/main.ts) against the real API server: a sidecar gets its
// policy from it, keeps enforcing it while the operator is killed, and receives the change made
// meanwhile once the operator is back; SIGTERM releases the Lease.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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
import { injectedPod } from '../support/pods.js';
import { freshNamespace, sharedControlPlane, type ControlPlane } from '../support/e2e.js';
import { createTestPki, type TestPki } from '../support/tls.js';

const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} };
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
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
  let output = '';
  const received: CompiledPolicy[] = [];

  const startOperator = async (): Promise<ChildProcess> => {
    const child = spawn(
      process.execPath,
      [
        // In-process loader, not the tsx CLI: the CLI runs the program in a child process,
        // and the test must be able to kill the operator itself.
        '--import',
        'tsx',
        path.join(repoRoot, 'operator/main.ts'),
        '--kubeconfig',
        cp.kubeconfigPath,
        '--tls-cert-file',
        path.join(dir, 'tls.crt'),
        '--tls-key-file',
        path.join(dir, 'tls.key'),
        '--listen',
        `127.0.0.1:${port}`,
        '--namespace',
        ns,
        '--leader-election-namespace',
        ns,
        '--identity',
        'operator-0',
        '--metrics-listen',
        `127.0.0.1:${metricsPort}`,
      ],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NODE_OPTIONS: '' },
      },
    );
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    await waitFor(async () => (await readyz()) === 200, 60_000);
    return child;
  };

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

  const readyz = (): Promise<number> =>
    new Promise((resolve) => {
      const req = https.get(`https://127.0.0.1:${port}/readyz`, { ca: pki.caPem }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
    });

  const exited = (child: ChildProcess): Promise<number | null> =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
      child.once('exit', (code) => resolve(code));
    });

  beforeAll(async () => {
    cp = await sharedControlPlane();
    const crds = await cp.kubectl(['apply', '-f', path.join(repoRoot, 'crds')]);
    if (crds.code !== 0) throw new Error(`applying CRDs failed: ${crds.stderr}`);
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
    const pod = await client.create(
      Pods,
      injectedPod({ name: 'demo-1', namespace: ns, labels: { app: 'demo' } }),
    );
    pki = await createTestPki();
    dir = mkdtempSync(path.join(os.tmpdir(), 'llmproxy-operator-main-'));
    writeFileSync(path.join(dir, 'ca.pem'), pki.caPem);
    writeFileSync(path.join(dir, 'tls.crt'), pki.certPem);
    writeFileSync(path.join(dir, 'tls.key'), pki.keyPem, { mode: 0o600 });
    writeFileSync(
      path.join(dir, 'token'),
      await cp.tokenFor(ns, 'app', {
        audiences: ['llmproxy.io'],
        boundPod: { name: 'demo-1', uid: pod.metadata?.uid ?? '' },
      }),
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
    let res = await get(`https://127.0.0.1:${port}/v1/policy/watch`, token);
    // The pod may not be in the operator's cache yet (unknown pods wait, fail-closed).
    const deadline = Date.now() + 10_000;
    while (res.status !== 403 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      res = await get(`https://127.0.0.1:${port}/v1/policy/watch`, token).catch(() => res);
    }
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
    let res = await get(`https://127.0.0.1:${port}/v1/policy/watch`, token);
    const deadline = Date.now() + 10_000;
    while (res.status !== 403 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      res = await get(`https://127.0.0.1:${port}/v1/policy/watch`, token).catch(() => res);
    }
    expect(res.status).toBe(403);
    expect(res.body).not.toContain('llama');
    await waitFor(() => output.includes('container app mounts llmproxy-token'));
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
    expect(output).not.toContain(token.trim());
  });
});
