// The operator as a process started from flags (no chart): its serving certificate from files,
// one namespace watched, leader election in that namespace. For the e2e tests that kill,
// restart or run two of it; test/support/local-operator.ts runs it the way the chart does.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { REPO_ROOT } from './chart.js';
import type { ControlPlane } from './controlplane.js';
import { freePort, waitUntil } from './sidecar.js';
import { createTestPki, type TestPki } from './tls.js';

const OPERATOR_MAIN = path.join(REPO_ROOT, 'dist/operator/main.js');

/** A test CA and a serving certificate for 127.0.0.1, written as ca.pem, tls.crt and tls.key. */
export async function writeServingTls(dir: string): Promise<TestPki> {
  const pki = await createTestPki();
  writeFileSync(path.join(dir, 'ca.pem'), pki.caPem);
  writeFileSync(path.join(dir, 'tls.crt'), pki.certPem);
  writeFileSync(path.join(dir, 'tls.key'), pki.keyPem, { mode: 0o600 });
  return pki;
}

/** Applies crds/ (client-side, as a user would) and waits until both kinds are served. */
export async function applyCrds(cp: ControlPlane): Promise<void> {
  const res = await cp.kubectl(['apply', '-f', path.join(REPO_ROOT, 'crds')]);
  if (res.code !== 0) throw new Error(`applying CRDs failed: ${res.stderr}`);
  for (const crd of ['llmpolicies.llmproxy.io', 'llmbudgets.llmproxy.io']) {
    await cp.kubectl(['wait', '--for=condition=Established', `crd/${crd}`]);
  }
}

export interface OperatorProcessOptions {
  cp: ControlPlane;
  /** Watched, and where the leader-election Lease lives unless `leaseNamespace` says otherwise. */
  namespace: string;
  leaseNamespace?: string;
  /** Holds tls.crt and tls.key (writeServingTls). */
  tlsDir: string;
  ca: string;
  identity?: string;
  /** The distribution port (a free one when absent; give the old one to restart in place). */
  port?: number;
  metricsPort?: number;
  args?: string[];
  /** Added to the parent's environment (e.g. moto's AWS endpoint). */
  env?: NodeJS.ProcessEnv;
}

export interface OperatorProcess {
  port: number;
  url: string;
  process: ChildProcess;
  /** Everything it wrote to stdout and stderr. */
  output(): string;
  /** SIGKILL, and resolves once it has exited. */
  kill(): Promise<void>;
}

/** Starts dist/operator/main.js and resolves once its distribution server answers /readyz. */
export async function startOperatorProcess(
  options: OperatorProcessOptions,
): Promise<OperatorProcess> {
  if (!existsSync(OPERATOR_MAIN)) throw new Error('dist/ is missing: run `npm run build`');
  const port = options.port ?? (await freePort());
  let output = '';
  const child = spawn(
    process.execPath,
    [
      OPERATOR_MAIN,
      '--kubeconfig',
      options.cp.kubeconfigPath,
      '--tls-cert-file',
      path.join(options.tlsDir, 'tls.crt'),
      '--tls-key-file',
      path.join(options.tlsDir, 'tls.key'),
      '--listen',
      `127.0.0.1:${port}`,
      '--namespace',
      options.namespace,
      '--leader-election-namespace',
      options.leaseNamespace ?? options.namespace,
      '--identity',
      options.identity ?? 'operator-0',
      ...(options.metricsPort ? ['--metrics-listen', `127.0.0.1:${options.metricsPort}`] : []),
      ...(options.args ?? []),
    ],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '', ...options.env },
    },
  );
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const readyz = (): Promise<number> =>
    new Promise((resolve) => {
      const req = https.get(`https://127.0.0.1:${port}/readyz`, { ca: options.ca }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
    });
  await waitUntil(async () => {
    if (child.exitCode !== null)
      throw new Error(`operator exited with ${child.exitCode}:\n${output}`);
    return (await readyz()) === 200;
  }, 60_000);
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    process: child,
    output: () => output,
    kill: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}
