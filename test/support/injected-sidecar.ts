// Running the sidecar the webhook injected into a stored Pod, out of cluster: its args and env
// resolved the way the kubelet and cluster DNS would resolve them in the pod.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ControlPlane } from './controlplane.js';
import { SIDECAR_MAIN, freePort, waitUntil } from './sidecar.js';

export interface InjectedContainer {
  name: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
}

export interface StoredPod {
  metadata: { name: string; namespace: string; uid: string; annotations: Record<string, string> };
  spec: {
    serviceAccountName: string;
    initContainers?: InjectedContainer[];
    containers: InjectedContainer[];
  };
}

export interface InjectedSidecarCommand {
  args: string[];
  env: Record<string, string>;
  /** Pod port → the free loopback port it was mapped to. */
  ports: Map<string, number>;
  /** The pod-bound token written where the projected volume would be. */
  token: string;
}

/**
 * The injected sidecar's command for a local process: a pod-bound token and the CA written where
 * the volumes would mount them (under `dir`), the operator Service URL pointed at loopback, and
 * every listener moved to a free loopback port.
 */
export async function injectedSidecarCommand(
  cp: ControlPlane,
  pod: StoredPod,
  options: {
    dir: string;
    distributionPort: number;
    /** Pod port → the loopback port to use for it instead of a free one (make dev's fixed ports). */
    fixedPorts?: Record<string, number>;
  },
): Promise<InjectedSidecarCommand> {
  const container = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find(
    (c) => c.name === 'llmproxy-sidecar',
  );
  if (!container) throw new Error('no sidecar in the stored pod');
  const mounted = path.join(options.dir, 'mounted');
  mkdirSync(path.join(mounted, 'token'), { recursive: true });
  mkdirSync(path.join(mounted, 'ca'), { recursive: true });
  const token = await cp.tokenFor(pod.metadata.namespace, pod.spec.serviceAccountName, {
    audiences: ['llmproxy.io'],
    boundPod: { name: pod.metadata.name, uid: pod.metadata.uid },
  });
  writeFileSync(path.join(mounted, 'token', 'token'), token);
  writeFileSync(
    path.join(mounted, 'ca', 'ca.crt'),
    pod.metadata.annotations['llmproxy.io/ca-bundle'] ?? '',
  );
  const ports = new Map<string, number>();
  const mapPort = async (from: string) => {
    if (!ports.has(from)) ports.set(from, options.fixedPorts?.[from] ?? (await freePort()));
    return ports.get(from);
  };
  const args: string[] = [];
  for (const arg of container.args ?? []) {
    let value = arg.replaceAll('/var/run/secrets/llmproxy.io', mounted);
    if (/^https:\/\/[^/]+\.svc:(\d+)$/.test(value)) {
      value = `https://127.0.0.1:${options.distributionPort}`;
    }
    const listen = /^(127\.0\.0\.1|0\.0\.0\.0):(\d+)$/.exec(value);
    if (listen?.[2]) value = `127.0.0.1:${await mapPort(listen[2])}`;
    args.push(value);
  }
  const fields: Record<string, string> = {
    'metadata.name': pod.metadata.name,
    'metadata.namespace': pod.metadata.namespace,
    'metadata.uid': pod.metadata.uid,
    'spec.serviceAccountName': pod.spec.serviceAccountName,
  };
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) {
    const value = e.valueFrom?.fieldRef ? fields[e.valueFrom.fieldRef.fieldPath] : e.value;
    if (value !== undefined) env[e.name] = value;
  }
  return { args, env, ports, token };
}

export interface InjectedSidecar extends InjectedSidecarCommand {
  process: ChildProcess;
  /** The loopback port of the pod port named by a flag, e.g. `--listen`, `--admin-listen`. */
  portOf(flag: string): number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts the built sidecar (dist/) with the stored Pod's injected command and waits for /readyz
 * (a policy and every provider key), or with `waitFor: 'listening'` only for /healthz.
 */
export async function startInjectedSidecar(
  cp: ControlPlane,
  pod: StoredPod,
  options: Parameters<typeof injectedSidecarCommand>[2] & {
    onOutput?(text: string): void;
    readyTimeoutMs?: number;
    waitFor?: 'ready' | 'listening';
  },
): Promise<InjectedSidecar> {
  const command = await injectedSidecarCommand(cp, pod, options);
  let output = '';
  const child = spawn(process.execPath, [SIDECAR_MAIN, ...command.args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, NODE_OPTIONS: '', ...command.env },
  });
  const onData = (d: Buffer) => {
    output += d.toString();
    options.onOutput?.(d.toString());
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const portOf = (flag: string): number => {
    const value = command.args[command.args.indexOf(flag) + 1] ?? '';
    return Number(/:(\d+)$/.exec(value)?.[1] ?? 0);
  };
  const stop = (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
    });
  };
  try {
    await waitUntil(async () => {
      if (child.exitCode !== null) throw new Error(`the sidecar exited:\n${output}`);
      const probe = options.waitFor === 'listening' ? 'healthz' : 'readyz';
      const url = `http://127.0.0.1:${portOf('--admin-listen')}/${probe}`;
      return (await fetch(url).catch(() => undefined))?.status === 200;
    }, options.readyTimeoutMs ?? 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { ...command, process: child, portOf, output: () => output, stop };
}

/**
 * What the webhook gave the app container to reach its sidecar, OPENAI_BASE_URL moved from the
 * pod's sidecar port (`sidecarPort`, the settings' sidecar.port) to the loopback port it was
 * mapped to.
 */
export function injectedOpenAiEnv(
  pod: StoredPod,
  sidecar: InjectedSidecarCommand,
  sidecarPort: number,
): { baseUrl: string; apiKey: string } {
  const env = Object.fromEntries(
    (pod.spec.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? '']),
  );
  const baseUrl = env.OPENAI_BASE_URL ?? '';
  if (!baseUrl.includes(`:${sidecarPort}/`)) {
    throw new Error(
      `the app's OPENAI_BASE_URL ${baseUrl} is not on the sidecar port ${sidecarPort}`,
    );
  }
  return {
    baseUrl: baseUrl.replace(`:${sidecarPort}/`, `:${sidecar.ports.get(String(sidecarPort))}/`),
    apiKey: env.OPENAI_API_KEY ?? '',
  };
}
