// Telemetry end to end: a run full of canaries through Telemetry, the logger and data protection,
// exported over real OTLP/HTTP to a receiver and scraped from /metrics. None may come out.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { protectRequest } from '../../sidecar/protection/index.js';
import {
  createLogger,
  createTelemetry,
  loadOtlpExporters,
  logAccess,
  operationFor,
  type Telemetry,
} from '../../sidecar/telemetry/index.js';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';

const hex = (n: number) => randomBytes(n).toString('hex');

// Built at run time: nothing in the source looks like a credential.
const canary = {
  key: ['sk', 'proj', randomBytes(24).toString('base64url')].join('-'),
  prompt: `the violet heron counts ${hex(6)} pebbles at dawn`,
  email: `canary.${hex(4)}@example.com`,
  userId: `user-${hex(6)}`,
  endUser: `end-${hex(6)}`,
};
const providerError = JSON.stringify({
  error: {
    message: `Invalid prompt: '${canary.prompt}' (${canary.email})`,
    type: 'invalid_request',
  },
});

let receiver: OtlpReceiver;
let telemetry: Telemetry;
let metricsServer: Server;
let metricsUrl: string;
const logLines: string[] = [];

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  const stream = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  const log = createLogger({ level: 'debug', stream, secretValues: () => [canary.key] });
  telemetry = createTelemetry({
    serviceName: 'llmproxy-sidecar',
    hmacKey: randomBytes(32),
    log,
    secretValues: () => [canary.key],
    otlp: await loadOtlpExporters(),
    otlpEndpoint: receiver.url,
    metricExportIntervalMs: 60_000,
  });
  metricsServer = createServer((req, res) => telemetry.metricsHandler(req, res));
  await new Promise<void>((resolve) => metricsServer.listen(0, '127.0.0.1', resolve));
  metricsUrl = `http://127.0.0.1:${(metricsServer.address() as AddressInfo).port}/metrics`;

  const headers = {
    authorization: `Bearer ${canary.key}`,
    'x-api-key': canary.key,
    cookie: `session=${canary.key}`,
    'x-llmproxy-user': canary.userId,
    traceparent: `00-${hex(16)}-${hex(8)}-01`,
  };
  const body = {
    model: 'gpt-4o-mini',
    user: canary.endUser,
    messages: [{ role: 'user', content: `${canary.prompt}. Reply to ${canary.email}.` }],
  };

  // 1. An allowed call with an email redacted by data protection, streamed.
  const verdict = protectRequest('openai', body, { pii: 'redact', secrets: 'block' });
  const ok = telemetry.startCall({
    operation: operationFor('/v1/chat/completions'),
    provider: 'openai',
    providerType: 'openai',
    requestModel: body.model,
    serverAddress: 'api.openai.example',
    serverPort: 443,
    policyVersion: 'sha256:' + '0'.repeat(64),
    incomingHeaders: headers,
    endUser: body.user,
  });
  ok.recordContent('input', body); // captureContent is off: must record nothing
  ok.firstChunk();
  ok.finish({
    status: 200,
    responseModel: 'gpt-4o-mini-2024-07-18',
    usage: { inputTokens: 21, outputTokens: 5 },
    costMicros: 17,
    limitIds: ['team-rpm'],
    dlpCounts: verdict.counts,
  });
  logAccess(log, {
    method: 'POST',
    route: '/openai/v1/chat/completions',
    provider: 'openai',
    model: body.model,
    status: 200,
    decision: verdict.verdict,
    durationMs: 3.2,
    callerHash: telemetry.hashIdentifier(canary.userId),
    traceId: ok.traceId,
    dlpCounts: verdict.counts,
  });

  // 2. A prompt carrying the key: blocked by data protection.
  const leaky = {
    ...body,
    messages: [{ role: 'user', content: `use ${canary.key} for ${canary.prompt}` }],
  };
  const blocked = protectRequest('openai', leaky, { pii: 'redact', secrets: 'block' });
  const refused = telemetry.startCall({
    operation: 'chat',
    provider: 'openai',
    providerType: 'openai',
    requestModel: body.model,
    policyVersion: 'v1',
    incomingHeaders: headers,
  });
  refused.refused('content_blocked', {
    entity: blocked.verdict === 'blocked' ? blocked.entity : undefined,
    dlpCounts: blocked.counts,
  });

  // 3. A client that sends the key as the model, and an upstream error echoing the prompt, which a
  //    careless caller passes on as the error type.
  const failed = telemetry.startCall({
    operation: 'chat',
    provider: 'openai',
    providerType: 'openai',
    requestModel: canary.key,
    policyVersion: 'v1',
    incomingHeaders: headers,
  });
  failed.finish({ status: 400, errorType: providerError, responseModel: canary.prompt });
  log.warn('upstream returned an error', {
    component: 'proxy',
    status: 400,
    model: canary.key,
    error: `provider said ${canary.key}`,
    // Not allowlisted: dropped whatever it holds.
    body: providerError,
    prompt: canary.prompt,
  } as Record<string, string | number>);

  // 4. A rate-limit refusal and a credential refresh.
  telemetry
    .startCall({
      operation: 'embeddings',
      provider: 'local',
      providerType: 'openai-compatible',
      requestModel: 'bge-small',
      policyVersion: 'v1',
      incomingHeaders: {},
    })
    .refused('rate_limited', { status: 429, limitId: 'team-rpm' });
  telemetry.recordCredentialRefresh('openai', 'ok');

  await telemetry.forceFlush();
  await receiver.waitFor(
    (r) => r.spans().length >= 4 && r.metrics().some((m) => m.name === 'llmproxy.requests'),
  );
  await new Promise((resolve) => setImmediate(resolve));
}, 30_000);

afterAll(async () => {
  await telemetry?.shutdown();
  metricsServer?.close();
  await receiver?.close();
});

async function scrape(): Promise<string> {
  return (await fetch(metricsUrl)).text();
}

describe('canaries', () => {
  const places = () => ({
    otlp: receiver.allText(),
    logs: logLines.join(''),
  });

  it.each(Object.keys(canary) as (keyof typeof canary)[])(
    'the %s appears in no exported byte, log line or /metrics',
    async (name) => {
      const value = canary[name];
      const { otlp, logs } = places();
      const metrics = await scrape();
      expect(otlp.length).toBeGreaterThan(1000);
      expect(otlp.includes(value)).toBe(false);
      expect(logs.includes(value)).toBe(false);
      expect(metrics.includes(value)).toBe(false);
    },
  );

  it('the provider error body appears nowhere, not even in part', async () => {
    const { otlp, logs } = places();
    const metrics = await scrape();
    for (const text of [otlp, logs, metrics]) {
      expect(text).not.toContain('Invalid prompt');
      expect(text).not.toContain('invalid_request');
    }
  });

  it('the logs still say what happened', () => {
    const entries = logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(entries).toContainEqual(
      expect.objectContaining({
        event: 'access',
        status: 200,
        dlp: ['email=1'],
        decision: 'redacted',
      }),
    );
    expect(entries).toContainEqual(
      expect.objectContaining({ message: 'upstream returned an error', model: '[REDACTED]' }),
    );
  });
});

describe('conventions', () => {
  it('exports CLIENT spans named "{operation} {model}" with GenAI and llmproxy attributes', () => {
    const spans = receiver.spans();
    const ok = spans.find((s) => s.attributes['llmproxy.decision'] === 'redacted');
    expect(ok).toBeDefined();
    expect(ok!.name).toBe('chat gpt-4o-mini');
    expect(ok!.kind).toBe(3); // SPAN_KIND_CLIENT
    expect(ok!.parentSpanId).toBeTruthy();
    expect(ok!.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
      'gen_ai.usage.input_tokens': 21,
      'gen_ai.usage.output_tokens': 5,
      'server.address': 'api.openai.example',
      'server.port': 443,
      'llmproxy.cost_micros': 17,
      'llmproxy.limit_ids': ['team-rpm'],
      'llmproxy.dlp.count.email': 1,
    });
    expect(ok!.attributes['llmproxy.caller.hash']).toMatch(/^[0-9a-f]{32}$/);
    expect(ok!.attributes['user.hash']).toMatch(/^[0-9a-f]{32}$/);
    expect(ok!.attributes).not.toHaveProperty(['llmproxy.content.input']);

    const blocked = spans.find((s) => s.attributes['llmproxy.refusal.code'] === 'content_blocked');
    expect(blocked!.attributes).toMatchObject({
      'llmproxy.decision': 'refused',
      'llmproxy.dlp.entity': 'openai_key',
      'error.type': 'content_blocked',
    });
    const failed = spans.find((s) => s.attributes['error.type'] === '_OTHER');
    expect(failed!.name).toBe('llmproxy');
    expect(failed!.attributes).not.toHaveProperty(['gen_ai.request.model']);
    expect(failed!.attributes['error.type']).toBe('_OTHER');
    expect(failed!.attributes['gen_ai.response.model']).toBe('_OTHER');
    for (const s of spans) expect(s.status?.message ?? '').toBe('');
  });

  it('exports the GenAI metrics with their units and token types, and ours', () => {
    const metrics = receiver.metrics();
    const byName = new Map(metrics.map((m) => [m.name, m]));
    expect(byName.get('gen_ai.client.operation.duration')?.unit).toBe('s');
    expect(byName.get('gen_ai.client.operation.time_to_first_chunk')?.unit).toBe('s');
    const tokens = byName.get('gen_ai.client.token.usage');
    expect(tokens?.unit).toBe('{token}');
    expect(tokens?.attributes.map((a) => a['gen_ai.token.type']).sort()).toEqual([
      'input',
      'output',
    ]);
    expect(tokens?.attributes[0]).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
      'server.address': 'api.openai.example',
    });
    expect(byName.get('llmproxy.requests')?.attributes).toContainEqual(
      expect.objectContaining({
        'llmproxy.decision': 'refused',
        'llmproxy.refusal.code': 'rate_limited',
      }),
    );
    expect(byName.get('llmproxy.limiter.rejections')?.attributes).toContainEqual(
      expect.objectContaining({ 'llmproxy.limit_id': 'team-rpm' }),
    );
    expect(byName.get('llmproxy.dlp.detections')?.attributes).toContainEqual(
      expect.objectContaining({ 'llmproxy.dlp.entity': 'email' }),
    );
    expect(byName.has('llmproxy.cost.micros')).toBe(true);
    expect(byName.has('llmproxy.credential.refreshes')).toBe(true);
  });
});
