// The official SDKs, pointed at the sidecar exactly as an injected pod points them, work unchanged.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startFakeProvider, type FakeProvider } from '../fake-provider/server.js';
import { basicPolicy, startSidecar, type RunningSidecar } from '../support/sidecar.js';

let fake: FakeProvider;
let sidecar: RunningSidecar;
let openai: OpenAI;
let anthropic: Anthropic;
const providerKey = ['prov', 'key', randomBytes(12).toString('hex')].join('-');
const clientKey = ['client', 'placeholder', randomBytes(6).toString('hex')].join('-');

beforeAll(async () => {
  fake = await startFakeProvider();
  fake.acceptKey(providerKey);
  const keyFile = join(mkdtempSync(join(tmpdir(), 'llmproxy-key-')), 'key');
  writeFileSync(keyFile, `${providerKey}\n`);
  sidecar = await startSidecar({ policy: basicPolicy(fake.url, { keyFile, openaiCap: 64 }) });
  openai = new OpenAI({ baseURL: `${sidecar.url}/openai/v1`, apiKey: clientKey, maxRetries: 0 });
  anthropic = new Anthropic({
    baseURL: `${sidecar.url}/anthropic`,
    apiKey: clientKey,
    maxRetries: 0,
  });
});

afterAll(async () => {
  await sidecar?.stop();
  await fake?.close();
});

beforeEach(() => {
  fake.behave({});
  fake.requests.length = 0;
});

describe('OpenAI SDK through the sidecar', () => {
  it('completes a chat with the provider key injected and the client key dropped', async () => {
    const completion = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(completion.choices[0]?.message.content).toBe('Hello from the fake provider.');
    const seen = fake.requests[0];
    expect(seen?.path).toBe('/v1/chat/completions');
    expect(seen?.headers.authorization).toBe(`Bearer ${providerKey}`);
    expect(JSON.stringify(seen?.headers)).not.toContain(clientKey);
  });

  it('caps max_tokens and max_completion_tokens at the grant, and sets one when absent', async () => {
    await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [],
      max_tokens: 5000,
      max_completion_tokens: 9000,
    });
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [], max_tokens: 10 });
    await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [] });
    expect(fake.requests.map((r) => [r.body?.max_tokens, r.body?.max_completion_tokens])).toEqual([
      [64, 64],
      [10, undefined],
      [undefined, 64],
    ]);
  });

  it('streams a chat chunk by chunk', async () => {
    fake.behave({ chunks: 5 });
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [],
      stream: true,
    });
    const parts: string[] = [];
    for await (const chunk of stream) parts.push(chunk.choices[0]?.delta.content ?? '');
    expect(parts.join('')).toBe('word0 word1 word2 word3 word4 ');
  });

  it('serves completions, embeddings and the responses API', async () => {
    const text = await openai.completions.create({ model: 'gpt-4o-mini', prompt: 'hi' });
    expect(text.choices[0]?.text).toBe('Hello');
    const embedding = await openai.embeddings.create({
      model: 'text-embedding-3-small',
      input: 'hi',
    });
    expect(embedding.data[0]?.embedding).toEqual([0.5, 0.25, 0.125]);
    const response = await openai.responses.create({ model: 'gpt-4o-mini', input: 'hi' });
    expect(response.output_text).toBe('Hello from the fake provider.');
    expect(fake.requests.map((r) => r.path)).toEqual([
      '/v1/completions',
      '/v1/embeddings',
      '/v1/responses',
    ]);
    expect(fake.requests[2]?.body?.max_output_tokens).toBe(64);
  });

  it('streams the responses API', async () => {
    const stream = await openai.responses.create({
      model: 'gpt-4o-mini',
      input: 'hi',
      stream: true,
    });
    const deltas: string[] = [];
    for await (const event of stream)
      if (event.type === 'response.output_text.delta') deltas.push(event.delta);
    expect(deltas.join('')).toBe('word0 word1 word2 ');
  });

  it('refuses a model outside the grant with a typed, non-retryable SDK error', async () => {
    const error = await openai.chat.completions
      .create({ model: 'gpt-4o', messages: [] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((error as InstanceType<typeof OpenAI.PermissionDeniedError>).code).toBe(
      'model_not_allowed',
    );
    expect(
      (error as InstanceType<typeof OpenAI.PermissionDeniedError>).headers?.get('x-should-retry'),
    ).toBe('false');
    expect(fake.requests).toHaveLength(0);
  });

  it('refuses a denied model even when the case differs from the deny rule', async () => {
    const error = await openai.chat.completions
      .create({ model: 'GPT-4o-mini-REALTIME-preview', messages: [] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(fake.requests).toHaveLength(0);
  });
});

describe('Anthropic SDK through the sidecar', () => {
  it('sends a message with x-api-key injected and anthropic-version kept', async () => {
    const message = await anthropic.messages.create({
      model: 'claude-3-5-haiku-latest',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(message.content[0]).toMatchObject({
      type: 'text',
      text: 'Hello from the fake provider.',
    });
    const seen = fake.requests[0];
    expect(seen?.path).toBe('/v1/messages');
    expect(seen?.headers['x-api-key']).toBe(providerKey);
    expect(seen?.headers['anthropic-version']).toBeDefined();
    expect(seen?.headers.authorization).toBeUndefined();
  });

  it('caps max_tokens at the grant', async () => {
    await anthropic.messages.create({
      model: 'claude-3-5-haiku-latest',
      max_tokens: 4096,
      messages: [],
    });
    expect(fake.requests[0]?.body?.max_tokens).toBe(256);
  });

  it('streams a message event by event', async () => {
    fake.behave({ chunks: 4 });
    const stream = anthropic.messages.stream({
      model: 'claude-3-5-haiku-latest',
      max_tokens: 100,
      messages: [{ role: 'user', content: 'hi' }],
    });
    const final = await stream.finalMessage();
    expect(final.content[0]).toMatchObject({ text: 'word0 word1 word2 word3 ' });
  });

  it('refuses a model outside the grant in the Anthropic error shape', async () => {
    const error = await anthropic.messages
      .create({ model: 'claude-opus-4', max_tokens: 10, messages: [] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.PermissionDeniedError);
    const body = (error as InstanceType<typeof Anthropic.PermissionDeniedError>).error as {
      error?: { code?: string };
    };
    expect(body.error?.code).toBe('model_not_allowed');
  });
});

describe('provider credential failures', () => {
  it('replaces a provider 401 (which echoes key fragments) with credentials_unavailable', async () => {
    fake.acceptKey('another-key-entirely');
    try {
      const error = await openai.chat.completions
        .create({ model: 'gpt-4o-mini', messages: [] })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OpenAI.APIError);
      expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
      expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('credentials_unavailable');
      expect(JSON.stringify((error as InstanceType<typeof OpenAI.APIError>).error)).not.toContain(
        providerKey.slice(-4),
      );
    } finally {
      fake.acceptKey(providerKey);
    }
  });

  it('passes other provider errors through in the provider shape', async () => {
    fake.behave({ status: 400, errorMessage: 'bad thing' });
    const error = await openai.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
  });
});
