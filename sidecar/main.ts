#!/usr/bin/env node
// llmproxy-sidecar: the per-pod data plane. It enforces a policy file (standalone mode) or the
// policy the operator pushes for this pod (managed mode).
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import {
  ConfigError,
  parseConfig,
  USAGE,
  type ListenAddress,
  type SidecarConfig,
} from './config.js';
import { selfSignedCertificate } from './admin/self-signed.js';
import { createAdminServer, createProbeServer, type AdminServerOptions } from './admin/server.js';
import { BudgetAllowances } from './budget/allowances.js';
import { connectToOperator, type OperatorConnection } from './control/index.js';
import { connectSharedStore, createLimiters } from './limits/index.js';
import type { CompiledPolicy } from './policy/compiled.js';
import {
  CompilerNeededError,
  parsePolicyText,
  watchPolicyFile,
  type ManifestCompiler,
  type PodIdentity,
} from './policy/file-source.js';
import { PolicyStore } from './policy/store.js';
import { createPipeline } from './proxy/pipeline.js';
import { createProxyServer } from './proxy/server.js';
import { createKeyStore, type KeyStore } from './secrets/index.js';
import {
  createLogger,
  createTelemetry,
  registerSecretSource,
  telemetryOptionsFromEnv,
  type Logger,
} from './telemetry/index.js';
import { createUpstream } from './upstream/forward.js';

async function main(): Promise<void> {
  let config: SidecarConfig;
  try {
    config = parseConfig(process.argv.slice(2), process.env);
  } catch (error) {
    const message =
      error instanceof ConfigError
        ? error.message
        : `invalid arguments: ${(error as Error).message}`;
    process.stderr.write(`llmproxy-sidecar: ${message}\n\n${USAGE}\n`);
    process.exit(2);
  }
  const log = createLogger({ level: config.logLevel, component: 'sidecar' });
  installCrashHandlers(log);

  const store = new PolicyStore();
  // The key store is created before telemetry (which redacts its values), so refreshes reach the
  // metric through this late-bound hook.
  let onRefresh: (secretId: string, outcome: 'ok' | 'error') => void = () => undefined;
  const keys = createKeyStore({
    log,
    // Managed mode: the operator pushes the keys of `fetchFrom: operator` providers.
    operatorKeys: config.operator !== undefined,
    onRefresh: (secretId, outcome) => onRefresh(secretId, outcome),
  });
  // Every logger and exporter drops any value the key store holds, wherever it appears; this
  // registration is what telemetry's exporters and metric attributes consult too.
  registerSecretSource(() => keys.knownValues());
  const telemetry = createTelemetry({
    serviceName: 'llmproxy-sidecar',
    hmacKey: await loadHmacKey(config.hmacKeyFile, log),
    log,
    ...(await telemetryOptionsFromEnv(process.env)),
  });
  onRefresh = (secretId, outcome) => {
    for (const provider of store.current()?.policy.providers ?? []) {
      const aws =
        'awsSecretsManager' in provider.credentials
          ? provider.credentials.awsSecretsManager
          : undefined;
      if (aws?.secretId === secretId) telemetry.recordCredentialRefresh(provider.name, outcome);
    }
  };
  store.onChange((policy) => keys.apply(policy.providers));
  const limits = createLimiters({
    sharedStore: config.redisUrl
      ? await connectSharedStore({ url: config.redisUrl, log })
      : undefined,
    onRedisDown: config.redisFailure,
    log,
  });
  store.onChange((policy) => limits.apply(policy.rateLimits ?? []));
  // Budgets are enforced with allowances the operator leases, so only in managed mode.
  const link: { connection?: OperatorConnection } = {};
  const budgets = config.operator
    ? new BudgetAllowances({
        log,
        transport: {
          lease: (request) =>
            link.connection
              ? link.connection.lease(request)
              : Promise.reject(new Error('not connected to the operator yet')),
        },
      })
    : undefined;
  let warnedStandaloneBudgets = false;
  store.onChange((policy) => {
    if (budgets) budgets.setBudgets(policy.budgets ?? []);
    else if ((policy.budgets?.length ?? 0) > 0 && !warnedStandaloneBudgets) {
      warnedStandaloneBudgets = true;
      log.warn(
        'LlmBudgets are enforced in managed mode only: this standalone sidecar meters spend but does not cap it',
        {
          event: 'budgets_not_enforced',
        },
      );
    }
  });
  const upstream = createUpstream({
    connectTimeoutMs: Math.min(config.upstreamTimeoutMs, 10_000),
  });
  const pipeline = createPipeline({
    currentPolicy: () => store.current(),
    keys,
    upstream,
    limits,
    ...(budgets ? { budgets } : {}),
    telemetry,
    log,
    maxBodyBytes: config.maxBodyBytes,
    maxBufferedBytes: Math.max(config.maxBufferedBytes, config.maxBodyBytes),
    accessLog: config.logLevel === 'info' || config.logLevel === 'debug',
    upstreamTimeoutMs: config.upstreamTimeoutMs,
  });

  const source = await startPolicySource(config, store, log, link, keys);

  const proxyServer = createProxyServer({
    handle: pipeline.handle,
    requestTimeoutMs: config.requestTimeoutMs,
    headersTimeoutMs: Math.min(config.requestTimeoutMs, 10_000),
  });
  const admin: AdminServerOptions = {
    metrics: telemetry.metricsHandler,
    readiness: () => {
      const reasons: string[] = [];
      if (!store.current()) reasons.push('no policy loaded yet: every request is refused');
      if (!keys.ready()) reasons.push('not every provider key is loaded yet');
      return { ready: reasons.length === 0, reasons };
    },
    status: () => ({
      mode: source.mode,
      policyVersion: store.current()?.policy.version ?? null,
      policyAgeSeconds: ageSeconds(source.policyAge() ?? store.age(Date.now())),
      ...source.status(),
      ...(budgets ? { budgets: budgets.status() } : {}),
    }),
  };
  // Every server exists before any listens, so a ready /readyz means every listener is up.
  const servers: Array<[Server, ListenAddress]> = [
    [proxyServer, config.listen],
    [createAdminServer(admin), config.adminListen],
  ];
  if (config.probeListen) {
    const tls = await selfSignedCertificate(config.podName ?? 'llmproxy-sidecar', Date.now());
    servers.push([createProbeServer(admin, tls), config.probeListen]);
  }
  const listening = servers.map(([server, address]) => listen(server, address));
  await Promise.all(listening);
  log.info('llmproxy sidecar started', {
    event: 'started',
    mode: source.mode,
    listen: `http://${hostPort(config.listen)}`,
    admin: `http://${hostPort(config.adminListen)}`,
    ...(config.probeListen ? { url: `https://${hostPort(config.probeListen)} (probes)` } : {}),
    file: config.policyFile,
  });

  const shutdown = async (signal: string) => {
    log.info('shutting down: finishing requests in flight', { event: 'stopping', reason: signal });
    await source.close();
    const closing = Promise.all(servers.map(([server]) => close(server)));
    proxyServer.closeIdleConnections();
    const deadline = setTimeout(() => proxyServer.closeAllConnections(), 10_000);
    deadline.unref();
    await closing;
    // Spend of the last requests is reported and unspent allowances handed back.
    await budgets?.close();
    upstream.close();
    await Promise.all([keys.close(), limits.close(), telemetry.shutdown()]);
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

interface PolicySource {
  mode: 'standalone' | 'managed';
  /** Since the policy in force was confirmed current, when the source can tell. */
  policyAge(): number | undefined;
  status(): Record<string, unknown>;
  close(): Promise<void>;
}

async function startPolicySource(
  config: SidecarConfig,
  store: PolicyStore,
  log: Logger,
  link: { connection?: OperatorConnection },
  keys: KeyStore,
): Promise<PolicySource> {
  if (config.operator) {
    const operator = config.operator;
    const connection = connectToOperator({
      url: operator.url,
      tokenFile: operator.tokenFile,
      caFile: operator.caFile,
      podName: config.podName,
      log,
      onPolicy: (policy) => void store.set(policy, Date.now()),
      onKeys: (pushed) => keys.setOperatorKeys(pushed),
    });
    link.connection = connection;
    return {
      mode: 'managed',
      policyAge: () => connection.policyAge(),
      status: () => ({ operatorConnected: connection.state().connected }),
      close: () => connection.close(),
    };
  }
  const file = config.policyFile as string;
  let compileManifests: ManifestCompiler | undefined;
  // Serialized so a slow first compile cannot land after a newer edit.
  let applying = Promise.resolve();
  const watcher = watchPolicyFile(
    file,
    (text) => {
      applying = applying.then(async () => {
        if (applyPolicyText(text, config.pod, store, log, file, compileManifests)) return;
        // The compiler (and its CEL evaluator) is loaded only for manifests: a CompiledPolicy needs neither.
        compileManifests = (await import('./policy/compiler/index.js')).compileManifestStream;
        applyPolicyText(text, config.pod, store, log, file, compileManifests);
      });
    },
    (error) =>
      log.error('cannot read the policy file; keeping the policy in force', {
        file,
        code: (error as NodeJS.ErrnoException).code ?? 'read_error',
      }),
  );
  return {
    mode: 'standalone',
    policyAge: () => undefined,
    status: () => ({}),
    close: async () => watcher.close(),
  };
}

/** Applies or rejects the file's policy; false only when it needs the compiler it was not given. */
function applyPolicyText(
  text: string,
  pod: PodIdentity,
  store: PolicyStore,
  log: Logger,
  file: string,
  compileManifests: ManifestCompiler | undefined,
): boolean {
  let policy: CompiledPolicy;
  try {
    policy = parsePolicyText(text, pod, compileManifests);
    if (store.set(policy, Date.now())) {
      log.info('policy in force', {
        event: 'policy_loaded',
        file,
        policyVersion: policy.version,
        providers: policy.providers.map((p) => `${p.name}(${p.type})`),
      });
    }
  } catch (error) {
    if (error instanceof CompilerNeededError) return false;
    const problems = (error as { problems?: unknown }).problems;
    const reason = Array.isArray(problems) ? problems.join('; ') : 'unreadable policy';
    const held = store.current()?.policy.version;
    log.error(
      held
        ? 'policy file rejected; keeping the policy in force'
        : 'policy file rejected; refusing every request until it is fixed',
      { event: 'policy_rejected', file, reason, policyVersion: held },
    );
  }
  return true;
}

/** A startup problem we found ourselves: its message names what to fix and never a value. */
class StartupError extends Error {}

/** The caller-hash key: from a file (one key per deployment), else random for this process. */
async function loadHmacKey(file: string | undefined, log: Logger): Promise<Buffer> {
  if (file) {
    const key = await readFile(file);
    if (key.length < 16)
      throw new StartupError(`--hmac-key-file ${file} holds fewer than 16 bytes`);
    return key;
  }
  log.warn('no --hmac-key-file: caller hashes are random per process and change on restart', {
    event: 'hmac_key_random',
  });
  return randomBytes(32);
}

function listen(server: Server, address: ListenAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function hostPort(address: ListenAddress): string {
  return address.host.includes(':')
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

function ageSeconds(ms: number | undefined): number | null {
  return ms === undefined ? null : Math.floor(ms / 1000);
}

/** Crash output is one line with the error's name and code: a message or stack could hold a secret. */
function installCrashHandlers(log: Logger): void {
  const crash = (kind: string) => (error: unknown) => {
    const err = error as { name?: string; code?: string } | null;
    log.error('llmproxy sidecar crashed', {
      event: kind,
      error: err?.name ?? 'unknown',
      code: err?.code,
    });
    process.exit(70);
  };
  process.on('uncaughtException', crash('uncaught_exception'));
  process.on('unhandledRejection', crash('unhandled_rejection'));
}

main().catch((error: unknown) => {
  const err = error as { name?: string; code?: string; message?: string };
  const reason =
    error instanceof StartupError
      ? error.message
      : err.code === 'EADDRINUSE'
        ? 'an address is in use; pick another with --listen/--admin-listen/--probe-listen'
        : `${err.code ?? err.name ?? 'error'}`;
  process.stderr.write(`llmproxy-sidecar: cannot start: ${reason}\n`);
  process.exit(1);
});
