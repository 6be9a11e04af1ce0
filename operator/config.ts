// The operator's configuration: parsed once from argv and the environment, an error per bad field.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import type { LogLevel } from '../sidecar/telemetry/log.js';

export interface OperatorConfig {
  listen: { host: string; port: number };
  tlsCertFile: string;
  tlsKeyFile: string;
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

export const OPERATOR_USAGE = `usage: llmproxy-operator --tls-cert-file FILE --tls-key-file FILE [options]

  --listen HOST:PORT            policy distribution, TLS 1.3 (default 0.0.0.0:8443)
  --tls-cert-file FILE          serving certificate (PEM); reloaded when it changes
  --tls-key-file FILE           its private key (PEM)
  --kubeconfig FILE             default: in-cluster, else KUBECONFIG / ~/.kube/config
  --namespace NS                watch only this namespace (default: all)
  --pod-label-selector SEL      track only pods matching this (e.g. the injected ones)
  --leader-election-namespace NS  where the Lease lives (env POD_NAMESPACE, default llmproxy-system)
  --leader-election-id NAME     the Lease's name (default llmproxy-operator)
  --identity NAME               this replica (env POD_NAME, default the host name)
  --log-level LEVEL             error | warn | info | debug (default info)`;

const LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

export function parseOperatorConfig(
  argv: string[],
  env: Record<string, string | undefined>,
): OperatorConfig {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      listen: { type: 'string', default: '0.0.0.0:8443' },
      'tls-cert-file': { type: 'string' },
      'tls-key-file': { type: 'string' },
      kubeconfig: { type: 'string' },
      namespace: { type: 'string' },
      'pod-label-selector': { type: 'string' },
      'leader-election-namespace': { type: 'string' },
      'leader-election-id': { type: 'string', default: 'llmproxy-operator' },
      identity: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
    },
  });
  const problems: string[] = [];
  const listen = parseListen(values.listen ?? '', problems);
  if (!values['tls-cert-file']) problems.push('--tls-cert-file is required');
  if (!values['tls-key-file']) problems.push('--tls-key-file is required');
  const logLevel = values['log-level'] as LogLevel;
  if (!LEVELS.includes(logLevel)) problems.push(`--log-level must be one of ${LEVELS.join(', ')}`);
  const dnsLabel = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
  const leaseNamespace =
    values['leader-election-namespace'] ?? env['POD_NAMESPACE'] ?? 'llmproxy-system';
  if (!dnsLabel.test(leaseNamespace))
    problems.push('--leader-election-namespace is not a namespace name');
  if (values.namespace !== undefined && !dnsLabel.test(values.namespace)) {
    problems.push('--namespace is not a namespace name');
  }
  if (problems.length > 0) throw new OperatorConfigError(problems);
  return {
    listen,
    tlsCertFile: values['tls-cert-file'] ?? '',
    tlsKeyFile: values['tls-key-file'] ?? '',
    kubeconfig: values.kubeconfig,
    namespace: values.namespace,
    podLabelSelector: values['pod-label-selector'],
    leaderElection: {
      namespace: leaseNamespace,
      name: values['leader-election-id'] ?? 'llmproxy-operator',
      identity: values.identity ?? env['POD_NAME'] ?? hostname(),
    },
    logLevel,
  };
}

function parseListen(value: string, problems: string[]): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:]+\]|[^:[\]]+):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (!match || !(port >= 0 && port <= 65535)) {
    problems.push('--listen must be HOST:PORT');
    return { host: '0.0.0.0', port: 8443 };
  }
  return { host: (match[1] ?? '').replace(/^\[|\]$/g, ''), port };
}
