// A collector that refuses exports: the sidecar says so in its log, without the collector's error
// body (which may echo what it was sent), and keeps serving.
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import {
  createLogger,
  createTelemetry,
  loadOtlpExporters,
  type Telemetry,
} from '../../sidecar/telemetry/index.js';

const canary = `collector-says-${randomBytes(6).toString('hex')}`;
const lines: string[] = [];
let collector: Server;
let telemetry: Telemetry;

beforeAll(async () => {
  collector = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 3, message: `rejected: ${canary}` }));
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  const { port } = collector.address() as AddressInfo;
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  telemetry = createTelemetry({
    serviceName: 'llmproxy-sidecar',
    hmacKey: randomBytes(32),
    log: createLogger({ stream }),
    secretValues: () => [],
    otlp: await loadOtlpExporters(),
    otlpEndpoint: `http://127.0.0.1:${port}`,
  });
});

afterAll(async () => {
  await telemetry?.shutdown();
  collector?.close();
});

it('logs one detail-free warning when the collector rejects an export', async () => {
  for (let i = 0; i < 3; i++)
    telemetry
      .startCall({
        operation: 'chat',
        provider: 'openai',
        providerType: 'openai',
        requestModel: 'gpt-4o',
        policyVersion: 'v1',
        incomingHeaders: {},
      })
      .finish({ status: 200 });
  await telemetry.forceFlush().catch(() => undefined);
  const deadline = Date.now() + 10_000;
  while (!lines.some((l) => l.includes('export_failed')) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  const text = lines.join('');
  expect(text).toContain('telemetry export failed');
  expect(text).not.toContain(canary);
  expect(lines.filter((l) => l.includes('export_failed'))).toHaveLength(1);
});
