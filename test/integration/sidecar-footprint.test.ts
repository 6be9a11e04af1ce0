// What a sidecar loads decides most of its memory (docs/benchmarks.md, "Memory"). A standalone
// sidecar with a file key must not load what only other set-ups need: TypeBox (policies are
// checked by generated code), the compiler's CEL evaluator, the AWS SDK, ioredis, the OTLP
// exporters, express, or genai-prices (the sidecar prices from a table generated from it).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SIDECAR_NODE_OPTIONS } from '../../sidecar/node-options.js';
import { startFakeProvider, type FakeProvider } from '../fake-provider/server.js';
import { basicPolicy, startSidecar, waitUntil, type RunningSidecar } from '../support/sidecar.js';

/**
 * A module-resolution hook that records every package the process imports, into `log`, and the
 * CommonJS modules it has required (which the hook does not see), into `cjsLog` every 50 ms.
 */
function recordingImports(dir: string, log: string, cjsLog: string): string {
  writeFileSync(
    path.join(dir, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (resolved.url.includes('/node_modules/')) appendFileSync(${JSON.stringify(log)}, resolved.url + '\\n');
  return resolved;
}
`,
  );
  const register = path.join(dir, 'register.mjs');
  writeFileSync(
    register,
    `import { renameSync, writeFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
register(${JSON.stringify(pathToFileURL(path.join(dir, 'hooks.mjs')).href)});
const cache = createRequire(import.meta.url).cache;
// Written aside and renamed, so the test never reads a half-written list.
setInterval(() => {
  writeFileSync(${JSON.stringify(`${cjsLog}.next`)}, Object.keys(cache).join('\\n'));
  renameSync(${JSON.stringify(`${cjsLog}.next`)}, ${JSON.stringify(cjsLog)});
}, 50).unref();
`,
  );
  return register;
}

const NOT_LOADED = [
  '@sinclair/typebox',
  '@aws-sdk/',
  '@bufbuild/', // the compiler's CEL evaluator: manifests only
  'ioredis',
  '@opentelemetry/exporter-trace-otlp-http',
  '@opentelemetry/exporter-metrics-otlp-http',
  'express',
];

describe('a standalone sidecar with a file key', () => {
  let fake: FakeProvider;
  let sidecar: RunningSidecar;
  let log: string;
  let cjsLog: string;

  beforeAll(async () => {
    fake = await startFakeProvider({ port: 0, record: false });
    const dir = mkdtempSync(path.join(tmpdir(), 'llmproxy-footprint-'));
    log = path.join(dir, 'imports.log');
    cjsLog = path.join(dir, 'required.log');
    writeFileSync(log, '');
    const keyFile = path.join(dir, 'key');
    writeFileSync(keyFile, `footprint-${Date.now()}\n`);
    sidecar = await startSidecar({
      // One line of JSON, as a tool would write it: the compiler must not load for it either.
      policy: JSON.stringify(basicPolicy(fake.url, { keyFile })),
      env: {
        NODE_OPTIONS: `${SIDECAR_NODE_OPTIONS} --import=${recordingImports(dir, log, cjsLog)}`,
      },
    });
  });

  afterAll(async () => {
    await sidecar?.stop();
    await fake?.close();
  });

  it('serves a call without loading what only other set-ups need', async () => {
    const res = await fetch(`${sidecar.url}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(200);
    const loaded = readFileSync(log, 'utf8');
    // The hook works: the packages the sidecar does need are in the log.
    expect(loaded).toContain('/node_modules/@opentelemetry/api/');
    expect(loaded).toContain('/node_modules/winston/');
    for (const name of NOT_LOADED) expect(loaded).not.toContain(`/node_modules/${name}`);
  });

  it('prices the call from its own table, without requiring genai-prices', async () => {
    // gpt-4o-mini at $0.15 and $0.60 per million: 12 tokens in and 7 out cost 6 micro-dollars.
    await sidecar.waitForOutput('"costMicros":6');
    const pricedAt = Date.now();
    await waitUntil(() => existsSync(cjsLog) && statSync(cjsLog).mtimeMs > pricedAt + 100, 5_000);
    expect(readFileSync(cjsLog, 'utf8')).toContain('/node_modules/winston/'); // the list is real
    expect(readFileSync(cjsLog, 'utf8')).not.toContain('/node_modules/@pydantic/genai-prices/');
  });

  it("loads undici's dispatcher without the rest of undici (fetch, WebSocket, caches)", async () => {
    const required = () => (existsSync(cjsLog) ? readFileSync(cjsLog, 'utf8') : '');
    await waitUntil(
      () => required().includes('/node_modules/undici/lib/dispatcher/agent.js'),
      5_000,
    );
    const undici = required()
      .split('\n')
      .filter((m) => m.includes('/node_modules/undici/'));
    expect(undici).toContainEqual(expect.stringContaining('/undici/lib/dispatcher/client-h1.js'));
    expect(undici).not.toContainEqual(expect.stringContaining('/undici/index.js'));
    expect(undici).not.toContainEqual(expect.stringContaining('/undici/lib/web/'));
  });

  it('still explains an invalid policy key by key (TypeBox loads only then)', async () => {
    sidecar.writePolicy('apiVersion: llmproxy.io/v1alpha1\nkind: CompiledPolicy\nproviders: 7\n');
    await sidecar.waitForOutput('keeping the policy in force');
    expect(sidecar.output()).toMatch(/\/providers: Expected array/);
  });
});
