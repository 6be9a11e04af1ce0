// The built sidecar, run as a pod runs it with --log-level debug, reads its provider keys from
// Secrets Manager (moto) through a whole run: traffic, provider errors, a rotation picked up by
// a 401, a missing secret, Secrets Manager going away. Every byte it wrote or answered is then
// searched for the keys.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { startFakeProvider, type FakeProvider } from '../fake-provider/server.js';
import { startMoto, type Moto } from '../support/moto.js';
import { startSidecar, waitUntil, type RunningSidecar } from '../support/sidecar.js';

jest.setTimeout(120_000);

const canaries: string[] = [];
function canary(): string {
  const value = ['sk', 'canary', randomBytes(12).toString('hex')].join('-');
  canaries.push(value);
  return value;
}

/** Every response the sidecar gave: status line, headers and body, as text. */
const answered: string[] = [];

async function call(url: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(url, init);
  const body = await res.text();
  answered.push(`${res.status} ${JSON.stringify([...res.headers])}\n${body}`);
  return new Response(body, { status: res.status, headers: res.headers });
}

function chat(sidecar: RunningSidecar, provider: string, body: object): Promise<Response> {
  return call(`${sidecar.url}/${provider}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer client-placeholder' },
    body: JSON.stringify(body),
  });
}

function messages(sidecar: RunningSidecar, body: object): Promise<Response> {
  return call(`${sidecar.url}/anthropic/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'client-placeholder' },
    body: JSON.stringify(body),
  });
}

const hello = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

describe('provider keys from Secrets Manager never leave the sidecar', () => {
  let moto: Moto;
  let fake: FakeProvider;
  let sidecar: RunningSidecar;
  const openaiKey = canary();
  const rotatedKey = canary();
  const anthropicKey = canary();
  const unrelatedKey = canary();
  const openaiSecret = `llmproxy-leak/openai-${randomBytes(3).toString('hex')}`;
  const anthropicSecret = `llmproxy-leak/anthropic-${randomBytes(3).toString('hex')}`;

  beforeAll(async () => {
    moto = await startMoto();
    fake = await startFakeProvider();
    await moto.secrets.create(openaiSecret, `${openaiKey}\n`);
    const { arn } = await moto.secrets.create(
      anthropicSecret,
      JSON.stringify({ apiKey: anthropicKey, spare: canary() }),
    );
    const models = { allow: [{ pattern: '*' }], deny: [{ pattern: 'forbidden-*' }] };
    const policy = {
      apiVersion: 'llmproxy.io/v1alpha1',
      kind: 'CompiledPolicy',
      providers: [
        {
          name: 'openai',
          type: 'openai',
          baseURL: fake.url,
          credentials: {
            awsSecretsManager: { secretId: openaiSecret, refreshIntervalSeconds: 10 },
          },
          models,
        },
        {
          name: 'anthropic',
          type: 'anthropic',
          baseURL: fake.url,
          credentials: { awsSecretsManager: { secretId: arn, jsonKey: 'apiKey' } },
          models,
        },
        {
          name: 'broken',
          type: 'openai',
          baseURL: fake.url,
          credentials: { awsSecretsManager: { secretId: 'llmproxy-leak/does-not-exist' } },
          models,
        },
      ],
    };
    sidecar = await startSidecar({
      policy,
      args: ['--log-level', 'debug'],
      env: moto.env,
      // One provider's secret is missing on purpose, so the sidecar never becomes ready.
      waitFor: 'listening',
    });
  });

  afterAll(async () => {
    await sidecar?.stop();
    await fake?.close();
    await moto?.stop();
  });

  it('injects the keys read from Secrets Manager', async () => {
    fake.acceptKey(openaiKey);
    await waitUntil(async () => (await chat(sidecar, 'openai', hello)).status === 200, 15_000);
    expect(fake.requests.at(-1)?.headers.authorization).toBe(`Bearer ${openaiKey}`);
    fake.acceptKey(anthropicKey);
    const res = await messages(sidecar, {
      model: 'claude-3-5-haiku',
      max_tokens: 16,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(res.status).toBe(200);
    expect(fake.requests.at(-1)?.headers['x-api-key']).toBe(anthropicKey);
  });

  it('streams, and answers errors without the key', async () => {
    fake.acceptKey(openaiKey);
    const streamed = await chat(sidecar, 'openai', { ...hello, stream: true });
    expect(streamed.status).toBe(200);
    expect(await streamed.text()).toContain('data:');
    expect((await chat(sidecar, 'openai', { ...hello, model: 'forbidden-x' })).status).toBe(403);
    const malformed = await call(`${sidecar.url}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model":',
    });
    expect(malformed.status).toBeGreaterThanOrEqual(400);
    expect((await chat(sidecar, 'nobody', hello)).status).toBe(404);
    fake.behave({ status: 500, errorMessage: 'the provider had a bad day' });
    expect((await chat(sidecar, 'openai', hello)).status).toBe(500);
    fake.behave({});
  });

  it('fails closed with credentials_unavailable for a missing secret, naming the secret id', async () => {
    const res = await chat(sidecar, 'broken', hello);
    expect(res.status).toBeGreaterThanOrEqual(500);
    const body = await res.text();
    expect(body).toContain('credentials_unavailable');
    expect(body).toContain('llmproxy-leak/does-not-exist');
    const ready = await call(`${sidecar.adminUrl}/readyz`);
    expect(ready.status).not.toBe(200);
  });

  it('picks up a rotation when the provider refuses the old key, retrying the request once', async () => {
    await moto.secrets.put(openaiSecret, rotatedKey);
    fake.acceptKey(rotatedKey);
    fake.requests.length = 0;
    const res = await chat(sidecar, 'openai', hello);
    expect(res.status).toBe(200);
    expect(fake.requests.map((r) => r.headers.authorization)).toEqual([
      `Bearer ${openaiKey}`,
      `Bearer ${rotatedKey}`,
    ]);
  });

  it('refuses cleanly when the provider rejects the current key too', async () => {
    fake.acceptKey(unrelatedKey);
    const res = await chat(sidecar, 'openai', hello);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(await res.text()).toContain('credentials_unavailable');
  });

  it('keeps serving the cached key while Secrets Manager is unreachable', async () => {
    await moto.stop();
    fake.acceptKey(rotatedKey);
    // The 10 s background refresh of this provider's secret finds moto gone...
    const outage = (line: string) => line.includes('unreachable') && line.includes(openaiSecret);
    await waitUntil(() => sidecar.output().split('\n').some(outage), 20_000, 200);
    // ...and requests are still served with the cached key.
    expect((await chat(sidecar, 'openai', hello)).status).toBe(200);
    expect(fake.requests.at(-1)?.headers.authorization).toBe(`Bearer ${rotatedKey}`);
  });

  it('admin endpoints answer, and /metrics counts credential refreshes by provider and outcome', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/', '/nonexistent']) {
      await call(`${sidecar.adminUrl}${path}`);
    }
    const metrics = await (await fetch(`${sidecar.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/llmproxy_credential_refreshes[^\n]*outcome="ok"/);
    expect(metrics).toMatch(/llmproxy_credential_refreshes[^\n]*outcome="error"/);
  });

  it('wrote no key anywhere: stdout, stderr, responses, error bodies, admin endpoints', async () => {
    await sidecar.stop();
    const everything = [sidecar.output(), ...answered].join('\n');
    if (process.env.LLMPROXY_SHOW_OUTPUT === '1') process.stderr.write(everything);
    // The run really was at debug level and really went through the error paths.
    expect(sidecar.output()).toContain('"level":"debug"');
    expect(sidecar.output()).toContain('secret_read_failed');
    for (const value of canaries) {
      expect(everything).not.toContain(value);
      // The random part alone too, in case a prefix was cut off.
      expect(everything).not.toContain(value.slice(-24));
    }
  });
});
