// Content capture on opt-in: the text is exported, but only after every detector has redacted it
// and known secrets are masked, and it is cut to a bounded length.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import {
  createLogger,
  createTelemetry,
  loadOtlpExporters,
  type Telemetry,
} from '../../sidecar/telemetry/index.js';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';

const key = ['sk', 'proj', randomBytes(24).toString('base64url')].join('-');
// A held secret with no recognizable shape: only the value-based mask can catch it.
const opaque = randomBytes(10).toString('hex');
const email = `canary.${randomBytes(4).toString('hex')}@example.com`;
const sentence = `the amber fox ${randomBytes(4).toString('hex')} sleeps`;

let receiver: OtlpReceiver;
let telemetry: Telemetry;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  telemetry = createTelemetry({
    serviceName: 'llmproxy-sidecar',
    hmacKey: randomBytes(32),
    log: createLogger({ level: 'error' }),
    secretValues: () => [key, opaque],
    otlp: await loadOtlpExporters(),
    otlpEndpoint: receiver.url,
  });
  const call = telemetry.startCall({
    operation: 'chat',
    provider: 'anthropic',
    providerType: 'anthropic',
    requestModel: 'claude-x',
    policyVersion: 'v1',
    incomingHeaders: {},
    captureContent: true,
  });
  call.recordContent('input', {
    system: `token ${opaque}`,
    messages: [{ role: 'user', content: `${sentence}; mail ${email}; key ${key}` }],
  });
  call.recordContent('output', { content: [{ type: 'text', text: 'z'.repeat(10_000) }] });
  call.finish({ status: 200 });
  await telemetry.forceFlush();
  await receiver.waitFor((r) => r.spans().length >= 1);
}, 30_000);

afterAll(async () => {
  await telemetry?.shutdown();
  await receiver?.close();
});

it('exports captured text redacted and masked, never the email, the key or an opaque secret', () => {
  const [span] = receiver.spans();
  const input = String(span!.attributes['llmproxy.content.input']);
  expect(input).toContain(sentence);
  expect(input).toContain('[REDACTED:email]');
  expect(input).toContain('[REDACTED:openai_key]');
  expect(input).toContain('[REDACTED]');
  const all = receiver.allText();
  for (const value of [key, opaque, email]) expect(all.includes(value)).toBe(false);
});

it('cuts captured text to a bounded length', () => {
  const [span] = receiver.spans();
  expect(String(span!.attributes['llmproxy.content.output']).length).toBeLessThanOrEqual(1025);
});
