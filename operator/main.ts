#!/usr/bin/env node
// llmproxy-operator: watches LlmPolicies, LlmBudgets and pods, and pushes each pod's compiled
// policy to its sidecar. Every replica serves sidecars; a Lease elects the one that does the
// work that must happen once.
import { readFileSync, watchFile, unwatchFile } from 'node:fs';
import { createLogger, type Logger } from '../sidecar/telemetry/log.js';
import { errorMessage } from '../sidecar/control/protocol.js';
import {
  OPERATOR_USAGE,
  OperatorConfigError,
  parseOperatorConfig,
  type OperatorConfig,
} from './config.js';
import { nackEvent } from './controllers/delivery-events.js';
import { PolicySource } from './controllers/policy-source.js';
import { startDistributionServer, type DistributionServer } from './distribution/index.js';
import { KubeClient, loadKubeConfig } from './kube/index.js';
import { startLeaderElection } from './leader/index.js';

async function main(): Promise<void> {
  let config: OperatorConfig;
  try {
    config = parseOperatorConfig(process.argv.slice(2), process.env);
  } catch (error) {
    const message = error instanceof OperatorConfigError ? error.message : errorMessage(error);
    process.stderr.write(`llmproxy-operator: ${message}\n\n${OPERATOR_USAGE}\n`);
    process.exit(2);
  }
  const log = createLogger({ level: config.logLevel, component: 'operator' });
  process.on('unhandledRejection', (reason) => {
    log.error('unhandled rejection', { reason: errorMessage(reason) });
  });

  const client = new KubeClient(loadKubeConfig(config.kubeconfig));
  // The source reports changes before the server exists only while caches fill; none are lost,
  // because a sidecar connecting later gets its current policy on connect.
  let notify: DistributionServer['notify'] = () => {};
  const source = new PolicySource({
    client,
    log,
    namespace: config.namespace,
    podLabelSelector: config.podLabelSelector,
    onChange: (affects) => notify(affects),
  });
  const readTls = () => ({
    cert: readFileSync(config.tlsCertFile),
    key: readFileSync(config.tlsKeyFile),
  });
  const server = await startDistributionServer({
    host: config.listen.host,
    port: config.listen.port,
    tls: readTls(),
    reviewToken: (token, audiences) => client.tokenReview(token, audiences),
    policyFor: (pod) => source.policyFor(pod),
    ready: () => source.synced(),
    log,
    onAck: (pod, ack) => {
      const event = nackEvent(pod, ack);
      if (!event) return;
      client
        .createEvent(event, 'llmproxy.io/operator', config.leaderElection.identity)
        .catch((err: unknown) => log.warn('event not recorded', { reason: errorMessage(err) }));
    },
  });
  notify = (affects) => server.notify(affects);
  // cert-manager (or the chart) rotates the serving certificate in place.
  const reloadTls = () => {
    try {
      server.setCertificate(readTls());
      log.info('serving certificate reloaded', { file: config.tlsCertFile });
    } catch (err) {
      log.error('serving certificate reload failed', { reason: errorMessage(err) });
    }
  };
  watchFile(config.tlsCertFile, { interval: 30_000 }, reloadTls);

  await source.start();
  log.info('caches synced; serving policies', { count: source.synced() ? 1 : 0 });
  const elector = startLeaderElection({
    client,
    ...config.leaderElection,
    log,
    // Leader-only work (status writes, ledger periods, shared-limit division) hooks in here.
    onStartedLeading: () => log.info('leading', { reason: config.leaderElection.identity }),
    onStoppedLeading: () => log.info('standing by', { reason: config.leaderElection.identity }),
  });

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { reason: signal });
    unwatchFile(config.tlsCertFile);
    await elector.stop();
    await server.close();
    await source.stop();
    client.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

function fatal(log: Logger | undefined, err: unknown): never {
  const message = errorMessage(err);
  if (log) log.error('operator failed to start', { reason: message });
  else process.stderr.write(`llmproxy-operator: ${message}\n`);
  process.exit(1);
}

main().catch((err: unknown) => fatal(undefined, err));
