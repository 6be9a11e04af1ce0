// Data protection against the request bodies the official SDKs really send: each SDK call goes to
// the fake provider, and the body it recorded is what protectRequest must find and rewrite.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { protectRequest, protectResponse } from '../../sidecar/protection/index.js';
import type { DataProtection } from '../../sidecar/protection/schema.js';
import { startFakeProvider, type FakeProvider } from '../fake-provider/server.js';

const EMAIL = `owner.${randomBytes(3).toString('hex')}@example.com`;
const CARD = '4111 1111 1111 1111';
const PROMPT = `Send the receipt for card ${CARD} to ${EMAIL}.`;
const key = () => ['sk', 'proj', randomBytes(30).toString('base64url')].join('-');
const settings: DataProtection = { pii: 'redact', secrets: 'block' };

let provider: FakeProvider;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  provider = await startFakeProvider();
  openai = new OpenAI({ apiKey: 'test', baseURL: `${provider.url}/v1`, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: 'test', baseURL: provider.url, maxRetries: 0 });
});
afterAll(async () => {
  await provider?.close();
});

/** The body of the last request the fake provider received. */
function lastBody(): Record<string, unknown> {
  const body = provider.requests.at(-1)?.body;
  if (!body) throw new Error('no request recorded');
  return body;
}

function expectRedacted(providerType: 'openai' | 'anthropic', body: unknown) {
  const verdict = protectRequest(providerType, body, settings);
  expect(verdict).toMatchObject({
    verdict: 'redacted',
    counts: { email: 1, credit_card: 1 },
  });
  const out = JSON.stringify(verdict.verdict === 'redacted' ? verdict.body : undefined);
  expect(out).not.toContain(EMAIL);
  expect(out).not.toContain(CARD);
  expect(out).toContain('[REDACTED:email]');
  return JSON.parse(out) as Record<string, unknown>;
}

describe('OpenAI SDK request shapes', () => {
  it('chat completions, with the system prompt and the user field left to telemetry', async () => {
    await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      user: EMAIL,
      messages: [
        { role: 'system', content: `Escalate to ${EMAIL} if unsure.` },
        { role: 'user', content: [{ type: 'text', text: PROMPT }] },
      ],
    });
    const verdict = protectRequest('openai', lastBody(), settings);
    expect(verdict.counts).toEqual({ email: 2, credit_card: 1 });
    const out = (verdict.verdict === 'redacted' ? verdict.body : {}) as {
      user: string;
      messages: { content: unknown }[];
    };
    expect(JSON.stringify(out.messages)).not.toContain(EMAIL);
    // The user field is an identifier (hashed by telemetry), not prompt text: not rewritten.
    expect(out.user).toBe(EMAIL);
  });

  it('streamed chat completions', async () => {
    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      messages: [{ role: 'user', content: PROMPT }],
    });
    for await (const _chunk of stream) {
      // drain
    }
    const out = expectRedacted('openai', lastBody());
    expect(out.stream).toBe(true);
  });

  it('legacy completions', async () => {
    await openai.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: PROMPT });
    expectRedacted('openai', lastBody());
  });

  it('embeddings, one input and several', async () => {
    await openai.embeddings.create({ model: 'text-embedding-3-small', input: PROMPT });
    expectRedacted('openai', lastBody());
    await openai.embeddings.create({ model: 'text-embedding-3-small', input: ['hi', PROMPT] });
    expectRedacted('openai', lastBody());
  });

  it('responses, with instructions and message items', async () => {
    await openai.responses.create({ model: 'gpt-4o-mini', input: PROMPT });
    expectRedacted('openai', lastBody());
    await openai.responses.create({
      model: 'gpt-4o-mini',
      instructions: 'Be brief.',
      input: [{ role: 'user', content: [{ type: 'input_text', text: PROMPT }] }],
    });
    expectRedacted('openai', lastBody());
  });

  it('blocks a key in the prompt naming only its type', async () => {
    const secret = key();
    await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: `my key is ${secret}` }],
    });
    const verdict = protectRequest('openai', lastBody(), settings);
    expect(verdict).toEqual({
      verdict: 'blocked',
      entity: 'openai_key',
      counts: { openai_key: 1 },
    });
  });
});

describe('Anthropic SDK request shapes', () => {
  it('messages with a system prompt and content blocks', async () => {
    await anthropic.messages.create({
      model: 'claude-3-5-haiku-latest',
      max_tokens: 64,
      system: `Escalate to ${EMAIL}.`,
      messages: [{ role: 'user', content: [{ type: 'text', text: PROMPT }] }],
    });
    const verdict = protectRequest('anthropic', lastBody(), settings);
    expect(verdict.counts).toEqual({ email: 2, credit_card: 1 });
  });

  it('streamed messages', async () => {
    const stream = anthropic.messages.stream({
      model: 'claude-3-5-haiku-latest',
      max_tokens: 64,
      messages: [{ role: 'user', content: PROMPT }],
    });
    await stream.finalMessage();
    expectRedacted('anthropic', lastBody());
  });
});

describe('response shapes', () => {
  it('leaves the fake provider completions alone and redacts one that leaks an email', async () => {
    const raw = await openai.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
      .asResponse();
    const body = (await raw.json()) as Record<string, unknown>;
    const scan: DataProtection = { ...settings, scanResponses: true };
    expect(protectResponse('openai', body, scan).verdict).toBe('pass');
    const leaked = structuredClone(body) as { choices: { message: { content: string } }[] };
    leaked.choices[0]!.message.content = `Sure, write to ${EMAIL}`;
    expect(protectResponse('openai', leaked, scan)).toMatchObject({
      verdict: 'redacted',
      body: { choices: [{ message: { content: 'Sure, write to [REDACTED:email]' } }] },
    });
  });
});
