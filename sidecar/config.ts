// The sidecar's configuration: parsed once from argv and the environment, with an error per bad field.
import { parseArgs } from 'node:util';
import type { LogLevel } from './telemetry/log.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/** Managed mode: the operator pushes the policy over an authenticated TLS 1.3 stream. */
export interface OperatorSource {
  url: string;
  tokenFile: string;
  caFile: string;
}

export interface SidecarConfig {
  /** Exactly one policy source: a file (standalone) or the operator (managed). */
  policyFile?: string;
  operator?: OperatorSource;
  podName?: string;
  /** Without a namespace, manifests are compiled in the namespace they name. */
  pod: { namespace?: string; labels: Record<string, string>; serviceAccount: string };
  listen: ListenAddress;
  adminListen: ListenAddress;
  /** /healthz and /readyz on the pod IP for kubelet, over TLS 1.3 with a self-signed certificate. */
  probeListen?: ListenAddress;
  maxBodyBytes: number;
  maxBufferedBytes: number;
  upstreamTimeoutMs: number;
  requestTimeoutMs: number;
  /** Where `scope: shared` limits live; without it they hold per pod. */
  redisUrl?: string;
  /** When Redis is unreachable: fall back to this pod's share of the limit, or refuse. */
  redisFailure: 'pod-share' | 'closed';
  /** The per-deployment key that hashes caller identifiers; random per process when absent. */
  hmacKeyFile?: string;
  logLevel: LogLevel;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

export const USAGE = `usage: llmproxy-sidecar (--policy-file FILE | --operator-url URL) [options]

  --policy-file FILE        standalone: a CompiledPolicy, or LlmPolicy/LlmBudget manifests
                            (YAML or JSON); re-read when it changes
  --operator-url URL        managed: the operator's https URL; it pushes this pod's policy
  --token-file FILE         managed: projected service-account token, audience llmproxy.io
                            (default /var/run/secrets/llmproxy.io/token/token)
  --ca-file FILE            managed: CA of the operator's certificate
                            (default /var/run/secrets/llmproxy.io/ca/ca.crt)
  --pod-name NAME           this pod's name (env LLMPROXY_POD_NAME)
  --probe-listen HOST:PORT  kubelet probes on the pod IP, TLS 1.3 (self-signed)
  --pod-labels k=v,...      the pod's labels, to select manifests (env LLMPROXY_POD_LABELS)
  --pod-namespace NS        the pod's namespace (env LLMPROXY_POD_NAMESPACE; default: the
                            namespace the manifests name)
  --service-account NAME    the pod's service account (default "default")
  --listen HOST:PORT        the application's endpoint; loopback only (default 127.0.0.1:8787)
  --admin-listen HOST:PORT  /healthz, /readyz, /metrics (default 127.0.0.1:15020)
  --max-body-bytes N        request body limit (default 1048576)
  --max-buffered-bytes N    request bytes all requests may hold at once (default 16777216)
  --upstream-timeout-ms N   provider silence before giving up (default 300000)
  --request-timeout-ms N    time for a client to send a whole request (default 30000)
  --redis-url URL           Redis for shared rate limits (env LLMPROXY_REDIS_URL)
  --redis-failure MODE      pod-share (default) or closed, while Redis is unreachable
  --hmac-key-file FILE      key for hashing caller ids (env LLMPROXY_HMAC_KEY_FILE); without
                            it hashes change on every restart
  --log-level LEVEL         error|warn|info|debug (env LLMPROXY_LOG_LEVEL, default info)`;

const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];
const LABEL =
  /^([a-z0-9A-Z]([-a-z0-9A-Z_./]{0,251}[a-z0-9A-Z])?)=([a-z0-9A-Z]([-a-z0-9A-Z_.]{0,61}[a-z0-9A-Z])?)?$/;

export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): SidecarConfig {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'policy-file': { type: 'string' },
      'operator-url': { type: 'string' },
      'token-file': { type: 'string' },
      'ca-file': { type: 'string' },
      'pod-name': { type: 'string' },
      'probe-listen': { type: 'string' },
      'pod-labels': { type: 'string' },
      'pod-namespace': { type: 'string' },
      'service-account': { type: 'string' },
      listen: { type: 'string' },
      'admin-listen': { type: 'string' },
      'max-body-bytes': { type: 'string' },
      'max-buffered-bytes': { type: 'string' },
      'upstream-timeout-ms': { type: 'string' },
      'request-timeout-ms': { type: 'string' },
      'redis-url': { type: 'string' },
      'hmac-key-file': { type: 'string' },
      'redis-failure': { type: 'string' },
      'log-level': { type: 'string' },
    },
  });
  const problems: string[] = [];
  const listen = parseListen(values.listen ?? '127.0.0.1:8787', '--listen', problems);
  if (listen && !isLoopback(listen.host)) {
    problems.push(
      '--listen: the application endpoint speaks plain HTTP, so it must bind a loopback address',
    );
  }
  const adminListen = parseListen(
    values['admin-listen'] ?? '127.0.0.1:15020',
    '--admin-listen',
    problems,
  );
  const logLevel = (values['log-level'] ?? env.LLMPROXY_LOG_LEVEL ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel))
    problems.push(`--log-level: must be one of ${LOG_LEVELS.join(', ')}`);
  const probeListen =
    values['probe-listen'] === undefined
      ? undefined
      : parseListen(values['probe-listen'], '--probe-listen', problems);
  const operatorUrl = values['operator-url'] ?? env.LLMPROXY_OPERATOR_URL;
  if (operatorUrl !== undefined && !/^https:\/\/[^/]+/.test(operatorUrl)) {
    problems.push('--operator-url: must be an https:// URL (the policy stream is TLS 1.3 only)');
  }
  const redisUrl = values['redis-url'] ?? env.LLMPROXY_REDIS_URL;
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    problems.push('--redis-url: expected redis://HOST:PORT or rediss://HOST:PORT');
  }
  const redisFailure = values['redis-failure'] ?? 'pod-share';
  if (redisFailure !== 'pod-share' && redisFailure !== 'closed') {
    problems.push('--redis-failure: must be pod-share or closed');
  }
  const config: SidecarConfig = {
    policyFile: values['policy-file'],
    operator:
      operatorUrl === undefined
        ? undefined
        : {
            url: operatorUrl,
            tokenFile: values['token-file'] ?? '/var/run/secrets/llmproxy.io/token/token',
            caFile: values['ca-file'] ?? '/var/run/secrets/llmproxy.io/ca/ca.crt',
          },
    podName: values['pod-name'] ?? env.LLMPROXY_POD_NAME,
    probeListen,
    pod: {
      namespace: values['pod-namespace'] ?? env.LLMPROXY_POD_NAMESPACE,
      labels: parseLabels(values['pod-labels'] ?? env.LLMPROXY_POD_LABELS ?? '', problems),
      serviceAccount: values['service-account'] ?? env.LLMPROXY_SERVICE_ACCOUNT ?? 'default',
    },
    listen: listen ?? { host: '127.0.0.1', port: 8787 },
    adminListen: adminListen ?? { host: '127.0.0.1', port: 15020 },
    maxBodyBytes: parseInteger(
      values['max-body-bytes'],
      1_048_576,
      '--max-body-bytes',
      1024,
      problems,
    ),
    maxBufferedBytes: parseInteger(
      values['max-buffered-bytes'],
      16 * 1_048_576,
      '--max-buffered-bytes',
      1024,
      problems,
    ),
    upstreamTimeoutMs: parseInteger(
      values['upstream-timeout-ms'],
      300_000,
      '--upstream-timeout-ms',
      100,
      problems,
    ),
    requestTimeoutMs: parseInteger(
      values['request-timeout-ms'],
      30_000,
      '--request-timeout-ms',
      100,
      problems,
    ),
    redisUrl,
    hmacKeyFile: values['hmac-key-file'] ?? env.LLMPROXY_HMAC_KEY_FILE,
    redisFailure: redisFailure === 'closed' ? 'closed' : 'pod-share',
    logLevel,
  };
  if (!config.policyFile && !config.operator) {
    problems.push('--policy-file or --operator-url: one is required (standalone or managed mode)');
  }
  if (config.policyFile && config.operator) {
    problems.push('--policy-file and --operator-url: choose one policy source');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

function parseListen(value: string, flag: string, problems: string[]): ListenAddress | undefined {
  const match = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (!match?.[1] || !Number.isInteger(port) || port > 65535) {
    problems.push(`${flag}: expected HOST:PORT, e.g. 127.0.0.1:8787`);
    return undefined;
  }
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

function parseLabels(value: string, problems: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of value.split(',').filter((p) => p.trim() !== '')) {
    const match = LABEL.exec(pair.trim());
    if (!match?.[1]) {
      problems.push(`--pod-labels: "${pair.slice(0, 80)}" is not a key=value label`);
      continue;
    }
    labels[match[1]] = match[3] ?? '';
  }
  return labels;
}

function parseInteger(
  value: string | undefined,
  fallback: number,
  flag: string,
  min: number,
  problems: string[],
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    problems.push(`${flag}: expected a whole number of at least ${min}`);
    return fallback;
  }
  return n;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}
