// Scale of policy distribution against the real API server: many sidecars (real Pods, real
// bound tokens, real TokenReview) connected to one distribution server; an LlmPolicy edit must
// reach every one of them, acked, with p99 under a second.
//   LLMPROXY_SCALE_SIDECARS=1000 NODE_OPTIONS=--experimental-vm-modules \
//     npx jest --selectProjects e2e -- test/e2e/operator-scale
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PolicySource } from '../../operator/controllers/policy-source.js';
import {
  startDistributionServer,
  type DistributionServer,
} from '../../operator/distribution/index.js';
import {
  KubeClient,
  LlmPolicies,
  Pods,
  ServiceAccounts,
  loadKubeConfig,
  type KubeObject,
} from '../../operator/kube/index.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { freshNamespace, sharedControlPlane } from '../support/e2e.js';
import { createTestPki } from '../support/tls.js';

const SIDECARS = Number(process.env['LLMPROXY_SCALE_SIDECARS'] ?? 200);
const FLEET_PROCESSES = 2;
const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} };
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function waitFor(
  check: () => boolean,
  timeoutMs: number,
  describe: () => string = () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met in time ${describe()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function inBatches<T>(items: T[], size: number, run: (item: T) => Promise<void>) {
  for (let i = 0; i < items.length; i += size) {
    await Promise.all(items.slice(i, i + size).map(run));
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const policy = (ns: string, allow: string[]): KubeObject =>
  ({
    apiVersion: 'llmproxy.io/v1alpha1',
    kind: 'LlmPolicy',
    metadata: { name: 'fleet', namespace: ns },
    spec: {
      podSelector: { matchLabels: { app: 'fleet' } },
      providers: [
        {
          name: 'local',
          type: 'openai-compatible',
          baseURL: 'http://vllm.models.svc.cluster.local:8000/v1',
          credentials: { none: {} },
        },
      ],
      models: [{ provider: 'local', allow }],
    },
  }) as KubeObject;

describe(`policy distribution to ${SIDECARS} sidecars`, () => {
  let client: KubeClient;
  let ns: string;
  let dir: string;
  let source: PolicySource;
  let server: DistributionServer;
  const fleets: ChildProcess[] = [];
  const receivedAt = new Map<number, Map<string, number>>();
  const uids: string[] = [];
  const ackedAt = new Map<string, number>();

  beforeAll(async () => {
    const cp = await sharedControlPlane();
    const crds = await cp.kubectl(['apply', '-f', path.join(repoRoot, 'crds')]);
    if (crds.code !== 0) throw new Error(`applying CRDs failed: ${crds.stderr}`);
    await cp.kubectl(['wait', '--for=condition=Established', 'crd/llmpolicies.llmproxy.io']);
    client = new KubeClient(loadKubeConfig(cp.kubeconfigPath));
    ns = await freshNamespace('operator-scale');
    await client.create(ServiceAccounts, { metadata: { name: 'app', namespace: ns } });
    await client.create(LlmPolicies, policy(ns, ['llama-3-*']));
    dir = mkdtempSync(path.join(os.tmpdir(), 'llmproxy-scale-'));
    const pki = await createTestPki();
    writeFileSync(path.join(dir, 'ca.pem'), pki.caPem);

    const indices = [...Array(SIDECARS).keys()];
    await inBatches(indices, 25, async (i) => {
      const pod = await client.create(Pods, {
        metadata: {
          name: `fleet-${i}`,
          namespace: ns,
          labels: { app: 'fleet' },
          annotations: { 'llmproxy.io/status': '{"version":"e2e"}' },
        },
        spec: { serviceAccountName: 'app', containers: [{ name: 'app', image: 'busybox' }] },
      });
      uids[i] = pod.metadata?.uid ?? '';
      const request = await client.request<{ status: { token: string } }>(
        `/api/v1/namespaces/${ns}/serviceaccounts/app/token`,
        {
          method: 'POST',
          body: {
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenRequest',
            spec: {
              audiences: ['llmproxy.io'],
              expirationSeconds: 3600,
              boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: `fleet-${i}`, uid: uids[i] },
            },
          },
        },
      );
      writeFileSync(path.join(dir, `token-${i}`), request.status.token);
    });

    source = new PolicySource({
      client,
      log: quiet,
      namespace: ns,
      onChange: (affects) => server.notify(affects),
    });
    server = await startDistributionServer({
      host: '127.0.0.1',
      port: 0,
      tls: { cert: pki.certPem, key: pki.keyPem },
      reviewToken: (token, audiences) => client.tokenReview(token, audiences),
      policyFor: (pod) => source.policyFor(pod),
      log: quiet,
      onAck: (pod, ack) => {
        if (ack.ok) ackedAt.set(`${pod.podUid} ${ack.version}`, Date.now());
      },
    });
    await source.start();
    for (const i of indices) receivedAt.set(i, new Map());
    // The sidecars run in a few processes of their own, as they would on many nodes.
    const perProcess = Math.ceil(SIDECARS / FLEET_PROCESSES);
    for (let p = 0; p * perProcess < SIDECARS; p++) {
      const first = p * perProcess;
      const tokenFiles = indices
        .slice(first, first + perProcess)
        .map((i) => path.join(dir, `token-${i}`));
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          path.join(repoRoot, 'operator/bench/fleet.ts'),
          JSON.stringify({ url: server.url, caFile: path.join(dir, 'ca.pem'), tokenFiles }),
        ],
        {
          cwd: repoRoot,
          stdio: ['ignore', 'pipe', 'inherit'],
          env: { ...process.env, NODE_OPTIONS: '' },
        },
      );
      fleets.push(child);
      let buffered = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) {
          const { i, version, at } = JSON.parse(line) as { i: number; version: string; at: number };
          receivedAt.get(first + i)?.set(version, at);
        }
      });
    }
  }, 600_000);

  afterAll(async () => {
    await Promise.all(
      fleets.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
    await server?.close();
    await source?.stop();
    client?.close();
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  const diagnose = () =>
    JSON.stringify({
      server: server.stats(),
      received: [...receivedAt.values()].filter((seen) => seen.size > 0).length,
    });

  it('delivers an LlmPolicy edit to every sidecar, acked, with p99 under a second', async () => {
    const connectStart = Date.now();
    await waitFor(
      () => uids.every((uid) => server.podState(uid)?.acked !== undefined),
      300_000,
      diagnose,
    );
    const connectMs = Date.now() - connectStart;

    const before = server.podState(uids[0] ?? '')?.acked;
    const started = Date.now();
    await client.patch(LlmPolicies, 'fleet', ns, {
      spec: { models: [{ provider: 'local', allow: ['llama-3-*', 'qwen-*'] }] },
    });
    await waitFor(
      () => (server.podState(uids[0] ?? '')?.sent ?? before) !== before,
      10_000,
      diagnose,
    );
    const version = server.podState(uids[0] ?? '')?.sent ?? '';
    await waitFor(
      () => [...receivedAt.values()].every((seen) => seen.has(version)),
      60_000,
      diagnose,
    );
    const latencies = [...receivedAt.values()]
      .map((seen) => (seen.get(version) ?? Infinity) - started)
      .sort((a, b) => a - b);
    await waitFor(
      () => uids.every((uid) => server.podState(uid)?.acked === version),
      60_000,
      diagnose,
    );
    const ackLatencies = uids
      .map((uid) => (ackedAt.get(`${uid} ${version}`) ?? Infinity) - started)
      .sort((a, b) => a - b);

    const figures = {
      sidecars: SIDECARS,
      initialConnectAndAckMs: connectMs,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: latencies.at(-1),
      ackedP50Ms: percentile(ackLatencies, 50),
      ackedP99Ms: percentile(ackLatencies, 99),
      ackedMaxMs: ackLatencies.at(-1),
    };
    process.stdout.write(`[operator-scale] ${JSON.stringify(figures)}\n`);
    expect(figures.p99Ms).toBeLessThan(1000);
    expect(figures.ackedP99Ms).toBeLessThan(1000);
    expect(server.stats().nacks).toBe(0);
  }, 600_000);
});
