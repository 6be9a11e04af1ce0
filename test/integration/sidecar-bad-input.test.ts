// Hostile and malformed requests get a precise error, never reach the provider, and never
// crash or wedge the sidecar.
import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { startFakeProvider, type FakeProvider } from '../fake-provider/server.js';
import { postHead, rawRequest } from '../support/raw-http.js';
import { basicPolicy, startSidecar, type RunningSidecar } from '../support/sidecar.js';

let fake: FakeProvider;
let sidecar: RunningSidecar;
const CHAT = '/openai/v1/chat/completions';
const okBody = JSON.stringify({ model: 'gpt-4o-mini', messages: [] });

beforeAll(async () => {
  fake = await startFakeProvider();
  sidecar = await startSidecar({
    policy: basicPolicy(fake.url),
    args: [
      '--max-body-bytes',
      '4096',
      '--request-timeout-ms',
      '1000',
      '--upstream-timeout-ms',
      '800',
    ],
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

function post(path: string, body: string, headers: Record<string, string> = {}) {
  return fetch(`${sidecar.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
}

async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { error?: { code?: string } };
  return body.error?.code;
}

describe('malformed bodies', () => {
  it.each([
    ['malformed JSON', '{"model": "gpt-4o-mini",'],
    ['a JSON array', '[1, 2]'],
    ['a missing model', '{"messages": []}'],
    ['a numeric model', '{"model": 4, "messages": []}'],
    ['an object model', '{"model": {"$ne": 1}}'],
    ['a model with spaces and control characters', '{"model": "gpt-4o-mini\\u0000 x"}'],
    ['invalid UTF-8 JSON', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]).toString('latin1')],
  ])('refuses %s with invalid_request', async (_name, body) => {
    const res = await post(CHAT, body);
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe('invalid_request');
    expect(fake.requests).toHaveLength(0);
  });

  it('refuses a non-JSON content type and a compressed body with 415', async () => {
    const text = await post(CHAT, okBody, { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    const gzip = await post(CHAT, okBody, { 'content-encoding': 'gzip' });
    expect(gzip.status).toBe(415);
    expect(fake.requests).toHaveLength(0);
  });
});

describe('oversized bodies', () => {
  it('answers 413 to a declared Content-Length over the limit without waiting for the body', async () => {
    const res = await rawRequest(sidecar.url, [postHead(CHAT, { 'Content-Length': 50_000_000 })], {
      timeoutMs: 3_000,
    });
    expect(res.status).toBe(413);
    expect(res.body).toContain('request_too_large');
    expect(res.firstByteMs).toBeLessThan(1_000);
    expect(res.closed).toBe(true);
    expect(fake.requests).toHaveLength(0);
  });

  it('cuts off a chunked body as soon as it crosses the limit', async () => {
    const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;
    const piece = 'x'.repeat(3000);
    const res = await rawRequest(
      sidecar.url,
      [postHead(CHAT, { 'Transfer-Encoding': 'chunked' }), chunk(piece), chunk(piece)],
      { gapMs: 50 },
    );
    expect(res.status).toBe(413);
    expect(fake.requests).toHaveLength(0);
  });

  it('accepts a chunked body under the limit', async () => {
    const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;
    const res = await rawRequest(
      sidecar.url,
      [
        postHead(CHAT, { 'Transfer-Encoding': 'chunked', Connection: 'close' }),
        chunk(okBody.slice(0, 10)),
        chunk(okBody.slice(10)),
        '0\r\n\r\n',
      ],
      { gapMs: 20 },
    );
    expect(res.status).toBe(200);
    expect(fake.requests).toHaveLength(1);
  });
});

describe('smuggling and hostile heads', () => {
  it('refuses Content-Length together with Transfer-Encoding', async () => {
    const smuggled = 'GET /admin HTTP/1.1\r\nHost: x\r\n\r\n';
    const res = await rawRequest(sidecar.url, [
      postHead(CHAT, { 'Content-Length': 4, 'Transfer-Encoding': 'chunked' }),
      `0\r\n\r\n${smuggled}`,
    ]);
    expect(res.status).toBe(400);
    expect(res.body).toContain('invalid_request');
    expect(fake.requests).toHaveLength(0);
  });

  it('refuses a header value carrying a bare line feed (header injection)', async () => {
    const res = await rawRequest(sidecar.url, [
      `POST ${CHAT} HTTP/1.1\r\nHost: x\r\nX-Note: a\nInjected: yes\r\nContent-Length: 2\r\n\r\n{}`,
    ]);
    expect(res.status).toBe(400);
    expect(fake.requests).toHaveLength(0);
  });

  it('answers 431 to oversized headers', async () => {
    const res = await rawRequest(sidecar.url, [
      postHead(CHAT, { 'X-Big': 'a'.repeat(20_000), 'Content-Length': 2 }),
      '{}',
    ]);
    expect(res.status).toBe(431);
  });

  it.each([
    '/openai/../admin/v1/chat/completions',
    '/openai/%2e%2e/v1/chat/completions',
    '/openai/v1%2fchat/completions',
    '/openai/v1/chat%5ccompletions',
    '/openai//v1/chat/completions',
    '/openai/./v1/chat/completions',
    'http://evil.example/openai/v1/chat/completions',
  ])('refuses the path %s', async (path) => {
    const res = await rawRequest(sidecar.url, [
      postHead(path, { 'Content-Length': okBody.length, Connection: 'close' }),
      okBody,
    ]);
    expect(res.status).toBe(400);
    expect(fake.requests).toHaveLength(0);
  });

  it('names an unknown provider, an unknown endpoint and a wrong method precisely', async () => {
    const provider = await post('/mistral/v1/chat/completions', okBody);
    expect([provider.status, await errorCode(provider)]).toEqual([404, 'provider_not_found']);
    const route = await post('/openai/v1/files', okBody);
    expect([route.status, await errorCode(route)]).toEqual([404, 'route_not_found']);
    const root = await fetch(`${sidecar.url}/`);
    expect([root.status, await errorCode(root)]).toEqual([404, 'route_not_found']);
    const method = await fetch(`${sidecar.url}${CHAT}`);
    expect(method.status).toBe(405);
    expect(method.headers.get('allow')).toBe('POST');
    expect(fake.requests).toHaveLength(0);
  });
});

describe('memory budget', () => {
  it('refuses a body that would push the requests in memory past the budget, and recovers', async () => {
    const tight = await startSidecar({
      policy: basicPolicy(fake.url),
      args: [
        '--max-body-bytes',
        '4096',
        '--max-buffered-bytes',
        '6000',
        '--request-timeout-ms',
        '3000',
      ],
    });
    try {
      // The first request declares 4000 bytes and stalls half way, holding its reservation.
      const holding = rawRequest(
        tight.url,
        [postHead(CHAT, { 'Content-Length': 4000 }), '{"model":'],
        { timeoutMs: 4_000 },
      );
      await new Promise((r) => setTimeout(r, 300));
      const refused = await fetch(`${tight.url}${CHAT}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: 'x'.repeat(3000) }],
        }),
      });
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('overloaded');
      expect((await holding).status).toBe(408);
      const after = await fetch(`${tight.url}${CHAT}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: okBody,
      });
      expect(after.status).toBe(200);
    } finally {
      await tight.stop();
    }
  });
});

describe('slow and silent peers', () => {
  jest.setTimeout(15_000);

  it('drops a client that sends its head too slowly (slowloris)', async () => {
    const bytes = postHead(CHAT, { 'Content-Length': 2 }).split('');
    const started = Date.now();
    const res = await rawRequest(sidecar.url, bytes.slice(0, 40), { gapMs: 100, timeoutMs: 8_000 });
    expect(res.closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(6_000);
  });

  it('answers 408 to a body that stalls', async () => {
    const res = await rawRequest(
      sidecar.url,
      [postHead(CHAT, { 'Content-Length': 100 }), '{"model":'],
      { timeoutMs: 6_000 },
    );
    expect(res.status).toBe(408);
    expect(fake.requests).toHaveLength(0);
  });

  it('answers upstream_timeout when the provider never answers', async () => {
    fake.behave({ hang: true });
    const res = await post(CHAT, okBody);
    expect(res.status).toBe(504);
    expect(await errorCode(res)).toBe('upstream_timeout');
  });
});

describe('after all of that', () => {
  it('is still alive and serving', async () => {
    const res = await post(CHAT, okBody);
    expect(res.status).toBe(200);
    const health = await fetch(`${sidecar.adminUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(sidecar.process.exitCode).toBeNull();
  });
});
