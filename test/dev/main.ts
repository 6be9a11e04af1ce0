// `make dev`: the whole of llmproxy on one machine, no cluster needed. Starts the fake provider and
// a standalone sidecar, then a real local control plane with the chart installed, the operator
// running as the chart's ServiceAccount with its webhooks registered, the examples applied, and a
// demo pod the webhook injected whose sidecar runs in managed mode. Prints what to try and runs
// until Ctrl-C, which stops everything.
//
// Settings (environment): LLMPROXY_DEV_DIR (default .dev/), LLMPROXY_DEV_PORT (8787, the
// standalone sidecar), LLMPROXY_DEV_ADMIN_PORT (15020, its admin port), LLMPROXY_DEV_DEMO_PORT
// (8788, the demo pod's sidecar).
import { spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, relative, resolve } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { startFakeProvider } from '../fake-provider/server.js';
import { startControlPlane, type ControlPlane } from '../support/controlplane.js';
import {
  startInjectedSidecar,
  type InjectedSidecar,
  type StoredPod,
} from '../support/injected-sidecar.js';
import { createPodThroughWebhook, startLocalOperator } from '../support/local-operator.js';
import { startSidecar, type RunningSidecar } from '../support/sidecar.js';

const ROOT = resolve(import.meta.dirname, '../..');
const DEV = resolve(process.env.LLMPROXY_DEV_DIR ?? join(ROOT, '.dev'));
const LOGS = join(DEV, 'logs');
let PORT = 8787;
let ADMIN_PORT = 15020;
let DEMO_PORT = 8788;
/** The operator's namespace, as the chart's quick start installs it. */
const SYSTEM_NS = 'llmproxy-system';
/** The examples, pointed at the local fake provider: the live demo runs here. */
const DEMO_NS = 'llmproxy-dev';
const DEMO_POD = 'demo';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const step = (s: string) => console.log(`\n${bold(`==> ${s}`)}`);
/** Paths under the working directory relative to it (as make dev prints them), others absolute. */
const show = (path: string) => {
  const rel = relative(process.cwd(), path);
  return rel === '' ? '.' : rel.startsWith('..') ? path : rel;
};

/** A failure with a message that says what to do; printed without a stack. */
class DevError extends Error {}

function envPort(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new DevError(`${name}=${raw} is not a port number`);
  }
  return port;
}

const cleanups: Array<() => Promise<unknown>> = [];
const children: ChildProcess[] = [];
let stopping = false;

async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    console.log('\nstopping llmproxy dev...');
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }
  process.exit(code);
}

// Children must not outlive this process, whatever way it ends (the control plane's own hooks
// stop etcd and kube-apiserver).
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(130); // a second Ctrl-C: stop waiting
    void stopAll(0);
  });
}

async function main(): Promise<void> {
  PORT = envPort('LLMPROXY_DEV_PORT', PORT);
  ADMIN_PORT = envPort('LLMPROXY_DEV_ADMIN_PORT', ADMIN_PORT);
  DEMO_PORT = envPort('LLMPROXY_DEV_DEMO_PORT', DEMO_PORT);
  mkdirSync(LOGS, { recursive: true });
  await ensureFree([
    [PORT, 'LLMPROXY_DEV_PORT'],
    [ADMIN_PORT, 'LLMPROXY_DEV_ADMIN_PORT'],
    [DEMO_PORT, 'LLMPROXY_DEV_DEMO_PORT'],
  ]);

  step('1/6 fake LLM provider (OpenAI- and Anthropic-compatible, local)');
  const fake = await startFakeProvider({ record: false });
  cleanups.push(() => fake.close());
  console.log(`    listening on ${fake.url}`);

  step('2/6 sidecar in standalone mode, enforcing examples/standalone/llmpolicy.yaml');
  const policyPath = writeDevPolicy(fake.url);
  await startDevSidecar(policyPath);
  console.log(`    app endpoint  http://127.0.0.1:${PORT}/openai/v1   (and /anthropic)`);
  console.log(`    admin         http://127.0.0.1:${ADMIN_PORT}/readyz`);
  console.log(`    log           ${show(join(LOGS, 'standalone-sidecar.log'))}`);
  await showCalls(PORT);

  step('3/6 local Kubernetes control plane (kube-apiserver + etcd built from pinned Go modules)');
  console.log(
    '    the first run builds them (10 to 20 minutes on 2 cores); later runs reuse the cache',
  );
  const build = spawnSync('bash', [join(ROOT, 'test/controlplane/build.sh')], { stdio: 'inherit' });
  if (build.status !== 0)
    throw new DevError('the control plane build failed; see its output above');
  const cp = await startControlPlane({
    log: (line) => {
      if (line.startsWith('[controlplane]')) console.log(`    ${line}`);
    },
  });
  cleanups.push(() => cp.stop());
  const kubeconfig = join(DEV, 'kubeconfig');
  copyFileSync(cp.kubeconfigPath, kubeconfig);

  step(`4/6 the chart (helm install llmproxy -n ${SYSTEM_NS}) and the operator`);
  console.log(
    '    the operator runs here as a process, as the chart ServiceAccount, with the webhooks',
  );
  console.log('    registered against this API server');
  await kubectl(cp, ['create', 'namespace', SYSTEM_NS]);
  const operatorLog = join(LOGS, 'operator.log');
  writeFileSync(operatorLog, '');
  const operator = await startLocalOperator(cp, {
    namespace: SYSTEM_NS,
    release: 'llmproxy',
    isolate: false,
    onOutput: (text) => writeFileSync(operatorLog, text, { flag: 'a' }),
  }).catch((err: unknown) => {
    throw new DevError(`the operator did not start: ${(err as Error).message.slice(0, 2000)}`);
  });
  cleanups.push(() => operator.stop());
  children.push(operator.process);
  console.log(`    operator ready (health https://127.0.0.1:${operator.healthPort}/readyz)`);
  console.log(`    log           ${show(operatorLog)}`);

  step('5/6 the examples: kubectl apply -f examples/, and a copy for the local demo');
  console.log(
    `    ${(await kubectl(cp, ['apply', '-f', join(ROOT, 'examples')])).trim().replaceAll('\n', '\n    ')}`,
  );
  const demoManifests = writeDemoManifests(fake.url);
  console.log(
    `    ${(await kubectl(cp, ['apply', '-f', demoManifests])).trim().replaceAll('\n', '\n    ')}`,
  );
  console.log(
    `    (${show(demoManifests)}: the examples in namespace ${DEMO_NS}, the providers pointed at the fake provider)`,
  );

  step(`6/6 the demo pod ${DEMO_NS}/${DEMO_POD}, injected by the webhook, and its sidecar`);
  // No controller-manager here: the Deployment makes no pods, so one is made from its template.
  const pod = await createPodThroughWebhook<StoredPod>(cp, DEMO_NS, demoPod());
  const injected = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].map((c) => c.name);
  console.log(`    stored with containers: ${injected.join(', ')}`);
  const demoLog = join(LOGS, 'demo-sidecar.log');
  writeFileSync(demoLog, '');
  const demo = await startInjectedSidecar(cp, pod, {
    dir: join(DEV, 'demo-pod'),
    distributionPort: operator.settings.operator.distributionPort,
    fixedPorts: { [String(operator.settings.sidecar.port)]: DEMO_PORT },
    onOutput: (text) => writeFileSync(demoLog, text, { flag: 'a' }),
  }).catch((err: unknown) => {
    throw new DevError(
      `the demo sidecar did not get ready: ${(err as Error).message.slice(0, 2000)}`,
    );
  });
  cleanups.push(() => demo.stop());
  children.push(demo.process);
  console.log(
    `    managed sidecar on http://127.0.0.1:${DEMO_PORT}/openai/v1 (the pod's 127.0.0.1:${operator.settings.sidecar.port}), policy from the operator`,
  );
  console.log(`    log           ${show(demoLog)}`);
  await showCalls(DEMO_PORT);

  printTryThis(cp, kubeconfig, policyPath, demo);
  await new Promise(() => undefined);
}

/** Fails early, and says what to do, when a fixed port is taken (often by another make dev). */
async function ensureFree(ports: [number, string][]): Promise<void> {
  for (const [port, variable] of ports) {
    const free = await new Promise<boolean>((resolveFree) => {
      const server = createServer();
      server.once('error', () => resolveFree(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolveFree(true)));
    });
    if (!free) {
      throw new DevError(
        `port ${port} is in use (another make dev still running?): stop what holds it, or pick another with ${variable}=<port> make dev`,
      );
    }
  }
}

async function kubectl(cp: ControlPlane, args: string[]): Promise<string> {
  const res = await cp.kubectl(args);
  if (res.code !== 0) throw new DevError(`kubectl ${args.join(' ')} failed: ${res.stderr.trim()}`);
  return res.stdout;
}

/** The standalone example, pointed at the fake provider and at dev key files under .dev/. */
function writeDevPolicy(fakeUrl: string): string {
  const keyDir = join(DEV, 'keys');
  mkdirSync(keyDir, { recursive: true });
  for (const provider of ['openai', 'anthropic']) {
    const file = join(keyDir, `${provider}.key`);
    writeFileSync(file, `dev-${provider}-key-for-the-fake-provider\n`);
    chmodSync(file, 0o600);
  }
  const example = readFileSync(join(ROOT, 'examples/standalone/llmpolicy.yaml'), 'utf8');
  const local = example
    .replace(/https:\/\/api\.[a-z]+\.com(\/v1)?/g, fakeUrl)
    .replace(/\/tmp\/llmproxy-dev\//g, `${keyDir}/`);
  const path = join(DEV, 'llmpolicy.yaml');
  writeFileSync(path, local);
  return path;
}

async function startDevSidecar(policyPath: string): Promise<RunningSidecar> {
  const sidecar = await startSidecar({
    args: ['--pod-labels', 'app=demo'],
    ports: { listen: PORT, admin: ADMIN_PORT },
    policyPath,
  });
  const log = join(LOGS, 'standalone-sidecar.log');
  writeFileSync(log, sidecar.output());
  const append = (chunk: Buffer) => writeFileSync(log, chunk, { flag: 'a' });
  sidecar.process.stdout?.on('data', append);
  sidecar.process.stderr?.on('data', append);
  cleanups.push(() => sidecar.stop());
  children.push(sidecar.process);
  return sidecar;
}

type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { namespace?: string; [key: string]: unknown };
  spec?: Record<string, unknown>;
};

function readExamples(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(join(ROOT, 'examples', file), 'utf8'))
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

/**
 * The examples' policy, budgets and Deployment in the demo namespace, every provider pointed at
 * the fake provider with `credentials: none` (there is no AWS here). Written to .dev/ so it can
 * be edited and applied again.
 */
function writeDemoManifests(fakeUrl: string): string {
  const objects: Manifest[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: DEMO_NS } },
    // No controller-manager here to create it.
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: DEMO_NS } },
    ...['llmpolicy.yaml', 'llmbudget.yaml', 'deployment.yaml'].flatMap(readExamples),
  ].map((object) => {
    const copy = structuredClone(object);
    if (copy.kind !== 'Namespace') copy.metadata.namespace = DEMO_NS;
    if (copy.kind === 'LlmPolicy') {
      const providers = (copy.spec?.providers ?? []) as Record<string, unknown>[];
      for (const provider of providers) {
        provider.baseURL = fakeUrl;
        provider.credentials = { none: {} };
      }
    }
    return copy;
  });
  const header =
    `# Written by make dev: examples/ in namespace ${DEMO_NS}, every provider pointed at the\n` +
    '# local fake provider with credentials: none. Edit and `kubectl apply -f` this file to change\n' +
    '# what the demo pod may do; its sidecar gets the change within a second.\n';
  const body = objects.map((o) => stringify(o)).join('---\n');
  const path = join(DEV, `${DEMO_NS}.yaml`);
  writeFileSync(path, header + body);
  return path;
}

/** A Pod as the demo Deployment's ReplicaSet would create it from the template. */
function demoPod() {
  const deployment = readExamples('deployment.yaml')[0] as unknown as {
    spec: { template: { metadata: Record<string, unknown>; spec: Record<string, unknown> } };
  };
  const { metadata, spec } = deployment.spec.template;
  // serviceAccountName: what the ServiceAccount admission plugin (off here) would fill in.
  return {
    metadata: { ...metadata, name: DEMO_POD },
    spec: { serviceAccountName: 'default', ...spec },
  };
}

function curlLine(port: number, model: string): string {
  const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] });
  return `curl -s http://127.0.0.1:${port}/openai/v1/chat/completions -H 'content-type: application/json' -d '${body}'`;
}

async function showCalls(port: number): Promise<void> {
  const call = async (model: string) => {
    console.log(`\n    $ ${curlLine(port, model)}`);
    const res = await fetch(`http://127.0.0.1:${port}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    });
    console.log(`    ${res.status} ${(await res.text()).slice(0, 200)}`);
  };
  console.log('\n    an allowed call:');
  await call('gpt-4o-mini');
  console.log('\n    a refused call (gpt-4o is not in the policy):');
  await call('gpt-4o');
}

function printTryThis(
  cp: ControlPlane,
  kubeconfig: string,
  policyPath: string,
  demo: InjectedSidecar,
): void {
  const lines = [
    `${bold('llmproxy dev is running.')} In another shell:`,
    '',
    `  export KUBECONFIG=${kubeconfig}`,
    `  export PATH=${cp.binDir}:$PATH    # the pinned kubectl and helm`,
    '',
    "  # an allowed call through the demo pod's sidecar (policy pushed by the operator):",
    `  ${curlLine(DEMO_PORT, 'gpt-4o-mini')}`,
    '  # a refused one: gpt-4o is not granted (403, "code": "model_not_allowed"):',
    `  ${curlLine(DEMO_PORT, 'gpt-4o')}`,
    '',
    '  # the policies and budgets:',
    '  kubectl get llmpolicies,llmbudgets -A',
    "  # watch the demo budget's SPENT move within ten seconds of each allowed call:",
    `  kubectl -n ${DEMO_NS} get llmbudgets --watch`,
    '  # the sidecar the webhook injected into the demo pod:',
    `  kubectl -n ${DEMO_NS} get pod ${DEMO_POD} -o jsonpath='{.spec.initContainers[*].name}{"\\n"}'`,
    '  # change what the demo pod may call; its sidecar gets it within a second:',
    `  kubectl -n ${DEMO_NS} edit llmpolicy demo`,
    '',
    `  # the standalone sidecar (no cluster) on :${PORT} enforces ${show(policyPath)}; edit it to see a reload`,
    `  ${curlLine(PORT, 'gpt-4o-mini')}`,
    '',
    `Logs in ${show(LOGS)}/ (demo sidecar admin: http://127.0.0.1:${demo.portOf('--admin-listen')}/readyz).`,
    'Ctrl-C stops everything.',
  ];
  console.log(`\n${lines.join('\n')}`);
}

main().catch(async (error: unknown) => {
  const message =
    error instanceof DevError ? error.message : ((error as Error).stack ?? String(error));
  console.error(`\nmake dev failed: ${message}`);
  await stopAll(1);
});
