#!/usr/bin/env node
// llmproxy-sidecar: the per-pod data plane. Standalone mode enforces a policy file.
import type { Server } from 'node:http';
import {
  ConfigError,
  parseConfig,
  USAGE,
  type ListenAddress,
  type SidecarConfig,
} from './config.js';
import { createAdminServer } from './admin/server.js';
import { createLimiters } from './limits/index.js';
import type { CompiledPolicy } from './policy/compiled.js';
import { compileManifestStream } from './policy/compiler/index.js';
import { parsePolicyText, watchPolicyFile, type PodIdentity } from './policy/file-source.js';
import { PolicyStore } from './policy/store.js';
import { createPipeline } from './proxy/pipeline.js';
import { createProxyServer } from './proxy/server.js';
import { createKeyStore } from './secrets/index.js';
import { createLogger, type Logger } from './telemetry/log.js';
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
  const keys = createKeyStore({ log });
  store.onChange((policy) => keys.apply(policy.providers));
  const limits = createLimiters({
    redisUrl: config.redisUrl,
    onRedisDown: config.redisFailure,
    log,
  });
  store.onChange((policy) => limits.apply(policy.rateLimits ?? []));
  const upstream = createUpstream();
  const pipeline = createPipeline({
    currentPolicy: () => store.current(),
    keys,
    upstream,
    limits,
    log,
    maxBodyBytes: config.maxBodyBytes,
    accessLog: config.logLevel === 'info' || config.logLevel === 'debug',
    upstreamTimeoutMs: config.upstreamTimeoutMs,
  });

  const policyFile = config.policyFile as string;
  const watcher = watchPolicyFile(
    policyFile,
    (text) => applyPolicyText(text, config.pod, store, log, policyFile),
    (error) =>
      log.error('cannot read the policy file; keeping the policy in force', {
        file: policyFile,
        code: (error as NodeJS.ErrnoException).code ?? 'read_error',
      }),
  );

  const proxyServer = createProxyServer({
    handle: pipeline.handle,
    requestTimeoutMs: config.requestTimeoutMs,
    headersTimeoutMs: Math.min(config.requestTimeoutMs, 10_000),
  });
  const adminServer = createAdminServer({
    readiness: () => {
      const reasons: string[] = [];
      if (!store.current()) reasons.push('no policy loaded yet: every request is refused');
      if (!keys.ready()) reasons.push('not every provider key is loaded yet');
      return { ready: reasons.length === 0, reasons };
    },
    status: () => ({
      policyVersion: store.current()?.policy.version ?? null,
      policyAgeSeconds: ageSeconds(store.age(Date.now())),
      mode: 'standalone',
    }),
  });

  await Promise.all([listen(proxyServer, config.listen), listen(adminServer, config.adminListen)]);
  log.info('llmproxy sidecar started', {
    event: 'started',
    mode: 'standalone',
    listen: `http://${hostPort(config.listen)}`,
    admin: `http://${hostPort(config.adminListen)}`,
    file: policyFile,
  });

  const shutdown = async (signal: string) => {
    log.info('shutting down: finishing requests in flight', { event: 'stopping', reason: signal });
    watcher.close();
    const closing = Promise.all([close(proxyServer), close(adminServer)]);
    proxyServer.closeIdleConnections();
    const deadline = setTimeout(() => proxyServer.closeAllConnections(), 10_000);
    deadline.unref();
    await closing;
    upstream.close();
    await Promise.all([keys.close(), limits.close()]);
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

function applyPolicyText(
  text: string,
  pod: PodIdentity,
  store: PolicyStore,
  log: Logger,
  file: string,
): void {
  let policy: CompiledPolicy;
  try {
    policy = parsePolicyText(text, pod, compileManifestStream);
    if (store.set(policy, Date.now())) {
      log.info('policy in force', {
        event: 'policy_loaded',
        file,
        policyVersion: policy.version,
        providers: policy.providers.map((p) => `${p.name}(${p.type})`),
      });
    }
  } catch (error) {
    const problems = (error as { problems?: unknown }).problems;
    const reason = Array.isArray(problems) ? problems.join('; ') : 'unreadable policy';
    const held = store.current()?.policy.version;
    log.error(
      held
        ? 'policy file rejected; keeping the policy in force'
        : 'policy file rejected; refusing every request until it is fixed',
      {
        event: 'policy_rejected',
        file,
        reason,
        policyVersion: held,
      },
    );
  }
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
  const hint =
    err.code === 'EADDRINUSE'
      ? ': the address is in use; pick another with --listen/--admin-listen'
      : '';
  process.stderr.write(
    `llmproxy-sidecar: cannot start (${err.code ?? err.name ?? 'error'})${hint}\n`,
  );
  process.exit(1);
});
