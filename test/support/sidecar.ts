// Runs the built sidecar (dist/) as a real process, the way a pod runs it, and keeps every byte
// it writes so tests can look for leaks.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { SIDECAR_PROCESS_ENV } from '../../sidecar/node-options.js';

const ROOT = resolve(import.meta.dirname, '../..');
export const SIDECAR_MAIN = join(ROOT, 'dist/sidecar/main.js');

export interface RunningSidecar {
  url: string;
  adminUrl: string;
  policyPath: string;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  writePolicy(policy: unknown): void;
  /** Resolves once the sidecar's output contains the text. */
  waitForOutput(text: string, timeoutMs?: number): Promise<void>;
  process: ChildProcess;
  stop(): Promise<number | null>;
}

export interface SidecarOptions {
  /** Written to a temporary file, unless `policyPath` names an existing one to use as it is. */
  policy?: unknown;
  policyPath?: string;
  /** Managed mode instead of a policy file: the operator's URL and the pod's credentials. */
  operator?: { url: string; tokenFile: string; caFile: string };
  /** Fixed ports instead of free ones (make dev). */
  ports?: { listen: number; admin: number };
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Wait for /readyz (default) or only for the listener. */
  waitFor?: 'ready' | 'listening';
  /** How long that may take (default 15 s; many sidecars starting at once on a small machine need more). */
  startTimeoutMs?: number;
}

export async function startSidecar(options: SidecarOptions): Promise<RunningSidecar> {
  if (!existsSync(SIDECAR_MAIN))
    throw new Error('dist/sidecar/main.js is missing: run `npm run build` (make test does)');
  const dir = mkdtempSync(join(tmpdir(), 'llmproxy-sidecar-'));
  const policyPath = options.policyPath ?? join(dir, 'policy.yaml');
  const writePolicy = (policy: unknown) =>
    writeFileSync(policyPath, typeof policy === 'string' ? policy : stringify(policy));
  if (options.policy !== undefined) writePolicy(options.policy);
  const [port, adminPort] = options.ports
    ? [options.ports.listen, options.ports.admin]
    : await Promise.all([freePort(), freePort()]);
  const child = spawn(
    process.execPath,
    [
      SIDECAR_MAIN,
      ...(options.operator
        ? [
            '--operator-url',
            options.operator.url,
            '--token-file',
            options.operator.tokenFile,
            '--ca-file',
            options.operator.caFile,
          ]
        : ['--policy-file', policyPath]),
      '--listen',
      `127.0.0.1:${port}`,
      '--admin-listen',
      `127.0.0.1:${adminPort}`,
      ...(options.args ?? []),
    ],
    {
      // Launched as a pod launches it: the same heap and malloc settings the webhook injects.
      env: { PATH: process.env.PATH, ...SIDECAR_PROCESS_ENV, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const waiters: Array<() => void> = [];
  const onData = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    for (const wake of waiters.splice(0)) wake();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolveExit) =>
    child.once('exit', (code) => resolveExit(code)),
  );

  const sidecar: RunningSidecar = {
    url: `http://127.0.0.1:${port}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    policyPath,
    output: () => output,
    writePolicy,
    process: child,
    async waitForOutput(text, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!output.includes(text)) {
        if (Date.now() > deadline)
          throw new Error(`sidecar never printed "${text}"; output:\n${output}`);
        await new Promise<void>((wake) => {
          waiters.push(wake);
          setTimeout(wake, 200);
        });
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      const code = await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
  try {
    await waitUntil(async () => {
      if (child.exitCode !== null)
        throw new Error(`sidecar exited with ${child.exitCode}:\n${output}`);
      const res = await fetch(
        `${sidecar.adminUrl}/${options.waitFor === 'listening' ? 'healthz' : 'readyz'}`,
      ).catch(() => undefined);
      return res?.status === 200;
    }, options.startTimeoutMs ?? 15_000);
  } catch (error) {
    await sidecar.stop();
    throw error;
  }
  return sidecar;
}

export async function waitUntil(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** A minimal CompiledPolicy granting the fake provider under both provider names. */
export function basicPolicy(
  fakeUrl: string,
  overrides: { keyFile?: string; openaiCap?: number } = {},
): Record<string, unknown> {
  const credentials = overrides.keyFile ? { file: { path: overrides.keyFile } } : { none: {} };
  return {
    apiVersion: 'llmproxy.io/v1alpha1',
    kind: 'CompiledPolicy',
    providers: [
      {
        name: 'openai',
        type: 'openai',
        baseURL: fakeUrl,
        credentials,
        models: {
          allow: [
            {
              pattern: 'gpt-4o-mini',
              ...(overrides.openaiCap ? { maxOutputTokens: overrides.openaiCap } : {}),
            },
            { pattern: 'text-embedding-3-*' },
          ],
          deny: [{ pattern: 'gpt-4o-mini-realtime*' }],
        },
      },
      {
        name: 'anthropic',
        type: 'anthropic',
        baseURL: fakeUrl,
        credentials,
        models: { allow: [{ pattern: 'claude-*-haiku*', maxOutputTokens: 256 }], deny: [] },
      },
    ],
  };
}
