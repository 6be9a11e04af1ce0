// The distribution server and the sidecar's managed-mode client against each other, over
// real TLS. TokenReview is injected here; test/e2e/operator-*.test.ts uses the real API server.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { connectToOperator, type OperatorConnection } from '../../sidecar/control/index.js';
import {
  COMPILED_POLICY_API_VERSION,
  parseCompiledPolicy,
  type CompiledPolicy,
} from '../../sidecar/policy/compiled.js';
import type { OperatorKey } from '../../sidecar/secrets/index.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { createTestPki, type TestPki } from '../../test/support/tls.js';
import type { TokenReviewResult } from '../kube/index.js';
import type { PodIdentity } from './auth.js';
import { startDistributionServer, type DistributionServer } from './server.js';

const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} };

const podReview = (pod: string, uid: string): TokenReviewResult => ({
  authenticated: true,
  audiences: ['llmproxy.io'],
  user: {
    username: 'system:serviceaccount:team-a:app',
    extra: {
      'authentication.kubernetes.io/pod-name': [pod],
      'authentication.kubernetes.io/pod-uid': [uid],
    },
  },
});

const reviews: Record<string, TokenReviewResult> = {
  'token-of-pod-a': podReview('pod-a', 'uid-a'),
  'token-of-pod-b': podReview('pod-b', 'uid-b'),
  'token-without-pod': {
    authenticated: true,
    audiences: ['llmproxy.io'],
    user: { username: 'system:serviceaccount:team-a:app' },
  },
};

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

async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function get(
  server: DistributionServer,
  pki: TestPki,
  pathAndQuery: string,
  token?: string,
  tls: https.RequestOptions = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${server.url}${pathAndQuery}`, {
      ca: pki.caPem,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      ...tls,
    });
    req.on('response', (res) => {
      resolve(res.statusCode ?? 0);
      res.destroy();
    });
    req.on('error', reject);
    req.end();
  });
}

describe('policy distribution', () => {
  let pki: TestPki;
  let dir: string;
  const policies = new Map<string, CompiledPolicy>();
  let server: DistributionServer;
  const clients: OperatorConnection[] = [];

  const authorization = new Map<string, 'allow' | 'forbid' | 'unknown'>();

  const start = (port = 0) =>
    startDistributionServer({
      authorize: (pod) => authorization.get(pod.podName) ?? 'allow',
      host: '127.0.0.1',
      port,
      tls: { cert: pki.certPem, key: pki.keyPem },
      reviewToken: async (token) => reviews[token] ?? { authenticated: false },
      policyFor: (pod: PodIdentity) => policies.get(pod.podName),
      log: quiet,
      heartbeatMs: 200,
    });

  const connect = (tokenName: string, received: CompiledPolicy[], podName?: string) => {
    const tokenFile = path.join(dir, `${tokenName}.token`);
    writeFileSync(tokenFile, `${tokenName}\n`);
    const client = connectToOperator({
      url: server.url,
      tokenFile,
      caFile: path.join(dir, 'ca.pem'),
      log: quiet,
      onPolicy: (p) => received.push(p),
      podName,
      backoff: { baseMs: 50, maxMs: 200 },
    });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    pki = await createTestPki();
    dir = mkdtempSync(path.join(os.tmpdir(), 'llmproxy-dist-'));
    writeFileSync(path.join(dir, 'ca.pem'), pki.caPem);
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await server?.close();
    policies.clear();
    authorization.clear();
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('delivers a pod its policy, records the ack, and pushes a change live', async () => {
    policies.set('pod-a', policy(['gpt-4o*']));
    server = await start();
    const received: CompiledPolicy[] = [];
    const client = connect('token-of-pod-a', received, 'pod-a');
    await waitFor(() => server.podState('uid-a')?.acked === policies.get('pod-a')?.version);
    expect(received.map((p) => p.version)).toEqual([policies.get('pod-a')?.version]);
    expect(client.state().policyVersion).toBe(policies.get('pod-a')?.version);

    policies.set('pod-a', policy(['gpt-4o*', 'o3']));
    server.notify();
    await waitFor(() => server.podState('uid-a')?.acked === policies.get('pod-a')?.version);
    expect(received).toHaveLength(2);
    expect(client.policyAge()).toBeLessThan(1000);
  });

  it('stays fail-closed (no policy) while the operator has none for the pod', async () => {
    server = await start();
    const received: CompiledPolicy[] = [];
    const client = connect('token-of-pod-a', received);
    await waitFor(() => client.state().connected);
    await new Promise((r) => setTimeout(r, 300));
    expect(received).toEqual([]);
    expect(client.state().policyVersion).toBeUndefined();
    expect(client.policyAge()).toBeUndefined();
  });

  it('nacks a policy whose content does not match its version, and does not resend it', async () => {
    const good = policy(['a']);
    const tampered = { ...policy(['b']), version: good.version };
    policies.set('pod-a', tampered);
    server = await start();
    const received: CompiledPolicy[] = [];
    const client = connect('token-of-pod-a', received);
    await waitFor(() => server.podState('uid-a')?.nacked.includes(good.version) ?? false);
    expect(received).toEqual([]);
    expect(client.state().rejected).toBe(1);
    server.notify();
    await new Promise((r) => setTimeout(r, 200));
    expect(server.stats().nacks).toBe(1);
    expect(server.stats().policiesSent).toBe(1);
  });

  it('refuses missing, invalid and pod-less tokens with 401, another pod with 403', async () => {
    server = await start();
    expect(await get(server, pki, '/v1/policy/watch')).toBe(401);
    expect(await get(server, pki, '/v1/policy/watch', 'not-a-known-token')).toBe(401);
    expect(await get(server, pki, '/v1/policy/watch', 'token-without-pod')).toBe(401);
    expect(await get(server, pki, '/v1/policy/watch?pod=pod-b', 'token-of-pod-a')).toBe(403);
    expect(server.stats().authFailures).toMatchObject({
      missing_token: 1,
      invalid_token: 1,
      not_a_pod_token: 1,
    });
    expect(server.stats().forbidden).toBe(1);
  });

  it('refuses a pod that did not opt in with 403, and cuts its stream once it is known', async () => {
    policies.set('pod-a', policy(['gpt-4o*']));
    policies.set('pod-b', policy(['gpt-4o*']));
    authorization.set('pod-a', 'forbid');
    authorization.set('pod-b', 'unknown');
    server = await start();
    expect(await get(server, pki, '/v1/policy/watch', 'token-of-pod-a')).toBe(403);
    expect(server.stats()).toMatchObject({ forbidden: 1, notInjected: 1, policiesSent: 0 });

    // Not in the caches yet: the stream opens, and nothing is sent until it is known.
    const received: CompiledPolicy[] = [];
    const client = connect('token-of-pod-b', received);
    await waitFor(() => server.podState('uid-b')?.streams === 1);
    authorization.set('pod-b', 'forbid');
    server.notify();
    await waitFor(() => server.podState('uid-b')?.streams === 0);
    expect(received).toEqual([]);
    expect(client.state().policyVersion).toBeUndefined();
    expect(server.stats().notInjected).toBeGreaterThanOrEqual(2);
  });

  it('speaks TLS 1.3 only', async () => {
    server = await start();
    await expect(
      get(server, pki, '/v1/policy/watch', 'token-of-pod-a', { maxVersion: 'TLSv1.2' }),
    ).rejects.toThrow();
  });

  it('refuses an oversized or malformed ack without affecting the stream', async () => {
    policies.set('pod-a', policy(['a']));
    server = await start();
    const post = (body: string) =>
      new Promise<number>((resolve, reject) => {
        const req = https.request(`${server.url}/v1/policy/ack`, {
          method: 'POST',
          ca: pki.caPem,
          headers: {
            authorization: 'Bearer token-of-pod-b',
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end(body);
      });
    expect(await post(JSON.stringify({ version: 'v', ok: true, error: 'x'.repeat(20_000) }))).toBe(
      413,
    );
    expect(await post('{"version":')).toBe(400);
    expect(await post(JSON.stringify({ version: 'v', ok: 'yes' }))).toBe(400);
    const received: CompiledPolicy[] = [];
    connect('token-of-pod-a', received);
    await waitFor(() => received.length === 1);
  });

  it('accepts an ack by the stream session alone, and refuses an unknown session', async () => {
    policies.set('pod-a', policy(['a']));
    server = await start();

    const hello = await new Promise<{ session?: string; close: () => void }>((resolve, reject) => {
      const req = https.request(`${server.url}/v1/policy/watch`, {
        ca: pki.caPem,
        headers: { authorization: 'Bearer token-of-pod-a' },
      });
      req.on('response', (res) => {
        res.once('data', (chunk: Buffer) => {
          const first = JSON.parse(chunk.toString().split('\n')[0] ?? '{}') as { session?: string };
          resolve({ session: first.session, close: () => res.destroy() });
        });
      });
      req.on('error', reject);
      req.end();
    });
    expect(hello.session).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const ack = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const body = JSON.stringify({ version: policies.get('pod-a')?.version, ok: true });
        const req = https.request(`${server.url}/v1/policy/ack`, {
          method: 'POST',
          ca: pki.caPem,
          headers: { ...headers, 'content-type': 'application/json' },
        });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end(body);
      });
    const reviews = server.stats().authFailures.missing_token;
    expect(await ack({ 'x-llmproxy-session': hello.session ?? '' })).toBe(204);
    expect(server.podState('uid-a')?.acked).toBe(policies.get('pod-a')?.version);
    expect(await ack({ 'x-llmproxy-session': 'A'.repeat(32) })).toBe(401);
    expect(server.stats().authFailures.missing_token).toBe(reviews + 1);
    hello.close();
  });

  it('throttles a reconnect flood from one pod without refusing another', async () => {
    server = await start();
    const codes: number[] = [];
    for (let i = 0; i < 12; i++)
      codes.push(await get(server, pki, '/v1/policy/watch', 'token-of-pod-a'));
    expect(codes.slice(0, 10).every((c) => c === 200)).toBe(true);
    expect(codes.slice(10)).toEqual([429, 429]);
    expect(await get(server, pki, '/v1/policy/watch', 'token-of-pod-b')).toBe(200);
  });

  it('keeps the last policy while the operator is down and reconnects when it returns', async () => {
    policies.set('pod-a', policy(['a']));
    server = await start();
    const port = server.port;
    const received: CompiledPolicy[] = [];
    const client = connect('token-of-pod-a', received);
    await waitFor(() => client.state().connected && received.length === 1);
    await server.close();
    await waitFor(() => !client.state().connected);
    expect(client.state().policyVersion).toBe(policies.get('pod-a')?.version);

    policies.set('pod-a', policy(['a', 'b']));
    server = await start(port);
    await waitFor(() => received.length === 2, 10_000);
    expect(client.state().policyVersion).toBe(policies.get('pod-a')?.version);
  });
});

describe('key delivery', () => {
  let pki: TestPki;
  let dir: string;
  let server: DistributionServer | undefined;
  const clients: OperatorConnection[] = [];
  const canary = () => ['sk', 'unit', Math.random().toString(36).slice(2, 14)].join('-');

  beforeAll(async () => {
    pki = await createTestPki();
    dir = mkdtempSync(path.join(os.tmpdir(), 'llmproxy-dist-keys-'));
    writeFileSync(path.join(dir, 'ca.pem'), pki.caPem);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pushes keys after the policy, again only when they change, and an empty set when they go', async () => {
    const granted = policy(['gpt-4o*']);
    const keys = new Map<string, OperatorKey[]>();
    const first = canary();
    keys.set('pod-a', [{ provider: 'openai', secretId: 's', version: 'v1', value: first }]);
    server = await startDistributionServer({
      host: '127.0.0.1',
      port: 0,
      tls: { cert: pki.certPem, key: pki.keyPem },
      reviewToken: async (token) => reviews[token] ?? { authenticated: false },
      policyFor: () => granted,
      keysFor: (pod) => keys.get(pod.podName) ?? [],
      log: quiet,
      heartbeatMs: 200,
    });
    const order: string[] = [];
    const pushed: Record<string, OperatorKey[][]> = { 'pod-a': [], 'pod-b': [] };
    for (const pod of ['pod-a', 'pod-b'] as const) {
      const tokenFile = path.join(dir, `${pod}.token`);
      writeFileSync(tokenFile, `token-of-${pod}\n`);
      clients.push(
        connectToOperator({
          url: server.url,
          tokenFile,
          caFile: path.join(dir, 'ca.pem'),
          log: quiet,
          onPolicy: () => order.push(`${pod}:policy`),
          onKeys: (k) => {
            order.push(`${pod}:keys`);
            pushed[pod]?.push(k);
          },
        }),
      );
    }
    await waitFor(() => pushed['pod-a']?.length === 1 && order.includes('pod-b:policy'));
    expect(order.filter((o) => o.startsWith('pod-a'))).toEqual(['pod-a:policy', 'pod-a:keys']);
    expect(pushed['pod-a']?.[0]?.[0]?.value).toBe(first);
    // pod-b has no keys: it is told nothing about keys at all.
    expect(pushed['pod-b']).toEqual([]);

    server.notify();
    await new Promise((r) => setTimeout(r, 300));
    expect(pushed['pod-a']).toHaveLength(1);

    const rotated = canary();
    keys.set('pod-a', [{ provider: 'openai', secretId: 's', version: 'v2', value: rotated }]);
    server.notify();
    await waitFor(() => pushed['pod-a']?.length === 2);
    expect(pushed['pod-a']?.[1]?.[0]?.value).toBe(rotated);
    expect(server.stats().keysSent).toBe(2);

    keys.delete('pod-a');
    server.notify();
    await waitFor(() => pushed['pod-a']?.length === 3);
    expect(pushed['pod-a']?.[2]).toEqual([]);
    expect(pushed['pod-b']).toEqual([]);
  });
});
