// The whole sidecar, exporting over OTLP to a receiver the test controls: every call is visible
// (spans, metrics, access lines) and no canary (key, prompt, email, user id, echoed provider
// error) appears in anything the process exports, logs or serves. Data protection end to end.
import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startFakeProvider, type FakeProvider } from '../fake-provider/server.js';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';
import { basicPolicy, startSidecar, type RunningSidecar } from '../support/sidecar.js';

jest.setTimeout(30_000);

const hex = (n: number) => randomBytes(n).toString('hex');
const canary = {
  key: ['prov', 'canary', hex(12)].join('-'),
  prompt: `the tangerine ${hex(6)} sails at midnight`,
  email: `canary.${hex(4)}@example.org`,
  user: `user-${hex(8)}`,
  caller: `caller-${hex(8)}`,
};

let fake: FakeProvider;
let otlp: OtlpReceiver;
let sidecar: RunningSidecar;
let openai: OpenAI;

beforeAll(async () => {
  fake = await startFakeProvider();
  fake.acceptKey(canary.key);
  otlp = await startOtlpReceiver();
  const dir = mkdtempSync(join(tmpdir(), 'llmproxy-telemetry-'));
  writeFileSync(join(dir, 'key'), canary.key);
  writeFileSync(join(dir, 'hmac'), hex(32));
  const policy = {
    ...basicPolicy(fake.url, { keyFile: join(dir, 'key') }),
    dataProtection: { pii: 'redact', secrets: 'block' },
  };
  sidecar = await startSidecar({
    policy,
    args: ['--log-level', 'debug', '--hmac-key-file', join(dir, 'hmac')],
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_METRIC_EXPORT_INTERVAL: '200',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    },
  });
  openai = new OpenAI({
    baseURL: `${sidecar.url}/openai/v1`,
    apiKey: 'placeholder',
    maxRetries: 0,
    defaultHeaders: { 'x-llmproxy-user': canary.caller },
  });
});

afterAll(async () => {
  await sidecar?.stop();
  await otlp?.close();
  await fake?.close();
});

beforeEach(() => {
  fake.behave({});
  fake.requests.length = 0;
});

describe('data protection through the official SDKs', () => {
  it('redacts an email in the prompt before it leaves the pod', async () => {
    await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: `mail ${canary.email} please` }],
    });
    const sent = JSON.stringify(fake.requests[0]?.body);
    expect(sent).not.toContain(canary.email);
    expect(sent).toContain('[REDACTED:email]');
  });

  it('blocks a prompt carrying a secret, naming the entity type and never the value', async () => {
    const secret = ['AKIA', 'Q3EGRT7Z', 'ZKX2WL4N'].join('');
    const client = new Anthropic({
      baseURL: `${sidecar.url}/anthropic`,
      apiKey: 'placeholder',
      maxRetries: 0,
    });
    const error = await client.messages
      .create({
        model: 'claude-3-5-haiku-latest',
        max_tokens: 10,
        messages: [{ role: 'user', content: `my key is ${secret}` }],
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    const body = JSON.stringify((error as InstanceType<typeof Anthropic.BadRequestError>).error);
    expect(body).toContain('content_blocked');
    expect(body).toContain('aws_access_key');
    expect(body).not.toContain(secret);
    expect(fake.requests).toHaveLength(0);
  });
});

describe('telemetry', () => {
  it('continues the application trace upstream and records a GenAI client span', async () => {
    const traceId = hex(16);
    const traceparent = `00-${traceId}-${hex(8)}-01`;
    await fetch(`${sidecar.url}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(String(fake.requests[0]?.headers.traceparent)).toContain(traceId);
    await otlp.waitFor((r) => r.spans().some((s) => s.traceId === traceId), 10_000);
    const span = otlp.spans().find((s) => s.traceId === traceId)!;
    expect(span.name).toBe('chat gpt-4o-mini');
    expect(span.kind).toBe(3); // CLIENT
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.usage.input_tokens': 12,
      'gen_ai.usage.output_tokens': 7,
      'server.address': '127.0.0.1',
    });
  });

  it('times the first chunk of streamed answers only, as the GenAI conventions ask', async () => {
    const traceIds = { whole: hex(16), streamed: hex(16) };
    for (const [kind, traceId] of Object.entries(traceIds)) {
      const response = await fetch(`${sidecar.url}/openai/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${hex(8)}-01` },
        body: JSON.stringify({
          model: 'gpt-4o-mini',
          stream: kind === 'streamed',
          messages: [{ role: 'user', content: 'hi' }],
        }),
      });
      await response.text();
    }
    const spanOf = (traceId: string) => otlp.spans().find((s) => s.traceId === traceId);
    await otlp.waitFor(() => Object.values(traceIds).every((id) => spanOf(id)), 10_000);
    const firstChunk = 'gen_ai.response.time_to_first_chunk';
    expect(spanOf(traceIds.streamed)!.attributes[firstChunk]).toEqual(expect.any(Number));
    // An array path: the attribute's name holds dots.
    expect(spanOf(traceIds.whole)!.attributes).not.toHaveProperty([firstChunk]);
  });

  it('gives a refused request a span with the decision and reason', async () => {
    await openai.chat.completions.create({ model: 'gpt-4o', messages: [] }).catch(() => undefined);
    await otlp.waitFor(
      (r) => r.spans().some((s) => s.attributes['llmproxy.refusal.code'] === 'model_not_allowed'),
      10_000,
    );
  });

  it('exports the GenAI metrics with their units', async () => {
    await otlp.waitFor(
      (r) => r.metrics().some((m) => m.name === 'gen_ai.client.token.usage'),
      10_000,
    );
    const names = new Map(otlp.metrics().map((m) => [m.name, m.unit]));
    expect(names.get('gen_ai.client.operation.duration')).toBe('s');
    expect(names.get('gen_ai.client.token.usage')).toBe('{token}');
  });

  it('leaves no canary in exported bytes, logs, /metrics or error bodies, even from a provider error that echoes the prompt', async () => {
    const client = new OpenAI({
      baseURL: `${sidecar.url}/openai/v1`,
      apiKey: 'placeholder',
      maxRetries: 0,
      defaultHeaders: { 'x-llmproxy-user': canary.caller },
    });
    await client.chat.completions.create({
      model: 'gpt-4o-mini',
      user: canary.user,
      messages: [{ role: 'user', content: canary.prompt }],
    });
    fake.behave({
      status: 400,
      errorMessage: `cannot process: ${canary.prompt} for ${canary.email}`,
    });
    const failed = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: canary.prompt }] })
      .catch((e: unknown) => e);
    fake.behave({ chunks: 2 });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      messages: [{ role: 'user', content: canary.prompt }],
    });
    for await (const _ of stream) void _;
    await otlp.waitFor((r) => r.spans().length >= 6, 10_000);
    await new Promise((r) => setTimeout(r, 500));
    const metrics = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
    const readyz = await (await fetch(`${sidecar.adminUrl}/readyz`)).text();
    expect(metrics).toContain('gen_ai_client_operation_duration');
    const everything = [otlp.allText(), sidecar.output(), metrics, readyz].join('\n');
    for (const [name, value] of Object.entries(canary)) {
      expect({ name, leaked: everything.includes(value) }).toEqual({ name, leaked: false });
    }
    // The provider's own error body reaches the app that sent the prompt, and nothing else.
    expect(failed).toBeInstanceOf(OpenAI.BadRequestError);
    expect(sidecar.output()).toContain('"caller":');
  });
});
