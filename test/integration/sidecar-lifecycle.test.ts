// Streams that end badly, and policies that change under a running sidecar.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import OpenAI from 'openai';
import https from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { freePort } from '../support/sidecar.js';
import { startFakeProvider, type FakeProvider } from '../fake-provider/server.js';
import { basicPolicy, startSidecar, waitUntil, type RunningSidecar } from '../support/sidecar.js';

let fake: FakeProvider;

beforeAll(async () => {
  fake = await startFakeProvider();
});

afterAll(async () => {
  await fake?.close();
});

beforeEach(() => {
  fake.behave({});
  fake.requests.length = 0;
});

describe('streams', () => {
  let sidecar: RunningSidecar;
  beforeAll(async () => {
    sidecar = await startSidecar({ policy: basicPolicy(fake.url) });
  });
  afterAll(async () => {
    await sidecar?.stop();
  });

  it('aborts the upstream request when the client abandons a stream, and leaks no socket', async () => {
    fake.behave({ chunks: 50, chunkDelayMs: 20 });
    const abortedBefore = fake.abortedStreams();
    for (let i = 0; i < 10; i += 1) {
      const controller = new AbortController();
      const res = await fetch(`${sidecar.url}/openai/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [], stream: true }),
        signal: controller.signal,
      });
      const reader = res.body!.getReader();
      await reader.read();
      controller.abort();
    }
    await waitUntil(() => fake.abortedStreams() - abortedBefore === 10, 5_000);
    // Aborted upstream sockets are destroyed, not parked: at most the keep-alive pool stays.
    await waitUntil(() => fake.openConnections() <= 2, 5_000);
    const res = await fetch(`${sidecar.url}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [] }),
    });
    expect(res.status).toBe(200);
  });

  it('ends the client stream with an error event when the provider drops mid-stream', async () => {
    fake.behave({ chunks: 10, dropAfterChunks: 2, chunkDelayMs: 30 });
    const client = new OpenAI({
      baseURL: `${sidecar.url}/openai/v1`,
      apiKey: 'unused',
      maxRetries: 0,
    });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [],
      stream: true,
    });
    const received: string[] = [];
    const outcome = await (async () => {
      for await (const chunk of stream) received.push(chunk.choices[0]?.delta.content ?? '');
    })().then(
      () => 'completed',
      (error: unknown) => (error as { code?: string }).code ?? String(error),
    );
    expect(received).toEqual(['word0 ', 'word1 ']);
    expect(outcome).toBe('upstream_unavailable');
  });
});

describe('policy lifecycle', () => {
  const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [] });
  const call = (sidecar: RunningSidecar) =>
    fetch(`${sidecar.url}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });

  it('refuses everything and is not ready until a valid policy arrives, then serves it', async () => {
    const sidecar = await startSidecar({
      policy: 'kind: CompiledPolicy\nproviders: 7\n',
      waitFor: 'listening',
    });
    try {
      const refused = await call(sidecar);
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
        'policy_unavailable',
      );
      expect((await fetch(`${sidecar.adminUrl}/readyz`)).status).toBe(503);
      await sidecar.waitForOutput('policy_rejected');
      sidecar.writePolicy(basicPolicy(fake.url));
      await waitUntil(
        async () => (await fetch(`${sidecar.adminUrl}/readyz`)).status === 200,
        10_000,
      );
      expect((await call(sidecar)).status).toBe(200);
    } finally {
      await sidecar.stop();
    }
  });

  it('keeps the policy in force when the file is edited into something invalid, and takes a valid edit', async () => {
    const sidecar = await startSidecar({ policy: basicPolicy(fake.url) });
    try {
      const version = (
        (await (await fetch(`${sidecar.adminUrl}/readyz`)).json()) as { policyVersion: string }
      ).policyVersion;
      sidecar.writePolicy(
        'apiVersion: llmproxy.io/v1alpha1\nkind: CompiledPolicy\nproviders: [{ name: BAD }]\n',
      );
      await sidecar.waitForOutput('keeping the policy in force');
      expect((await call(sidecar)).status).toBe(200);

      const narrowed = basicPolicy(fake.url) as {
        providers: Array<{ models: { allow: unknown[] } }>;
      };
      narrowed.providers[0]!.models.allow = [{ pattern: 'gpt-5' }];
      sidecar.writePolicy(narrowed);
      await waitUntil(async () => (await call(sidecar)).status === 403, 10_000);
      const next = (
        (await (await fetch(`${sidecar.adminUrl}/readyz`)).json()) as { policyVersion: string }
      ).policyVersion;
      expect(next).not.toBe(version);
    } finally {
      await sidecar.stop();
    }
  });

  it('refuses a plain-http upstream outside loopback and the cluster', async () => {
    const policy = basicPolicy('http://api.openai.com');
    const sidecar = await startSidecar({ policy, waitFor: 'listening' });
    try {
      await sidecar.waitForOutput('plain http is allowed only to loopback or cluster-local hosts');
      expect((await call(sidecar)).status).toBe(503);
    } finally {
      await sidecar.stop();
    }
  });

  it('exits with a usage message on bad flags, before listening', async () => {
    await expect(
      startSidecar({ policy: basicPolicy(fake.url), args: ['--listen', '0.0.0.0:9999'] }),
    ).rejects.toThrow(/must bind a loopback address/);
  });

  it('serves kubelet probes on a TLS 1.3-only listener, and refuses TLS 1.2', async () => {
    const port = await freePort();
    const sidecar = await startSidecar({
      policy: basicPolicy(fake.url),
      args: ['--probe-listen', `127.0.0.1:${port}`],
    });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port, path: '/readyz', rejectUnauthorized: false }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
          .on('error', reject);
      });
      expect(status).toBe(200);
      const tls12 = await new Promise<string>((resolve) => {
        const socket = tlsConnect({
          host: '127.0.0.1',
          port,
          maxVersion: 'TLSv1.2',
          rejectUnauthorized: false,
        });
        socket.on('secureConnect', () => resolve(`connected with ${socket.getProtocol()}`));
        socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
      });
      expect(tls12).not.toMatch(/^connected/);
    } finally {
      await sidecar.stop();
    }
  });
});
