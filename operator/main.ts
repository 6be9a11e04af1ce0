#!/usr/bin/env node
// llmproxy-operator: watches LlmPolicies, LlmBudgets and pods, and pushes each pod's compiled
// policy to its sidecar. Every replica serves sidecars and admission reviews; a Lease elects the
// one that does the work that must happen once (certificates, caBundles).
import { existsSync, readFileSync, watchFile, unwatchFile } from 'node:fs';
import { createLogger, type Logger } from '../sidecar/telemetry/log.js';
import { registerSecretSource } from '../sidecar/telemetry/secrets.js';
import { errorMessage } from '../sidecar/control/protocol.js';
import type { ServingMaterial } from './certs/index.js';
import {
  OPERATOR_USAGE,
  OperatorConfigError,
  parseOperatorConfig,
  type OperatorConfig,
} from './config.js';
import { answerLease, BudgetLedger } from './budgets/index.js';
import type { LlmBudget } from '../crds/v1alpha1/index.js';
import { nackEvent } from './controllers/delivery-events.js';
import { PolicySource } from './controllers/policy-source.js';
import { PolicyStatusController } from './controllers/policy-status.js';
import { startDistributionServer, type DistributionServer } from './distribution/index.js';
import { SecretRegistry, secretRefsOf } from './keys/index.js';
import { KubeClient, loadKubeConfig } from './kube/index.js';
import { startLeaderElection } from './leader/index.js';
import { renderOperatorMetrics, startEndpoint, type Endpoint } from './metrics.js';
import {
  servingProblem,
  startAdmission,
  type Admission,
  type PodObject,
} from './webhooks/index.js';

/** The package's version, recorded on injected pods (from dist/operator or operator/). */
function packageVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    const url = new URL(rel, import.meta.url);
    if (!existsSync(url)) continue;
    const pkg = JSON.parse(readFileSync(url, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'llmproxy' && pkg.version) return pkg.version;
  }
  return '0.0.0';
}

/** How often the leader checks idle budgets for a new period or expired leases (a pure check). */
const BUDGET_REFRESH_MS = 5000;

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
  try {
    await run(config, log);
  } catch (err) {
    fatal(log, err);
  }
}

async function run(config: OperatorConfig, log: Logger): Promise<void> {
  const client = new KubeClient(loadKubeConfig(config.kubeconfig));
  // The source reports changes before the server exists only while caches fill; none are lost,
  // because a sidecar connecting later gets its current policy on connect.
  let notify: DistributionServer['notify'] = () => {};
  // Leader-only status writes start once the caches are being filled.
  const later: { status?: PolicyStatusController } = {};
  // Provider keys for `fetchFrom: operator`: one read per secret, pushed to the pods granted it.
  // A new value reaches every stream; each gets a keys message only if its own keys changed.
  let keysChanged: NodeJS.Timeout | undefined;
  const secrets = new SecretRegistry({
    log,
    defaultRegion: config.settings?.aws.region,
    onKeysChanged: () => {
      keysChanged ??= setTimeout(() => {
        keysChanged = undefined;
        notify(() => true);
      }, 50);
    },
    onObserved: () => later.status?.trigger(),
  });
  // The operator's log lines drop any value it holds, wherever it appears.
  registerSecretSource(() => secrets.knownValues());
  let secretsSync: NodeJS.Timeout | undefined;
  const source: PolicySource = new PolicySource({
    client,
    log,
    namespace: config.namespace,
    podLabelSelector: config.podLabelSelector,
    onChange: (affects) => notify(affects),
    onObjectsChanged: () => {
      later.status?.trigger();
      secretsSync ??= setTimeout(() => {
        secretsSync = undefined;
        secrets.sync(source.listPolicies().flatMap((p) => secretRefsOf(p).map((r) => r.ref)));
      }, 20);
    },
    // With the injection settings the sidecar container itself is checked too.
    servingProblem: (pod) => servingProblem(pod as PodObject, config.settings),
  });
  // Before admission: a follower's certificate manager waits for the leader's Secret.
  const elector = startLeaderElection({
    client,
    ...config.leaderElection,
    log,
    onStartedLeading: () => {
      log.info('leading', { reason: config.leaderElection.identity });
      later.status?.trigger();
    },
    onStoppedLeading: () => log.info('standing by', { reason: config.leaderElection.identity }),
  });

  const endpoints: Endpoint[] = [];
  // New certificates may arrive before the distribution server exists.
  const live: { server?: DistributionServer } = {};
  let admission: Admission | undefined;
  const certFile = config.tlsCertFile;
  const keyFile = config.tlsKeyFile;
  const fromFiles = certFile && keyFile;
  const readTls = () => ({
    cert: readFileSync(certFile ?? ''),
    key: readFileSync(keyFile ?? ''),
  });
  const onMaterial = (material: ServingMaterial): void => {
    if (!fromFiles) live.server?.setCertificate(material);
    for (const endpoint of endpoints) endpoint.setCertificate(material);
  };
  if (config.settings) {
    admission = await startAdmission({
      client,
      settings: config.settings,
      log,
      version: packageVersion(),
      isLeader: () => elector.isLeader(),
      injectedPods: () => source.injectedPods(),
      onMaterial,
      host: config.webhookHost,
      certPolicy: config.certIpSans.length > 0 ? { ips: config.certIpSans } : undefined,
    });
  }
  const managed = admission?.certs.material();
  const tls = fromFiles ? readTls() : managed;
  if (!tls) throw new Error('no serving certificate: give --tls-*-file or --config');

  const recordEvent = (event: Parameters<KubeClient['createEvent']>[0]) =>
    client.createEvent(event, 'llmproxy.io/operator', config.leaderElection.identity);
  // Every replica counts the spend its sidecars report; the status write is conditional.
  const ledger = new BudgetLedger({ client, log, recordEvent });
  const server = await startDistributionServer({
    host: config.listen.host,
    port: config.listen.port,
    tls,
    reviewToken: (token, audiences) => client.tokenReview(token, audiences),
    policyFor: (pod) => source.policyFor(pod),
    keysFor: (_pod, policy) => secrets.keysFor(policy),
    authorize: (pod) => source.injection(pod),
    lease: (pod, request) =>
      answerLease(ledger, pod, source.policyFor(pod), request, (budget) =>
        source.budgetPodCounts().get(budget),
      ),
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
  live.server = server;
  notify = (affects) => server.notify(affects);
  if (fromFiles) {
    // cert-manager (or the chart) rotates the serving certificate in place.
    watchFile(certFile, { interval: 30_000 }, () => {
      try {
        server.setCertificate(readTls());
        log.info('serving certificate reloaded', { file: certFile });
      } catch (err) {
        log.error('serving certificate reload failed', { reason: errorMessage(err) });
      }
    });
  }

  const endpointTls = managed ?? tls;
  if (config.healthListen) {
    endpoints.push(
      await startEndpoint({
        ...config.healthListen,
        tls: endpointTls,
        routes: {
          '/healthz': () => [200, 'text/plain', 'ok\n'],
          '/readyz': () =>
            source.synced() ? [200, 'text/plain', 'ok\n'] : [503, 'text/plain', 'not ready\n'],
        },
      }),
    );
  }
  if (config.metricsListen) {
    endpoints.push(
      await startEndpoint({
        ...config.metricsListen,
        tls: endpointTls,
        routes: {
          '/metrics': () => [
            200,
            'text/plain; version=0.0.4; charset=utf-8',
            renderOperatorMetrics({
              distribution: server.stats(),
              webhooks: admission?.server.stats(),
              ledger: ledger.snapshot(),
              budgets: source.listBudgets().map((object) => {
                const budget = object as unknown as LlmBudget;
                return {
                  namespace: budget.metadata.namespace ?? '',
                  name: budget.metadata.name,
                  spentUsd: Number(budget.status?.spent ?? 0),
                  limitUsd: Number(budget.spec.limit),
                };
              }),
              leader: elector.isLeader(),
            }),
          ],
        },
      }),
    );
  }

  const status = new PolicyStatusController({
    client,
    source,
    log,
    isLeader: () => elector.isLeader(),
    identity: config.leaderElection.identity,
    observeSecret: (ref) => secrets.observe(ref),
    ...(config.settings ? { rotationPeriodDays: config.settings.aws.rotationPeriodDays } : {}),
  });
  later.status = status;
  // The leader alone starts periods and expires leases of budgets no sidecar reports on.
  const budgetTimer = setInterval(() => {
    if (!elector.isLeader() || !source.synced()) return;
    for (const budget of source.listBudgets()) {
      void ledger.refreshIfStale(budget as unknown as LlmBudget);
    }
  }, BUDGET_REFRESH_MS);
  budgetTimer.unref();
  await source.start();
  log.info('caches synced; serving policies', { count: source.synced() ? 1 : 0 });
  status.trigger();

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { reason: signal });
    if (fromFiles) unwatchFile(certFile);
    clearInterval(budgetTimer);
    await status.stop();
    await elector.stop();
    await Promise.all(endpoints.map((e) => e.close()));
    await admission?.stop();
    await server.close();
    ledger.close();
    clearTimeout(secretsSync);
    clearTimeout(keysChanged);
    await secrets.close();
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
