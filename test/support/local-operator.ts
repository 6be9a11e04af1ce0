// The operator as the chart runs it, but as a local process: `helm install` on the local control
// plane, then `node dist/operator/main.js --config <the rendered config>` authenticated AS the
// chart's ServiceAccount (a minted token), with the chart's webhook configurations pointed at it
// by `clientConfig.url` (envtest's way), so the API server calls the local webhooks. Used by
// `make dev` and the e2e tests that need the whole control plane side. Needs dist/.
//
// What a local process cannot do like a cluster: Service DNS (the operator URL's host becomes
// 127.0.0.1, hence --cert-ip-san) and fixed ports (the chart gets free ones).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { loadOperatorSettings, type OperatorSettings } from '../../operator/config-file.js';
import {
  REPO_ROOT,
  installChart,
  installedOperatorConfig,
  serviceAccountKubeconfig,
  type InstalledChart,
} from './chart.js';
import type { ControlPlane } from './controlplane.js';
import { freePort, waitUntil } from './sidecar.js';

export interface LocalOperatorOptions {
  /** Where the chart is installed (the operator's own namespace); must exist. */
  namespace: string;
  release?: string;
  /** More `helm install` arguments. */
  helmArgs?: string[];
  /**
   * Webhooks only for namespaces labelled `llmproxy.io/chart-test=<namespace>` (isolatedValues),
   * as on the shared test control plane; false on a control plane of one's own.
   */
  isolate?: boolean;
  /** Every chunk the operator writes (stdout and stderr). */
  onOutput?(text: string): void;
  readyTimeoutMs?: number;
}

export interface LocalOperator {
  chart: InstalledChart;
  settings: OperatorSettings;
  /** The operator's ServiceAccount token (so tests can check it never shows up in output). */
  token: string;
  healthPort: number;
  metricsPort: number;
  process: ChildProcess;
  output(): string;
  /** Stops the operator, then removes the webhook configurations pointing at it. */
  stop(): Promise<void>;
}

/** Stops a child: SIGTERM, then SIGKILL after 5 s. */
export function stopProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
  });
}

/** GET over HTTPS without verifying the server (health probes of self-signed listeners). */
export function httpsGet(url: string, ca?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = https.get(url, ca ? { ca } : { rejectUnauthorized: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
  });
}

async function kubectlOk(cp: ControlPlane, args: string[]): Promise<string> {
  const res = await cp.kubectl(args);
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${res.stderr.trim()}`);
  return res.stdout;
}

/** Points every webhook of the chart's configuration of that kind at the local operator. */
async function pointWebhooksAt(
  cp: ControlPlane,
  kind: string,
  settings: OperatorSettings,
): Promise<void> {
  const name = settings.operator.webhookConfigurationName;
  const config = JSON.parse(await kubectlOk(cp, ['get', kind, name, '-o', 'json'])) as {
    webhooks: { clientConfig: { service?: { path?: string } } }[];
  };
  const patch = config.webhooks.map((w, i) => ({
    op: 'replace',
    path: `/webhooks/${i}/clientConfig`,
    value: {
      url: `https://127.0.0.1:${settings.operator.webhookPort}${w.clientConfig.service?.path ?? '/'}`,
    },
  }));
  await kubectlOk(cp, ['patch', kind, name, '--type=json', '-p', JSON.stringify(patch)]);
}

export async function startLocalOperator(
  cp: ControlPlane,
  options: LocalOperatorOptions,
): Promise<LocalOperator> {
  const main = path.join(REPO_ROOT, 'dist/operator/main.js');
  if (!existsSync(main)) throw new Error('dist/operator/main.js is missing: run `npm run build`');
  const [distribution, webhook] = [await freePort(), await freePort()];
  const chart = await installChart(cp, {
    namespace: options.namespace,
    release: options.release,
    isolate: options.isolate,
    args: [
      ...(options.helmArgs ?? []),
      '--set',
      `operator.ports.distribution=${distribution}`,
      '--set',
      `operator.ports.webhook=${webhook}`,
    ],
  });
  const configFile = await installedOperatorConfig(cp, chart);
  const settings = loadOperatorSettings(configFile);
  await kubectlOk(cp, [
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/llmpolicies.llmproxy.io',
    'crd/llmbudgets.llmproxy.io',
  ]);
  await pointWebhooksAt(cp, 'mutatingwebhookconfiguration', settings);
  await pointWebhooksAt(cp, 'validatingwebhookconfiguration', settings);
  const removeWebhooks = async () => {
    // The webhooks (failurePolicy Fail) must not outlive the operator they point at.
    for (const kind of ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration']) {
      await cp
        .kubectl(['delete', kind, settings.operator.webhookConfigurationName, '--ignore-not-found'])
        .catch(() => undefined);
    }
  };

  const kubeconfig = await serviceAccountKubeconfig(cp, options.namespace, chart.serviceAccount);
  const token =
    (JSON.parse(readFileSync(kubeconfig, 'utf8')) as { users: { user: { token: string } }[] })
      .users[0]?.user.token ?? '';
  const [healthPort, metricsPort] = [await freePort(), await freePort()];
  let output = '';
  const child = spawn(
    process.execPath,
    [
      main,
      '--config',
      configFile,
      '--listen',
      `127.0.0.1:${settings.operator.distributionPort}`,
      '--webhook-host',
      '127.0.0.1',
      '--health-listen',
      `127.0.0.1:${healthPort}`,
      '--metrics-listen',
      `127.0.0.1:${metricsPort}`,
      '--cert-ip-san',
      '127.0.0.1',
    ],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH,
        NODE_OPTIONS: '',
        KUBECONFIG: kubeconfig,
        POD_NAME: 'operator-0',
        POD_NAMESPACE: options.namespace,
      },
    },
  );
  const onData = (d: Buffer) => {
    output += d.toString();
    options.onOutput?.(d.toString());
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const operator: LocalOperator = {
    chart,
    settings,
    token,
    healthPort,
    metricsPort,
    process: child,
    output: () => output,
    stop: async () => {
      await stopProcess(child);
      await removeWebhooks();
    },
  };
  try {
    await waitUntil(async () => {
      if (child.exitCode !== null) throw new Error(`the operator exited:\n${output}`);
      return (await httpsGet(`https://127.0.0.1:${healthPort}/readyz`)).status === 200;
    }, options.readyTimeoutMs ?? 90_000);
  } catch (err) {
    await operator.stop();
    throw err;
  }
  return operator;
}

export interface PodManifest {
  metadata: { name?: string; generateName?: string; [key: string]: unknown };
  spec: Record<string, unknown>;
}

/**
 * Creates a Pod through the API server, so the mutating webhook sees it, and returns it as
 * stored. Retries while the API server still holds the webhook configuration from before the
 * operator patched its caBundle in.
 */
export async function createPodThroughWebhook<T = unknown>(
  cp: ControlPlane,
  namespace: string,
  pod: PodManifest,
  timeoutMs = 30_000,
): Promise<T> {
  let created: { metadata: { name: string } } | undefined;
  let lastError = '';
  await waitUntil(
    async () => {
      const res = await cp.kubectl(['create', '-n', namespace, '-o', 'json', '-f', '-'], {
        input: JSON.stringify({ apiVersion: 'v1', kind: 'Pod', ...pod }),
      });
      if (res.code === 0) created = JSON.parse(res.stdout) as { metadata: { name: string } };
      else lastError = res.stderr.trim();
      return res.code === 0;
    },
    timeoutMs,
    500,
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; last error: ${lastError}`);
  });
  return JSON.parse(
    await kubectlOk(cp, [
      'get',
      'pod',
      '-n',
      namespace,
      created?.metadata.name ?? '',
      '-o',
      'json',
    ]),
  ) as T;
}
