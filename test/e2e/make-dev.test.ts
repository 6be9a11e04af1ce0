// `make dev`'s entry (test/dev/main.ts) as a developer runs it: it starts the whole local stack,
// serves an allowed and a refused call through the demo pod's managed sidecar, shows the
// examples through kubectl, and Ctrl-C stops everything. Its own control plane, free ports and a
// temporary .dev/ directory, so it runs beside a developer's `make dev` and the other e2e tests.
// Needs `npm run build` (dist/) and the control plane binaries (make test-deps).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../support/chart.js';
import { freePort, waitUntil } from '../support/sidecar.js';

let dev: ChildProcess | undefined;
let output = '';
let dir: string;
const ports = { standalone: 0, admin: 0, demo: 0 };

const chat = (port: number, model: string) =>
  fetch(`http://127.0.0.1:${port}/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
  });

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'llmproxy-make-dev-'));
  ports.standalone = await freePort();
  ports.admin = await freePort();
  ports.demo = await freePort();
  dev = spawn(process.execPath, ['--import', 'tsx', 'test/dev/main.ts'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      LLMPROXY_DEV_DIR: path.join(dir, 'dev'),
      LLMPROXY_DEV_PORT: String(ports.standalone),
      LLMPROXY_DEV_ADMIN_PORT: String(ports.admin),
      LLMPROXY_DEV_DEMO_PORT: String(ports.demo),
    },
  });
  dev.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  dev.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await waitUntil(
    () => {
      if (dev?.exitCode !== null) throw new Error(`make dev exited early:\n${output}`);
      return output.includes('Ctrl-C stops everything.');
    },
    200_000,
    200,
  );
}, 240_000);

afterAll(async () => {
  if (dev && dev.exitCode === null) {
    dev.kill('SIGKILL');
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('make dev', () => {
  it('starts the stack step by step and prints the commands to try', () => {
    for (const step of ['1/6', '2/6', '3/6', '4/6', '5/6', '6/6']) expect(output).toContain(step);
    expect(output).toContain('stored with containers: llmproxy-sidecar, app');
    expect(output).toContain(`curl -s http://127.0.0.1:${ports.demo}/openai/v1/chat/completions`);
    expect(output).toContain('kubectl get llmpolicies,llmbudgets -A');
  });

  it('serves an allowed call and refuses another through the managed demo sidecar', async () => {
    const allowed = await chat(ports.demo, 'gpt-4o-mini');
    expect(allowed.status).toBe(200);
    const refused = await chat(ports.demo, 'gpt-4o');
    expect(refused.status).toBe(403);
    expect(refused.headers.get('x-llmproxy-error')).toBe('model_not_allowed');
  });

  it('leaves a kubeconfig that shows the examples and the demo objects', () => {
    const kubeconfig = /export KUBECONFIG=(\S+)/.exec(output)?.[1] ?? '';
    const bin = /export PATH=(\S+):\$PATH/.exec(output)?.[1] ?? '';
    const res = spawnSync(
      path.join(bin, 'kubectl'),
      ['get', 'llmpolicies,llmbudgets', '-A', '-o', 'name'],
      { env: { ...process.env, KUBECONFIG: kubeconfig }, encoding: 'utf8' },
    );
    expect(res.status).toBe(0);
    expect(res.stdout.trim().split('\n')).toHaveLength(6); // 1 policy + 2 budgets, twice
  });

  it("shows the allowed call as spend in the demo pod's budgets", async () => {
    expect(output).toContain('get llmbudgets --watch');
    const kubeconfig = /export KUBECONFIG=(\S+)/.exec(output)?.[1] ?? '';
    const bin = /export PATH=(\S+):\$PATH/.exec(output)?.[1] ?? '';
    const spent = () =>
      spawnSync(
        path.join(bin, 'kubectl'),
        [
          '-n',
          'llmproxy-dev',
          'get',
          'llmbudget',
          'demo-monthly',
          '-o',
          'jsonpath={.status.spent}',
        ],
        { env: { ...process.env, KUBECONFIG: kubeconfig }, encoding: 'utf8' },
      ).stdout.trim();
    // The sidecar reports spend every ten seconds; the ledger then writes it to the status.
    await waitUntil(() => Number(spent()) > 0, 30_000, 500);
  });

  it('stops everything on Ctrl-C (SIGINT)', async () => {
    const exited = new Promise<number | null>((resolve) => dev?.once('exit', resolve));
    dev?.kill('SIGINT');
    expect(await exited).toBe(0);
    await expect(chat(ports.demo, 'gpt-4o-mini')).rejects.toThrow();
    await expect(chat(ports.standalone, 'gpt-4o-mini')).rejects.toThrow();
  });
});
