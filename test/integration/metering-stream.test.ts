// The meter between two real sockets, wired the way the sidecar pipeline wires it: an upstream that
// streams SSE in odd chunks, a pass-through that forwards what the meter returns, a client that may leave.
import { afterEach, describe, expect, it } from '@jest/globals';
import { request, createServer, type Server, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createResponseMeter, type ResponseMeter } from '../../sidecar/metering/index.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(() => r(undefined)))));
});

const listen = (server: Server): Promise<number> =>
  new Promise((resolve) => {
    servers.push(server);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });

const event = (o: object | string) => `data: ${typeof o === 'string' ? o : JSON.stringify(o)}\n\n`;
const delta = (content: string) => ({
  model: 'gpt-4o-2024-08-06',
  choices: [{ index: 0, delta: { content } }],
  usage: null,
});
const USAGE = {
  model: 'gpt-4o-2024-08-06',
  choices: [],
  usage: { prompt_tokens: 40, completion_tokens: 200, total_tokens: 240 },
};

/** Streams 200 deltas, then usage, in 7-byte writes with pauses, so events straddle TCP reads. */
function upstream(): Server {
  return createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const body = Buffer.from(
      Array.from({ length: 200 }, (_, i) => event(delta(`tok${i} `))).join('') +
        event(USAGE) +
        event('[DONE]'),
    );
    let at = 0;
    const tick = () => {
      if (res.destroyed) return;
      if (at >= body.length) return void res.end();
      res.write(body.subarray(at, at + 7));
      at += 7;
      if (at % 700 === 0) setTimeout(tick, 1);
      else setImmediate(tick);
    };
    tick();
  });
}

/** The pipeline's part: forward meter.push(chunk), end with meter.end(), stop upstream when the client leaves. */
function passThrough(
  upstreamPort: number,
  strip: boolean,
  meters: Promise<ResponseMeter>[],
): Server {
  return createServer((req, res) => {
    const meter = createResponseMeter('openai', {
      streaming: true,
      stripUsageChunk: strip,
      requestModel: 'gpt-4o',
      estimatedInputTokens: 99,
    });
    meters.push(
      new Promise((resolve) => {
        const up = request(
          { port: upstreamPort, host: '127.0.0.1', path: req.url },
          (upRes: IncomingMessage) => {
            res.writeHead(upRes.statusCode ?? 502, upRes.headers);
            upRes.on('data', (chunk: Buffer) => {
              const out = meter.push(chunk);
              if (out.length > 0) res.write(out);
            });
            upRes.on('end', () => {
              res.end(meter.end());
              resolve(meter);
            });
            upRes.on('error', () => resolve(meter));
          },
        );
        up.on('error', () => resolve(meter));
        res.on('close', () => {
          if (!res.writableFinished) {
            up.destroy();
            resolve(meter);
          }
        });
        up.end();
      }),
    );
  });
}

function client(port: number, onData?: (text: string, abort: () => void) => void): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const req = request({ port, host: '127.0.0.1', path: '/v1/chat/completions' }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
        onData?.(text, () => req.destroy());
      });
      res.on('end', () => resolve(text));
      res.on('close', () => resolve(text));
    });
    req.on('error', () => resolve(text));
    req.end();
  });
}

describe('metering a real stream', () => {
  it('meters exact usage and strips the usage chunk the client did not ask for', async () => {
    const meters: Promise<ResponseMeter>[] = [];
    const proxyPort = await listen(passThrough(await listen(upstream()), true, meters));
    const text = await client(proxyPort);
    expect(text).toContain('tok199 ');
    expect(text).not.toContain('"prompt_tokens"');
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
    const usage = (await meters[0]!).usage();
    expect(usage).toMatchObject({ inputTokens: 40, outputTokens: 200, estimated: false });
  });

  it('still meters what was produced when the client abandons the stream', async () => {
    const meters: Promise<ResponseMeter>[] = [];
    const proxyPort = await listen(passThrough(await listen(upstream()), true, meters));
    await client(proxyPort, (text, abort) => {
      if (text.includes('tok50 ')) abort();
    });
    const usage = (await meters[0]!).usage();
    expect(usage.estimated).toBe(true);
    expect(usage.inputTokens).toBe(99);
    expect(usage.outputTokens).toBeGreaterThanOrEqual(50);
    expect(usage.outputTokens).toBeLessThan(200);
  });
});
