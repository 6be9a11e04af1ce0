// The lease endpoint as a misbehaving sidecar meets it: over real TLS, authenticated per pod,
// malformed or oversized reports refused, a flood throttled without touching other pods.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import https from 'node:https';
import type { LeaseRequest } from '../../sidecar/control/protocol.js';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { createTestPki, type TestPki } from '../../test/support/tls.js';
import type { TokenReviewResult } from '../kube/index.js';
import type { PodIdentity } from './auth.js';
import { startDistributionServer, type DistributionServer } from './server.js';

const quiet: Logger = { error() {}, warn() {}, info() {}, debug() {} };

const review = (pod: string): TokenReviewResult => ({
  authenticated: true,
  audiences: ['llmproxy.io'],
  user: {
    username: 'system:serviceaccount:team-a:app',
    extra: {
      'authentication.kubernetes.io/pod-name': [pod],
      'authentication.kubernetes.io/pod-uid': [`uid-${pod}`],
    },
  },
});

const valid: LeaseRequest = {
  epoch: 'epoch-0001',
  reports: [{ budget: 'team-a/monthly', seq: 1, spentMicros: 1500, want: true }],
};

describe('the lease endpoint', () => {
  let pki: TestPki;
  let server: DistributionServer;
  const received: Array<{ pod: PodIdentity; request: LeaseRequest }> = [];

  const post = (
    body: string,
    token?: string,
  ): Promise<{ status: number; text: string; headers: Record<string, unknown> }> =>
    new Promise((resolve, reject) => {
      const req = https.request(`${server.url}/v1/budget/lease`, {
        method: 'POST',
        ca: pki.caPem,
        agent: false,
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
      });
      // The server may answer and close before reading an oversized body.
      req.on('error', (err) => (err.message.includes('EPIPE') ? undefined : reject(err)));
      req.end(body);
    });

  beforeAll(async () => {
    pki = await createTestPki();
    server = await startDistributionServer({
      host: '127.0.0.1',
      port: 0,
      tls: { cert: pki.certPem, key: pki.keyPem },
      reviewToken: async (token) =>
        token.startsWith('token-of-') ? review(token.slice(9)) : { authenticated: false },
      policyFor: () => undefined,
      authorize: (pod) => (pod.podName === 'stray' ? 'forbid' : 'allow'),
      lease: async (pod, request) => {
        received.push({ pod, request });
        return {
          grants: request.reports.map((r) => ({
            budget: r.budget,
            amountMicros: 10_000,
            expiresInMs: 60_000,
            exhausted: false,
          })),
        };
      },
      leaseRate: { perSecond: 1, burst: 5 },
      log: quiet,
    });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('answers a pod, taking its identity from the token and never from the body', async () => {
    const res = await post(JSON.stringify(valid), 'token-of-pod-a');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({
      grants: [
        { budget: 'team-a/monthly', amountMicros: 10_000, expiresInMs: 60_000, exhausted: false },
      ],
    });
    expect(received.at(-1)?.pod).toMatchObject({ podName: 'pod-a', podUid: 'uid-pod-a' });
  });

  it('refuses no token with 401 and a pod that did not opt in with 403', async () => {
    expect((await post(JSON.stringify(valid))).status).toBe(401);
    expect((await post(JSON.stringify(valid), 'not-a-token')).status).toBe(401);
    expect((await post(JSON.stringify(valid), 'token-of-stray')).status).toBe(403);
  });

  it.each([
    ['not JSON', '{"epoch":'],
    ['no reports', JSON.stringify({ epoch: 'epoch-0001', reports: [] })],
    [
      'a negative spend',
      JSON.stringify({ ...valid, reports: [{ ...valid.reports[0], spentMicros: -5 }] }),
    ],
    [
      'an absurd spend',
      JSON.stringify({ ...valid, reports: [{ ...valid.reports[0], spentMicros: 1e18 }] }),
    ],
    [
      'a budget id that is no object name',
      JSON.stringify({ ...valid, reports: [{ ...valid.reports[0], budget: '../x' }] }),
    ],
    ['a budget twice', JSON.stringify({ ...valid, reports: [valid.reports[0], valid.reports[0]] })],
    [
      'a fractional sequence',
      JSON.stringify({ ...valid, reports: [{ ...valid.reports[0], seq: 1.5 }] }),
    ],
    ['a short epoch', JSON.stringify({ ...valid, epoch: 'x' })],
    ['an urgency that is no flag', JSON.stringify({ ...valid, urgent: 'yes' })],
    [
      'too many reports',
      JSON.stringify({
        epoch: 'epoch-0001',
        reports: Array.from({ length: 65 }, (_, i) => ({
          ...valid.reports[0],
          budget: `team-a/b${i}`,
        })),
      }),
    ],
  ])('refuses %s with 400 and passes nothing on', async (name, body) => {
    const before = received.length;
    // A pod per case, so the throttle (tested below) stays out of the way.
    const res = await post(body, `token-of-${name.replace(/[^a-z]+/g, '-')}`);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toEqual({ error: { code: 'invalid_request' } });
    expect(received.length).toBe(before);
  });

  it('refuses an oversized report with 413 without reading it', async () => {
    const res = await post('x'.repeat(200 * 1024), 'token-of-pod-c');
    expect(res.status).toBe(413);
  });

  it('throttles a flooding pod with 429 while another pod is still served', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++)
      statuses.push((await post(JSON.stringify(valid), 'token-of-flood')).status);
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(6);
    expect((await post(JSON.stringify(valid), 'token-of-calm')).status).toBe(200);
    expect(server.stats().throttled).toBeGreaterThan(0);
  });
});
