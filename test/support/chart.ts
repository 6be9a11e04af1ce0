// The Helm chart in tests and `make dev`: run the pinned helm against the shared control plane, install the
// chart safely next to other tests, and act as the chart's ServiceAccount (the operator's
// identity) with a minted token, e.g. to run the operator out of cluster under exactly the
// chart's RBAC:
//
//   const chart = await installChart(cp, { namespace: ns });
//   const kubeconfig = await serviceAccountKubeconfig(cp, ns, chart.serviceAccount);
//   const config = await installedOperatorConfig(cp, chart);
//   spawn('node', ['dist/operator/main.js', '--config', config], {
//     env: { ...process.env, KUBECONFIG: kubeconfig, POD_NAME: 'operator-0', POD_NAMESPACE: ns },
//   });
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { SERVICE_ACCOUNT_ISSUER, type ControlPlane, type KubectlResult } from './controlplane.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHART_DIR = path.join(REPO_ROOT, 'helm/llmproxy');
export const TESTDATA_DIR = path.join(REPO_ROOT, 'test/e2e/testdata');

/** helm keeps its cache/config here, not in $HOME (one dir per test process). */
const helmHome = mkdtempSync(path.join(os.tmpdir(), 'llmproxy-helm-'));
process.on('exit', () => rmSync(helmHome, { recursive: true, force: true }));

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
  [key: string]: unknown;
}

function run(
  bin: string,
  args: string[],
  env: Record<string, string>,
  input = '',
  timeoutMs = 120_000,
): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      stderr += `\n${path.basename(bin)} ${args[0] ?? ''} killed after ${timeoutMs} ms`;
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/** The pinned helm, talking to the control plane as its admin. */
export function helm(cp: ControlPlane, args: string[], input?: string): Promise<KubectlResult> {
  return run(
    path.join(cp.binDir, 'helm'),
    [...args, `--kubeconfig=${cp.kubeconfigPath}`],
    {
      HELM_CACHE_HOME: path.join(helmHome, 'cache'),
      HELM_CONFIG_HOME: path.join(helmHome, 'config'),
      HELM_DATA_HOME: path.join(helmHome, 'data'),
      KUBECONFIG: cp.kubeconfigPath,
    },
    input,
  );
}

/** helm that must succeed; returns its stdout. */
export async function helmOk(cp: ControlPlane, args: string[], input?: string): Promise<string> {
  const res = await helm(cp, args, input);
  if (res.code !== 0) throw new Error(`helm ${args.join(' ')} failed:\n${res.stderr}`);
  return res.stdout;
}

/** The objects of a multi-document YAML stream (empty documents dropped). */
export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`bad YAML: ${doc.errors[0]?.message}`);
      return doc.toJS() as Manifest | null;
    })
    .filter((m): m is Manifest => m !== null && typeof m === 'object');
}

export function toYamlStream(manifests: Manifest[]): string {
  return manifests.map((m) => stringify(m)).join('---\n');
}

/**
 * Values that keep a real install from touching anything but its own namespace on a control
 * plane other tests share: the webhooks (failurePolicy Fail) only match namespaces carrying a
 * label no other test sets, and every cluster-scoped name is prefixed by the unique release.
 */
export function isolatedValues(namespace: string): string[] {
  return ['--set', `webhook.namespaceSelector.matchLabels.llmproxy\\.io/chart-test=${namespace}`];
}

export interface InstalledChart {
  release: string;
  namespace: string;
  /** The operator's ServiceAccount (operator.serviceName). */
  serviceAccount: string;
  /** Webhook configurations, cluster-scoped roles: named after the release. */
  clusterPrefix: string;
  /** What `helm install` printed (NOTES.txt included). */
  output: string;
}

/**
 * `helm install` into the namespace, with a unique release name; extra args are passed on.
 * Isolated (isolatedValues) unless `isolate: false`, for a control plane of one's own (make dev).
 */
export async function installChart(
  cp: ControlPlane,
  opts: { namespace: string; release?: string; args?: string[]; isolate?: boolean },
): Promise<InstalledChart> {
  const release = opts.release ?? `llmproxy-${randomBytes(3).toString('hex')}`;
  const output = await helmOk(cp, [
    'install',
    release,
    CHART_DIR,
    '--namespace',
    opts.namespace,
    ...(opts.isolate === false ? [] : isolatedValues(opts.namespace)),
    ...(opts.args ?? []),
  ]);
  return {
    release,
    namespace: opts.namespace,
    serviceAccount: 'llmproxy-operator',
    clusterPrefix: release,
    output,
  };
}

/**
 * A kubeconfig that authenticates as the ServiceAccount with a token from the TokenRequest API
 * (no client certificate), as the operator is when it runs in its pod.
 */
export async function serviceAccountKubeconfig(
  cp: ControlPlane,
  namespace: string,
  serviceAccount: string,
): Promise<string> {
  const token = await cp.tokenFor(namespace, serviceAccount, {
    audiences: [SERVICE_ACCOUNT_ISSUER],
  });
  const user = `system:serviceaccount:${namespace}:${serviceAccount}`;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'llmproxy-test',
        cluster: {
          server: cp.apiServerURL,
          'certificate-authority-data': Buffer.from(cp.caPem).toString('base64'),
        },
      },
    ],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'sa', context: { cluster: 'llmproxy-test', user, namespace } }],
    'current-context': 'sa',
  };
  const file = path.join(helmHome, `sa-${namespace}-${serviceAccount}.kubeconfig`);
  await writeFile(file, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  return file;
}

/** kubectl with a given kubeconfig (the admin one of cp.kubectl would win over a --token). */
export function kubectlWith(
  cp: ControlPlane,
  kubeconfig: string,
  args: string[],
  input?: string,
): Promise<KubectlResult> {
  return run(
    path.join(cp.binDir, 'kubectl'),
    [`--kubeconfig=${kubeconfig}`, ...args],
    { KUBECONFIG: kubeconfig },
    input,
    60_000,
  );
}

/**
 * The operator's /etc/llmproxy/config.yaml as the installed release rendered it, written to a
 * file, for running the operator out of cluster (`--config <file>`) under the chart's settings.
 */
export async function installedOperatorConfig(
  cp: ControlPlane,
  chart: InstalledChart,
): Promise<string> {
  const res = await cp.kubectl([
    'get',
    'configmap',
    `${chart.serviceAccount}-config`,
    '-n',
    chart.namespace,
    '-o',
    'jsonpath={.data.config\\.yaml}',
  ]);
  if (res.code !== 0) throw new Error(`reading the operator ConfigMap failed: ${res.stderr}`);
  const file = path.join(helmHome, `config-${chart.namespace}.yaml`);
  await writeFile(file, res.stdout, { mode: 0o600 });
  return file;
}
