// The operator's configuration: parsed once from argv, the environment and (with --config) the
// settings file the Helm chart mounts, into one typed object, an error per bad field.
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import type { LogLevel } from '../sidecar/telemetry/log.js';
import {
  loadOperatorSettings,
  OperatorSettingsError,
  type OperatorSettings,
} from './config-file.js';

export interface Listen {
  host: string;
  port: number;
}

export interface OperatorConfig {
  listen: Listen;
  /** Both or neither: the distribution server's certificate from files (reloaded on change). */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** From --config: webhooks, the certificate manager and their settings. */
  settings?: OperatorSettings;
  /** /healthz and /readyz over HTTPS (with --config: 0.0.0.0:8081 unless set). */
  healthListen?: Listen;
  /** /metrics over HTTPS (with --config: 0.0.0.0:9090 unless set). */
  metricsListen?: Listen;
  /** Listen address of the webhook server (its port is the settings' webhookPort). */
  webhookHost: string;
  /** Extra IP SANs of the serving certificate (out-of-cluster runs reach it at 127.0.0.1). */
  certIpSans: string[];
  kubeconfig?: string;
  /** Watch one namespace; all when absent. */
  namespace?: string;
  podLabelSelector?: string;
  leaderElection: { namespace: string; name: string; identity: string };
  logLevel: LogLevel;
}

export class OperatorConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

export const OPERATOR_USAGE = `usage: llmproxy-operator --config FILE [options]
       llmproxy-operator --tls-cert-file FILE --tls-key-file FILE [options]

  --config FILE                 operator settings (the chart's /etc/llmproxy/config.yaml): runs the
                                webhooks and the certificate manager, whose certificate the
                                distribution server uses unless --tls-*-file are given
  --listen HOST:PORT            policy distribution, TLS 1.3 (default 0.0.0.0:8443, or the
                                settings' distributionPort)
  --tls-cert-file FILE          serving certificate (PEM); reloaded when it changes
  --tls-key-file FILE           its private key (PEM)
  --health-listen HOST:PORT     /healthz, /readyz over HTTPS (with --config default 0.0.0.0:8081)
  --metrics-listen HOST:PORT    /metrics over HTTPS (with --config default 0.0.0.0:9090)
  --webhook-host HOST           the webhook server's address (default 0.0.0.0)
  --cert-ip-san IP              extra IP SAN of the managed certificate (repeatable)
  --kubeconfig FILE             default: in-cluster, else KUBECONFIG / ~/.kube/config
  --namespace NS                watch only this namespace (default: all)
  --pod-label-selector SEL      track only pods matching this (e.g. the injected ones)
  --leader-election-namespace NS  where the Lease lives (env POD_NAMESPACE, else the settings'
                                namespace, default llmproxy-system)
  --leader-election-id NAME     the Lease's name (default the settings' serviceName, else
                                llmproxy-operator)
  --identity NAME               this replica (env POD_NAME, default the host name)
  --log-level LEVEL             error | warn | info | debug (default info)`;

const LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

export function parseOperatorConfig(
  argv: string[],
  env: Record<string, string | undefined>,
  loadSettings: (path: string) => OperatorSettings = loadOperatorSettings,
): OperatorConfig {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      config: { type: 'string' },
      listen: { type: 'string' },
      'tls-cert-file': { type: 'string' },
      'tls-key-file': { type: 'string' },
      'health-listen': { type: 'string' },
      'metrics-listen': { type: 'string' },
      'webhook-host': { type: 'string', default: '0.0.0.0' },
      'cert-ip-san': { type: 'string', multiple: true, default: [] },
      kubeconfig: { type: 'string' },
      namespace: { type: 'string' },
      'pod-label-selector': { type: 'string' },
      'leader-election-namespace': { type: 'string' },
      'leader-election-id': { type: 'string' },
      identity: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  const problems: string[] = [];
  let settings: OperatorSettings | undefined;
  if (values.config !== undefined) {
    try {
      settings = loadSettings(values.config);
    } catch (err) {
      if (err instanceof OperatorSettingsError) problems.push(...err.problems);
      else throw err;
    }
  }
  const listen = parseListen(
    '--listen',
    values.listen ?? `0.0.0.0:${settings?.operator.distributionPort ?? 8443}`,
    problems,
  );
  const certFile = values['tls-cert-file'];
  const keyFile = values['tls-key-file'];
  if (values.config === undefined) {
    if (!certFile) problems.push('--tls-cert-file is required (or --config)');
    if (!keyFile) problems.push('--tls-key-file is required (or --config)');
  } else if (Boolean(certFile) !== Boolean(keyFile)) {
    problems.push('--tls-cert-file and --tls-key-file go together');
  }
  const healthValue = values['health-listen'] ?? (values.config ? '0.0.0.0:8081' : undefined);
  const metricsValue = values['metrics-listen'] ?? (values.config ? '0.0.0.0:9090' : undefined);
  const healthListen =
    healthValue === undefined ? undefined : parseListen('--health-listen', healthValue, problems);
  const metricsListen =
    metricsValue === undefined
      ? undefined
      : parseListen('--metrics-listen', metricsValue, problems);
  const certIpSans = values['cert-ip-san'] ?? [];
  for (const ip of certIpSans) {
    if (isIP(ip) === 0) problems.push(`--cert-ip-san ${JSON.stringify(ip)} is not an IP address`);
  }
  const logLevel = values['log-level'] as LogLevel;
  if (!LEVELS.includes(logLevel)) problems.push(`--log-level must be one of ${LEVELS.join(', ')}`);
  const dnsLabel = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
  const leaseNamespace =
    values['leader-election-namespace'] ??
    env['POD_NAMESPACE'] ??
    settings?.operator.namespace ??
    'llmproxy-system';
  if (!dnsLabel.test(leaseNamespace))
    problems.push('--leader-election-namespace is not a namespace name');
  if (values.namespace !== undefined && !dnsLabel.test(values.namespace)) {
    problems.push('--namespace is not a namespace name');
  }
  if (problems.length > 0) throw new OperatorConfigError(problems);
  return {
    listen,
    tlsCertFile: certFile,
    tlsKeyFile: keyFile,
    settings,
    healthListen,
    metricsListen,
    webhookHost: values['webhook-host'] ?? '0.0.0.0',
    certIpSans,
    kubeconfig: values.kubeconfig,
    namespace: values.namespace,
    podLabelSelector: values['pod-label-selector'],
    leaderElection: {
      namespace: leaseNamespace,
      name: values['leader-election-id'] ?? settings?.operator.serviceName ?? 'llmproxy-operator',
      identity: values.identity ?? env['POD_NAME'] ?? hostname(),
    },
    logLevel,
  };
}

function parseListen(flag: string, value: string, problems: string[]): Listen {
  const match = /^(\[[0-9a-fA-F:]+\]|[^:[\]]+):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (!match || !(port >= 0 && port <= 65535)) {
    problems.push(`${flag} must be HOST:PORT`);
    return { host: '0.0.0.0', port: 8443 };
  }
  return { host: (match[1] ?? '').replace(/^\[|\]$/g, ''), port };
}
