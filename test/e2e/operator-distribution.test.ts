// Policy distribution end to end against the real API server: real Pod objects, bound
// service-account tokens minted by the TokenRequest API and checked with TokenReview, the
// sidecar's managed-mode client on the other side of a TLS 1.3 stream.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import {
  startDistributionServer,
  type DistributionServer,
} from '../../operator/distribution/index.js';
import { KubeClient, Pods, ServiceAccounts, loadKubeConfig } from '../../operator/kube/index.js';
import { connectToOperator, type OperatorConnection } from '../../sidecar/control/index.js';
import {
  COMPILED_POLICY_API_VERSION,
  parseCompiledPolicy,
  type CompiledPolicy,
} from '../../sidecar/policy/compiled.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { freshNamespace, sharedControlPlane, type ControlPlane } from '../support/e2e.js';
import { createTestPki, type TestPki } from '../support/tls.js';

const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} };

function policy(models: string[]): CompiledPolicy {
  return parseCompiledPolicy({
    apiVersion: COMPILED_POLICY_API_VERSION,
    kind: 'CompiledPolicy',
    providers: [
      {
        name: 'openai',
        type: 'openai',
        baseURL: 'https://api.openai.com/v1',
        credentials: { none: {} },
        models: { allow: models.map((pattern) => ({ pattern })), deny: [] },
      },
    ],
  });
}

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('policy distribution against a real API server', () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let ns: string;
  let pki: TestPki;
  let dir: string;
  let server: DistributionServer;
  const uids: Record<string, string> = {};
  const policies = new Map<string, CompiledPolicy>();
  const clients: OperatorConnection[] = [];

  const createPod = async (name: string): Promise<string> => {
    const pod = await client.create(Pods, {
      metadata: { name, namespace: ns, labels: { app: name } },
      spec: { serviceAccountName: 'app', containers: [{ name: 'app', image: 'busybox' }] },
    });
    return pod.metadata?.uid ?? '';
  };

  const podToken = (pod: string, audiences = ['llmproxy.io']) =>
    cp.tokenFor(ns, 'app', { audiences, boundPod: { name: pod, uid: uids[pod] ?? '' } });

  const start = (port = 0) =>
    startDistributionServer({
      host: '127.0.0.1',
      port,
      tls: { cert: pki.certPem, key: pki.keyPem },
      reviewToken: (token, audiences) => client.tokenReview(token, audiences),
      policyFor: (pod) => (pod.namespace === ns ? policies.get(pod.podName) : undefined),
      log: quiet,
      heartbeatMs: 500,
    });

  const status = (pathAndQuery: string, token?: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = https.request(`${server.url}${pathAndQuery}`, {
        ca: pki.caPem,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      req.on('response', (res) => {
        resolve(res.statusCode ?? 0);
        res.destroy();
      });
      req.on('error', reject);
      req.end();
    });

  beforeAll(async () => {
    cp = await sharedControlPlane();
    client = new KubeClient(loadKubeConfig(cp.kubeconfigPath));
    ns = await freshNamespace('operator-dist');
    await client.create(ServiceAccounts, { metadata: { name: 'app', namespace: ns } });
    for (const pod of ['pod-a', 'pod-b']) uids[pod] = await createPod(pod);
    pki = await createTestPki();
    dir = mkdtempSync(path.join(os.tmpdir(), 'llmproxy-dist-e2e-'));
    writeFileSync(path.join(dir, 'ca.pem'), pki.caPem);
    server = await start();
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server.close();
    client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers a pod its own policy over a bound token, acked, and pushes changes live', async () => {
    policies.set('pod-a', policy(['gpt-4o*']));
    policies.set('pod-b', policy(['claude-*']));
    const tokenFile = path.join(dir, 'pod-a.token');
    writeFileSync(tokenFile, await podToken('pod-a'));
    const received: CompiledPolicy[] = [];
    const sidecar = connectToOperator({
      url: server.url,
      tokenFile,
      caFile: path.join(dir, 'ca.pem'),
      log: quiet,
      podName: 'pod-a',
      onPolicy: (p) => received.push(p),
      backoff: { baseMs: 100, maxMs: 1000 },
    });
    clients.push(sidecar);
    const uid = uids['pod-a'] ?? '';
    await waitFor(() => server.podState(uid)?.acked === policies.get('pod-a')?.version);
    expect(received.map((p) => p.providers[0]?.models.allow[0]?.pattern)).toEqual(['gpt-4o*']);

    policies.set('pod-a', policy(['gpt-4o*', 'o3-mini']));
    server.notify((pod) => pod.podName === 'pod-a');
    await waitFor(() => server.podState(uid)?.acked === policies.get('pod-a')?.version);
    expect(sidecar.state().policyVersion).toBe(policies.get('pod-a')?.version);
    // pod-b's policy never reached pod-a.
    expect(received.some((p) => p.version === policies.get('pod-b')?.version)).toBe(false);
  });

  it("refuses a token for pod A asking for pod B's policy with 403", async () => {
    const before = server.stats().forbidden;
    expect(await status('/v1/policy/watch?pod=pod-b', await podToken('pod-a'))).toBe(403);
    expect(server.stats().forbidden).toBe(before + 1);
  });

  it('refuses a wrong-audience token, an unbound token and no token with 401', async () => {
    const before = server.stats().authFailures;
    const wrongAudience = await podToken('pod-a', ['https://kubernetes.default.svc.cluster.local']);
    expect(await status('/v1/policy/watch', wrongAudience)).toBe(401);
    const unbound = await cp.tokenFor(ns, 'app', { audiences: ['llmproxy.io'] });
    expect(await status('/v1/policy/watch', unbound)).toBe(401);
    expect(await status('/v1/policy/watch')).toBe(401);
    const after = server.stats().authFailures;
    expect(after.invalid_token).toBe(before.invalid_token + 1);
    expect(after.not_a_pod_token).toBe(before.not_a_pod_token + 1);
    expect(after.missing_token).toBe(before.missing_token + 1);
  });

  it('refuses the token of a pod that no longer exists', async () => {
    uids['pod-gone'] = await createPod('pod-gone');
    const token = await podToken('pod-gone');
    await client.delete(Pods, 'pod-gone', ns);
    expect(await status('/v1/policy/watch', token)).toBe(401);
  });

  it('keeps the last policy while the operator is down, then reconnects with a rotated token', async () => {
    policies.set('pod-b', policy(['claude-*']));
    const tokenFile = path.join(dir, 'pod-b.token');
    writeFileSync(tokenFile, await podToken('pod-b'));
    const received: CompiledPolicy[] = [];
    const sidecar = connectToOperator({
      url: server.url,
      tokenFile,
      caFile: path.join(dir, 'ca.pem'),
      log: quiet,
      onPolicy: (p) => received.push(p),
      backoff: { baseMs: 100, maxMs: 500 },
    });
    clients.push(sidecar);
    await waitFor(() => received.length === 1 && sidecar.state().connected);
    const first = received[0]?.version;

    const port = server.port;
    await server.close();
    await waitFor(() => !sidecar.state().connected);
    expect(sidecar.state().policyVersion).toBe(first);

    // While it is away the kubelet rotates the token; the sidecar reads the new one.
    writeFileSync(tokenFile, await podToken('pod-b'));
    policies.set('pod-b', policy(['claude-*', 'gpt-4o-mini']));
    server = await start(port);
    await waitFor(() => received.length === 2 && sidecar.state().connected, 15_000);
    expect(sidecar.state().policyVersion).toBe(policies.get('pod-b')?.version);
    await waitFor(
      () => server.podState(uids['pod-b'] ?? '')?.acked === sidecar.state().policyVersion,
    );
  });
});
