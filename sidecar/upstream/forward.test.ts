// The forwarding adapter against real local servers: what reaches the provider, how each failure
// is classified, that a departed client aborts the upstream request, and that TLS is verified.
import { afterEach, describe, expect, it } from '@jest/globals';
import http, { type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { selfSignedCertificate } from '../admin/self-signed.js';
import {
  createUpstream,
  UpstreamError,
  type Upstream,
  type UpstreamRequest,
  type UpstreamResponse,
} from './forward.js';

const servers: Array<Server | https.Server> = [];
const upstreams: Upstream[] = [];

afterEach(async () => {
  for (const upstream of upstreams.splice(0)) upstream.close();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function listen(server: Server | https.Server, host = '127.0.0.1'): Promise<number> {
  servers.push(server);
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

interface Seen {
  method?: string;
  url?: string;
  headers?: http.IncomingHttpHeaders;
  body?: string;
  connections: number;
  aborted: boolean;
}

/** A provider that records what it receives and answers `reply` (or never, when undefined). */
async function provider(
  reply: ((res: ServerResponse) => void) | undefined,
  host = '127.0.0.1',
): Promise<{ port: number; seen: Seen }> {
  const seen: Seen = { connections: 0, aborted: false };
  const server = http.createServer(async (req, res) => {
    seen.method = req.method;
    seen.url = req.url;
    seen.headers = req.headers;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    seen.body = Buffer.concat(chunks).toString();
    res.on('close', () => (seen.aborted = !res.writableFinished));
    reply?.(res);
  });
  server.on('connection', () => (seen.connections += 1));
  return { port: await listen(server, host), seen };
}

/**
 * The client-facing side, as the pipeline uses the adapter: each request is forwarded with
 * `request` and the answer (or the failure's class) is relayed back.
 */
async function front(
  upstream: Upstream,
  request: () => UpstreamRequest,
  relay?: (answer: UpstreamResponse, res: ServerResponse) => void,
): Promise<{ url: string; failures: UpstreamError[] }> {
  const failures: UpstreamError[] = [];
  const server = http.createServer((_req, res) => {
    upstream.send(request(), res).then(
      (answer: UpstreamResponse) => {
        if (relay) return relay(answer, res);
        res.writeHead(answer.status);
        answer.read({
          data: (chunk) => res.write(chunk),
          end: () => res.end(),
          error: (error) => {
            failures.push(error);
            res.destroy();
          },
        });
      },
      (error: UpstreamError) => {
        failures.push(error);
        if (!res.destroyed) res.writeHead(502).end(error.failure);
      },
    );
  });
  return { url: `http://127.0.0.1:${await listen(server)}/`, failures };
}

async function post(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { method: 'POST', body: '{}' });
  return { status: res.status, body: await res.text() };
}

function upstream(): Upstream {
  const created = createUpstream();
  upstreams.push(created);
  return created;
}

const request = (url: string, timeoutMs = 5000): UpstreamRequest => ({
  url: new URL(url),
  headers: { 'content-type': 'application/json', authorization: 'Bearer sk-injected' },
  body: Buffer.from('{"model":"gpt-4o-mini"}'),
  timeoutMs,
});

describe('createUpstream', () => {
  it('POSTs exactly the prepared headers and body to the URL, with the provider as host', async () => {
    const target = await provider((res) => res.end('ok'));
    const up = upstream();
    const url = `http://127.0.0.1:${target.port}/v1/chat/completions?api-version=2024-10-21`;
    const client = await front(up, () => request(url));

    expect(await post(client.url)).toEqual({ status: 200, body: 'ok' });
    expect(target.seen.method).toBe('POST');
    expect(target.seen.url).toBe('/v1/chat/completions?api-version=2024-10-21');
    expect(target.seen.body).toBe('{"model":"gpt-4o-mini"}');
    expect(target.seen.headers).toEqual({
      'content-type': 'application/json',
      authorization: 'Bearer sk-injected',
      'content-length': '23',
      host: `127.0.0.1:${target.port}`,
      connection: 'keep-alive',
    });
  });

  it('reuses one kept-alive connection for successive requests', async () => {
    const target = await provider((res) => res.end('ok'));
    const up = upstream();
    const client = await front(up, () => request(`http://127.0.0.1:${target.port}/v1/x`));
    for (let i = 0; i < 5; i += 1) expect((await post(client.url)).status).toBe(200);
    expect(target.seen.connections).toBe(1);
  });

  it('reaches an IPv6 literal host', async () => {
    const target = await provider((res) => res.end('six'), '::1');
    const up = upstream();
    const client = await front(up, () => request(`http://[::1]:${target.port}/v1/x`));
    expect(await post(client.url)).toEqual({ status: 200, body: 'six' });
    expect(target.seen.headers?.host).toBe(`[::1]:${target.port}`);
  });

  it('classifies a provider that never answers as a timeout', async () => {
    const target = await provider(undefined);
    const up = upstream();
    const client = await front(up, () => request(`http://127.0.0.1:${target.port}/v1/x`, 200));
    expect(await post(client.url)).toEqual({ status: 502, body: 'timeout' });
    expect(client.failures.map((f) => f.failure)).toEqual(['timeout']);
  });

  it('classifies a refused connection as unavailable, with its cause', async () => {
    const closed = http.createServer();
    const port = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    servers.splice(servers.indexOf(closed), 1);
    const up = upstream();
    const client = await front(up, () => request(`http://127.0.0.1:${port}/v1/x`));
    expect(await post(client.url)).toEqual({ status: 502, body: 'unavailable' });
    expect(client.failures[0]?.causeCode).toBe('ECONNREFUSED');
  });

  it('aborts the upstream request when the client leaves before the answer, and keeps no socket', async () => {
    const target = await provider(undefined);
    const up = upstream();
    const client = await front(up, () => request(`http://127.0.0.1:${target.port}/v1/x`));
    const abort = new AbortController();
    const pending = fetch(client.url, { method: 'POST', body: '{}', signal: abort.signal });
    await waitFor(() => target.seen.body !== undefined);
    expect(up.openSockets()).toBe(1);
    abort.abort();
    await expect(pending).rejects.toThrow();
    await waitFor(() => target.seen.aborted && up.openSockets() === 0);
    expect(client.failures.map((f) => f.failure)).toEqual(['client_closed']);
  });

  it('classifies a provider that goes silent mid-body as a timeout', async () => {
    const target = await provider((res) => {
      res.writeHead(200);
      res.write('data: first\n\n');
    });
    const up = upstream();
    const client = await front(up, () => request(`http://127.0.0.1:${target.port}/v1/x`, 300));
    const res = await fetch(client.url, { method: 'POST', body: '{}' });
    await expect(res.text()).rejects.toThrow();
    expect(client.failures.map((f) => f.failure)).toEqual(['timeout']);
  });

  it('classifies a provider that drops mid-body as unavailable', async () => {
    const target = await provider((res) => {
      res.writeHead(200);
      res.write('data: first\n\n', () => res.destroy());
    });
    const up = upstream();
    const client = await front(up, () => request(`http://127.0.0.1:${target.port}/v1/x`));
    const res = await fetch(client.url, { method: 'POST', body: '{}' });
    await expect(res.text()).rejects.toThrow();
    expect(client.failures.map((f) => f.failure)).toEqual(['unavailable']);
  });

  it('stops reading from the provider while paused, and delivers every byte once resumed', async () => {
    const total = 64 * 1024 * 1024;
    const target = await provider((res) => {
      res.writeHead(200, { 'content-length': total });
      const chunk = Buffer.alloc(1024 * 1024, 'x');
      let sent = 0;
      const more = () => {
        while (sent < total) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    });
    const up = upstream();
    let received = 0;
    let receivedWhilePaused = -1;
    const client = await front(
      up,
      () => request(`http://127.0.0.1:${target.port}/v1/x`),
      (answer, res) => {
        answer.read({
          data: (chunk) => {
            if (received === 0) {
              answer.pause();
              setTimeout(() => {
                receivedWhilePaused = received;
                answer.resume();
              }, 300);
            }
            received += chunk.length;
          },
          end: () => res.end(String(received)),
          error: () => res.destroy(),
        });
      },
    );
    expect(await post(client.url)).toEqual({ status: 200, body: String(total) });
    // Unpaused, loopback delivers all 64 MiB well within 300 ms; paused, at most what was
    // already parsed from the socket's last read.
    expect(receivedWhilePaused).toBeGreaterThan(0);
    expect(receivedWhilePaused).toBeLessThan(total / 4);
  });

  it('discards an answer unread, closing a body that is still arriving', async () => {
    const target = await provider((res) => {
      res.writeHead(200);
      res.write('data: first\n\n');
    });
    const up = upstream();
    const client = await front(
      up,
      () => request(`http://127.0.0.1:${target.port}/v1/x`),
      (answer, res) => {
        answer.discard();
        res.end('discarded');
      },
    );
    expect(await post(client.url)).toEqual({ status: 200, body: 'discarded' });
    await waitFor(() => target.seen.aborted && up.openSockets() === 0);
    expect(client.failures).toEqual([]);
  });

  it('refuses a provider whose certificate it cannot verify, before sending anything', async () => {
    const { key, cert } = await selfSignedCertificate('provider.example', Date.now());
    let received = false;
    const tls = https.createServer({ key, cert }, (_req, res) => {
      received = true;
      res.end('should not be reached');
    });
    const port = await listen(tls);
    const up = upstream();
    const client = await front(up, () => request(`https://127.0.0.1:${port}/v1/x`));
    expect(await post(client.url)).toEqual({ status: 502, body: 'unavailable' });
    expect(client.failures[0]?.causeCode).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(received).toBe(false);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
