// `make bench`: the policy compiler at scale, 10,000 pods against 1,000 policies in one namespace,
// with the operator's pod counts dividing the namespace-wide policies' shared limits.
// Run alone with `node --import tsx test/bench/compiler.ts`.
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { LlmBudget, LlmPolicy } from '../../crds/v1alpha1/index.js';
import { createCompilerIndex, type PodIdentity } from '../../sidecar/policy/compiler/index.js';

const NAMESPACE = 'bench';
const APPS = 500;

const provider = (name: string) => ({
  name,
  type: 'openai' as const,
  baseURL: `https://${name}.example/v1`,
  credentials: { awsSecretsManager: { secretId: `bench/${name}`, refreshInterval: '5m' } },
});

/** A namespace as a platform team would shape it: per-app grants, a few namespace-wide rules. */
function policies(count: number): LlmPolicy[] {
  return Array.from({ length: count }, (_, i): LlmPolicy => {
    const kind = i % 100;
    const podSelector =
      kind === 0
        ? {} // namespace-wide: a deny and a limit for everyone
        : kind === 1
          ? { matchExpressions: [{ key: 'tier', operator: 'NotIn' as const, values: ['batch'] }] }
          : kind === 2
            ? {
                matchExpressions: [
                  {
                    key: 'app',
                    operator: 'In' as const,
                    values: [`app-${i % APPS}`, `app-${(i + 1) % APPS}`],
                  },
                ],
              }
            : { matchLabels: { app: `app-${i % APPS}`, ...(i % 2 ? { tier: 'web' } : {}) } };
    return {
      apiVersion: 'llmproxy.io/v1alpha1',
      kind: 'LlmPolicy',
      metadata: { name: `policy-${i}`, namespace: NAMESPACE },
      spec: {
        podSelector,
        providers: [provider('openai'), provider(`private-${i % 5}`)],
        models: [
          {
            provider: 'openai',
            allow: ['gpt-4o-mini', `ft:gpt-4o:team-${i}:*`],
            maxOutputTokens: 1000 + i,
          },
          { provider: 'openai', deny: ['*-realtime-*'] },
          { provider: `private-${i % 5}`, allow: ['*'] },
        ],
        rateLimits: [
          {
            id: 'rpm',
            requestsPerMinute: 100 + i,
            ...(kind === 0 && { scope: 'shared' as const }),
          },
        ],
        ...(kind === 0 && { dataProtection: { pii: 'redact' as const } }),
      },
    };
  });
}

function budgets(count: number): LlmBudget[] {
  return Array.from({ length: count }, (_, i): LlmBudget => ({
    apiVersion: 'llmproxy.io/v1alpha1',
    kind: 'LlmBudget',
    metadata: { name: `budget-${i}`, namespace: NAMESPACE },
    spec: {
      ...(i % 2
        ? { policyRef: { name: `policy-${i * 7}` } }
        : { podSelector: { matchLabels: { app: `app-${i}` } } }),
      limit: '100.00',
      period: 'monthly',
    },
  }));
}

function pods(count: number): PodIdentity[] {
  return Array.from({ length: count }, (_, i) => ({
    namespace: NAMESPACE,
    labels: {
      app: `app-${i % APPS}`,
      tier: ['web', 'worker', 'batch'][i % 3]!,
      'pod-template-hash': `h${i % 2000}`,
      'statefulset.kubernetes.io/pod-name': `pod-${i}`,
    },
    serviceAccount: 'default',
  }));
}

/** The inputs, built before the clock starts. */
export function benchFixtures() {
  return { policies: policies(1000), budgets: budgets(100), pods: pods(10_000) };
}

export async function benchCompiler(): Promise<{ pods: number; policies: number; ms: number }> {
  const { policies: policyList, budgets: budgetList, pods: podList } = benchFixtures();
  const started = performance.now();
  const index = createCompilerIndex(policyList, budgetList);
  const counts = index.countSelected(podList);
  const versions = new Set<string>();
  for (const pod of podList) versions.add(index.compileFor(pod, counts).version);
  const ms = performance.now() - started;
  if (versions.size < 2) throw new Error('benchmark selected nothing: its fixtures are wrong');
  return { pods: podList.length, policies: policyList.length, ms: Math.round(ms * 10) / 10 };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { pods: p, policies: n, ms } = await benchCompiler();
  // The figure scales with how busy the machine is, so it is printed with the load it ran under.
  const load = loadavg()[0]!.toFixed(1);
  console.log(
    `compiler: ${p} pods x ${n} policies in one namespace: ${ms} ms (target < 1000 ms; load average ${load} on ${cpus().length} CPUs)`,
  );
}
