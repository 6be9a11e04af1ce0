// Rate limits and metering through the real sidecar process, with a real Redis for shared limits.
import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import OpenAI from 'openai';
import { startFakeProvider, type FakeProvider } from '../fake-provider/server.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { basicPolicy, startSidecar, waitUntil, type RunningSidecar } from '../support/sidecar.js';

jest.setTimeout(30_000);

let fake: FakeProvider;

beforeAll(async () => {
  fake = await startFakeProvider();
});

afterAll(async () => {
  await fake?.close();
});

beforeEach(() => {
  fake.behave({});
});

function limitedPolicy(limits: Array<Record<string, unknown>>): Record<string, unknown> {
  return { ...basicPolicy(fake.url, { openaiCap: 100 }), rateLimits: limits };
}

const chat = (sidecar: RunningSidecar, body: Record<string, unknown> = {}) =>
  fetch(`${sidecar.url}/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      ...body,
    }),
  });

describe('per-pod limits', () => {
  let sidecar: RunningSidecar;
  beforeAll(async () => {
    sidecar = await startSidecar({
      policy: limitedPolicy([
        { id: 'ns/p/rpm', requestsPerMinute: 3, scope: 'pod' },
        { id: 'ns/p/tpm', tokensPerMinute: 200, scope: 'pod', match: { provider: 'anthropic' } },
      ]),
    });
  });
  afterAll(async () => {
    await sidecar?.stop();
  });

  it('admits up to the limit with RateLimit headers, then refuses with the limit id and Retry-After', async () => {
    const admitted = [await chat(sidecar), await chat(sidecar), await chat(sidecar)];
    expect(admitted.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(admitted[0]?.headers.get('ratelimit-limit')).toBe('3');
    expect(admitted[2]?.headers.get('ratelimit-remaining')).toBe('0');
    const refused = await chat(sidecar);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const body = (await refused.json()) as { error: { code: string; param: string } };
    expect(body.error).toMatchObject({ code: 'rate_limited', param: 'ns/p/rpm' });
  });

  it('refuses at once, and tells SDKs not to retry, a request whose output cap alone exceeds its token bucket', async () => {
    const res = await fetch(`${sidecar.url}/anthropic/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'claude-3-5-haiku-latest',
        max_tokens: 4096, // capped to the grant's 256, which alone exceeds the 200-token bucket
        messages: [{ role: 'user', content: 'hi' }],
      }),
    });
    expect(res.status).toBe(429);
    expect(res.headers.get('x-should-retry')).toBe('false');
    expect(((await res.json()) as { error: { rule: string } }).error.rule).toBe('ns/p/tpm');
  });
});

describe('concurrency and metering', () => {
  let sidecar: RunningSidecar;
  beforeAll(async () => {
    sidecar = await startSidecar({
      policy: limitedPolicy([{ id: 'one-at-a-time', maxConcurrent: 1, scope: 'pod' }]),
    });
  });
  afterAll(async () => {
    await sidecar?.stop();
  });

  it('frees the slot of a stream the client abandons, and meters what was produced', async () => {
    fake.behave({ chunks: 40, chunkDelayMs: 25 });
    const res = await chat(sidecar, { stream: true });
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    fake.behave({});
    await waitUntil(async () => (await chat(sidecar)).status === 200, 10_000);
    await sidecar.waitForOutput('"code":"client_closed"');
  });

  it('strips the usage chunk it asked for when the client did not, and still logs exact tokens', async () => {
    const client = new OpenAI({
      baseURL: `${sidecar.url}/openai/v1`,
      apiKey: 'unused',
      maxRetries: 0,
    });
    const quiet = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [],
      stream: true,
    });
    const quietChunks = [];
    for await (const chunk of quiet) quietChunks.push(chunk);
    expect(quietChunks.some((c) => c.usage)).toBe(false);
    expect(fake.requests.at(-1)?.body?.stream_options).toEqual({ include_usage: true });

    const asked = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [],
      stream: true,
      stream_options: { include_usage: true },
    });
    const askedChunks = [];
    for await (const chunk of asked) askedChunks.push(chunk);
    expect(askedChunks.at(-1)?.usage).toMatchObject({ prompt_tokens: 12, completion_tokens: 3 });
    await sidecar.waitForOutput('"estimated":false');
    expect(sidecar.output()).toMatch(/"inputTokens":12,.*"outputTokens":3/);
  });
});

describe('shared limits in Redis', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  const sharedPolicy = () =>
    limitedPolicy([{ id: 'team/shared-rpm', requestsPerMinute: 10, scope: 'shared' }]);

  it('admits exactly N requests across two sidecars sharing a limit of N per minute', async () => {
    const args = ['--redis-url', redis.url];
    const a = await startSidecar({ policy: sharedPolicy(), args });
    const b = await startSidecar({ policy: sharedPolicy(), args });
    try {
      const statuses = await Promise.all(
        Array.from({ length: 30 }, (_, i) => chat(i % 2 ? a : b).then((r) => r.status)),
      );
      expect(statuses.filter((s) => s === 200)).toHaveLength(10);
      expect(statuses.filter((s) => s === 429)).toHaveLength(20);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('falls back to the pod share while Redis is down, fails closed when told to, and recovers', async () => {
    await redis.restart();
    const policy = limitedPolicy([
      { id: 'team/fallback', requestsPerMinute: 1000, scope: 'shared' },
    ]);
    const share = await startSidecar({ policy, args: ['--redis-url', redis.url] });
    const closed = await startSidecar({
      policy,
      args: ['--redis-url', redis.url, '--redis-failure', 'closed'],
    });
    try {
      expect((await chat(share)).status).toBe(200);
      expect((await chat(closed)).status).toBe(200);
      await redis.kill();
      expect((await chat(share)).status).toBe(200);
      const refused = await chat(closed);
      expect(refused.status).toBe(503);
      await redis.restart();
      await waitUntil(async () => (await chat(closed)).status === 200, 15_000, 250);
      expect(share.process.exitCode).toBeNull();
      expect(closed.process.exitCode).toBeNull();
    } finally {
      await Promise.all([share.stop(), closed.stop()]);
    }
  });
});
