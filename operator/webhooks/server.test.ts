import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import https from 'node:https';
import tls from 'node:tls';
import type { Logger } from '../../sidecar/telemetry/log.js';
import { createTestPki, type TestPki } from '../../test/support/tls.js';
import { admitLlmObject, admitPod, type AdmissionResponse } from './admission.js';
import { ANNOTATION_INJECT } from './inject.js';
import { applyPatch, type PatchOperation } from './patch.js';
import { startWebhookServer, type WebhookServer } from './server.js';
import { TEST_CA_BUNDLE, testSettings } from './testdata.js';

const silent: Logger = { error() {}, warn() {}, info() {}, debug() {} };
const config = testSettings();

let pki: TestPki;
let server: WebhookServer;

beforeAll(async () => {
  pki = await createTestPki();
  server = await startWebhookServer({
    host: '127.0.0.1',
    port: 0,
    tls: { cert: pki.certPem, key: pki.keyPem },
    log: silent,
    maxBodyBytes: 64 * 1024,
    mutatePod: (request) =>
      admitPod(request, {
        config,
        namespaceLabels: () => ({}),
        caBundle: () => TEST_CA_BUNDLE,
        nativeSidecars: true,
        version: '0.1.0',
      }),
    validateLlmObject: (request) =>
      admitLlmObject(request, { config, budgetsInNamespace: () => [] }),
  });
});
afterAll(() => server.close());

function post(
  path: string,
  body: string | Buffer,
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${server.url}${path}`,
      { method: 'POST', ca: pki.caPem, headers },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const review = (request: Record<string, unknown>) =>
  JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });

const podRequest = (annotations: Record<string, string>) => ({
  uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
  kind: { group: '', version: 'v1', kind: 'Pod' },
  operation: 'CREATE',
  namespace: 'team-a',
  object: {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'web-', annotations },
    spec: { containers: [{ name: 'app', image: 'app:1' }] },
  },
});

async function answer(path: string, request: Record<string, unknown>): Promise<AdmissionResponse> {
  const res = await post(path, review(request));
  expect(res.status).toBe(200);
  const parsed = JSON.parse(res.body) as { apiVersion: string; response: AdmissionResponse };
  expect(parsed.apiVersion).toBe('admission.k8s.io/v1');
  return parsed.response;
}

describe('webhook server', () => {
  it('answers an opted-in pod with a JSON patch that injects the sidecar', async () => {
    const request = podRequest({ [ANNOTATION_INJECT]: 'true' });
    const response = await answer('/mutate-pods', request);
    expect(response).toMatchObject({ uid: request.uid, allowed: true, patchType: 'JSONPatch' });
    const patch = JSON.parse(
      Buffer.from(response.patch ?? '', 'base64').toString(),
    ) as PatchOperation[];
    const pod = applyPatch(request.object, patch) as unknown as {
      spec: { initContainers: { name: string }[] };
    };
    expect(pod.spec.initContainers[0]?.name).toBe('llmproxy-sidecar');
  });

  it('refuses a bad override annotation with its reason', async () => {
    const response = await answer(
      '/mutate-pods',
      podRequest({ [ANNOTATION_INJECT]: 'true', 'llmproxy.io/sidecar-memory': 'much' }),
    );
    expect(response.allowed).toBe(false);
    expect(response.status?.message).toMatch(/sidecar-memory: "much" is not a quantity/);
  });

  it('validates LlmPolicies with warnings', async () => {
    const response = await answer('/validate-llmproxy', {
      uid: 'a1',
      kind: { group: 'llmproxy.io', version: 'v1alpha1', kind: 'LlmPolicy' },
      operation: 'CREATE',
      namespace: 'team-a',
      object: {
        kind: 'LlmPolicy',
        spec: { telemetry: { captureContent: true } },
      },
    });
    expect(response.allowed).toBe(true);
    expect(response.warnings).toEqual([expect.stringMatching(/captureContent/)]);
  });

  it('answers malformed reviews with a 4xx and keeps serving', async () => {
    const cases: [string, string | Buffer, Record<string, string>?][] = [
      ['/mutate-pods', '{not json'],
      ['/mutate-pods', '[]'],
      ['/mutate-pods', 'null'],
      [
        '/mutate-pods',
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1beta1',
          kind: 'AdmissionReview',
          request: { uid: 'x' },
        }),
      ],
      ['/mutate-pods', review({})],
      ['/mutate-pods', review({ uid: '../../etc' })],
      ['/validate-llmproxy', Buffer.from([0xff, 0xfe, 0x00])],
      ['/mutate-pods', review({ uid: 'u' }), { 'content-type': 'text/plain' }],
      ['/nope', review({ uid: 'u' })],
    ];
    for (const [path, body, headers] of cases) {
      const res = await post(path, body, headers);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(() => JSON.parse(res.body) as unknown).not.toThrow();
    }
    // Shapes that parse but make no sense still get an answer, not a crash.
    for (const request of [
      { uid: 'u1', kind: { kind: 'Pod' }, operation: 'CREATE', object: 'pod' },
      {
        uid: 'u2',
        kind: { kind: 'Pod' },
        operation: 'CREATE',
        object: {
          spec: { containers: 'x' },
          metadata: { annotations: { [ANNOTATION_INJECT]: 'true' } },
        },
      },
      {
        uid: 'u3',
        kind: { kind: 'Pod' },
        operation: 'CREATE',
        object: {
          metadata: { annotations: { [ANNOTATION_INJECT]: 'true' } },
          spec: { containers: [null, 5] },
        },
      },
      { uid: 'u4', kind: { kind: 'Pod' }, operation: 'DELETE' },
    ]) {
      const response = await answer('/mutate-pods', request);
      expect(response.uid).toBe(request.uid);
      expect(response.status?.code ?? 200).toBeLessThan(500);
    }
    const healthy = await answer('/mutate-pods', podRequest({ [ANNOTATION_INJECT]: 'true' }));
    expect(healthy.allowed).toBe(true);
  });

  it('refuses bodies over the bound', async () => {
    const res = await post('/mutate-pods', Buffer.alloc(200 * 1024, 0x20));
    expect(res.status).toBe(413);
  });

  it('speaks TLS 1.3 only', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const socket = tls.connect(
        {
          host: '127.0.0.1',
          port: server.port,
          ca: pki.caPem,
          maxVersion: 'TLSv1.2',
          servername: 'localhost',
        },
        () => resolve(`connected ${socket.getProtocol()}`),
      );
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(outcome).not.toMatch(/^connected/);
  });

  it('counts what it answered', () => {
    const stats = server.stats();
    expect(stats.reviews.mutate).toBeGreaterThan(0);
    expect(stats.badRequests).toBeGreaterThan(0);
    expect(stats.errors).toBe(0);
  });
});
