// `make dev`: llmproxy on one machine with no cluster. Starts the fake provider and a sidecar
// enforcing the example manifests, then a real local control plane with the CRDs and examples
// installed, prints what to try, and runs until Ctrl-C.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startFakeProvider } from '../fake-provider/server.js';
import { startControlPlane, type ControlPlane } from '../support/controlplane.js';
import { startSidecar, type RunningSidecar } from '../support/sidecar.js';

const ROOT = resolve(import.meta.dirname, '../..');
const DEV = join(ROOT, '.dev');
const PORT = Number(process.env.LLMPROXY_DEV_PORT ?? 8787);
const ADMIN_PORT = Number(process.env.LLMPROXY_DEV_ADMIN_PORT ?? 15020);
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const step = (s: string) => console.log(`\n${bold(`==> ${s}`)}`);

async function main(): Promise<void> {
  mkdirSync(DEV, { recursive: true });
  const cleanups: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    console.log('\nstopping llmproxy dev...');
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());

  step('1/3 fake LLM provider (OpenAI- and Anthropic-compatible, local)');
  const fake = await startFakeProvider({ record: false });
  cleanups.push(() => fake.close());
  console.log(`    listening on ${fake.url}`);

  step('2/3 sidecar in standalone mode, enforcing examples/standalone/llmpolicy.yaml');
  const policyPath = writeDevPolicy(fake.url);
  const sidecar = await startDevSidecar(policyPath);
  cleanups.push(() => sidecar.stop());
  console.log(`    app endpoint  http://127.0.0.1:${PORT}/openai/v1   (and /anthropic)`);
  console.log(`    admin         http://127.0.0.1:${ADMIN_PORT}/readyz`);
  await showCalls();

  step('3/3 local Kubernetes control plane (kube-apiserver + etcd built from pinned Go modules)');
  console.log(
    '    the first run builds them (10 to 20 minutes on 2 cores); later runs reuse the cache',
  );
  const build = spawnSync('bash', [join(ROOT, 'test/controlplane/build.sh')], { stdio: 'inherit' });
  if (build.status !== 0) throw new Error('the control plane build failed; see its output above');
  const cp = await startControlPlane({
    log: (line) => {
      if (line.startsWith('[controlplane]')) console.log(`    ${line}`);
    },
  });
  cleanups.push(() => cp.stop());
  const kubeconfig = join(DEV, 'kubeconfig');
  copyFileSync(cp.kubeconfigPath, kubeconfig);
  await installApi(cp);

  console.log(`\n${bold('llmproxy dev is running.')} In another shell:\n`);
  console.log(`  export KUBECONFIG=${kubeconfig}`);
  console.log(`  export PATH=${cp.binDir}:$PATH        # the pinned kubectl and helm`);
  console.log('  kubectl get llmpolicies,llmbudgets -A');
  console.log(
    `  curl -s http://127.0.0.1:${PORT}/openai/v1/chat/completions -H 'content-type: application/json' \\`,
  );
  console.log(`    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'`);
  console.log(`  edit ${policyPath} and watch the sidecar reload it`);
  console.log('\nCtrl-C stops everything.');
  await new Promise(() => undefined);
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
  sidecar.process.stderr?.pipe(process.stderr);
  return sidecar;
}

async function showCalls(): Promise<void> {
  const call = async (model: string) => {
    const body = JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] });
    console.log(
      `\n    $ curl -s http://127.0.0.1:${PORT}/openai/v1/chat/completions -H 'content-type: application/json' -d '${body}'`,
    );
    const res = await fetch(`http://127.0.0.1:${PORT}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    console.log(`    ${res.status} ${(await res.text()).slice(0, 200)}`);
  };
  console.log('\n    an allowed call:');
  await call('gpt-4o-mini');
  console.log('\n    a refused call (gpt-4o is not in the policy):');
  await call('gpt-4o');
}

async function installApi(cp: ControlPlane): Promise<void> {
  for (const file of ['crds/llmpolicies.llmproxy.io.yaml', 'crds/llmbudgets.llmproxy.io.yaml']) {
    const result = await cp.kubectl(['apply', '-f', join(ROOT, file)]);
    if (result.code !== 0) throw new Error(`kubectl apply ${file} failed: ${result.stderr}`);
  }
  await cp.kubectl([
    'wait',
    '--for=condition=Established',
    'crd/llmpolicies.llmproxy.io',
    'crd/llmbudgets.llmproxy.io',
    '--timeout=30s',
  ]);
  for (const file of [
    'examples/00-namespace.yaml',
    'examples/llmpolicy.yaml',
    'examples/llmbudget.yaml',
  ]) {
    const result = await cp.kubectl(['apply', '-f', join(ROOT, file)]);
    if (result.code !== 0) throw new Error(`kubectl apply ${file} failed: ${result.stderr}`);
    console.log(`    ${result.stdout.trim()}`);
  }
}

main().catch((error: unknown) => {
  console.error(`\nmake dev failed: ${(error as Error).message}`);
  process.exit(1);
});
