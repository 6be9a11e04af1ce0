// examples/ works as written: the whole directory applied with `kubectl apply -f examples/`, as
// the quick start says, against the real API server with the operator running as the chart runs
// it (local process, the chart's ServiceAccount, its webhooks). There is no controller-manager,
// so the Deployment creates no pods: a Pod made from its template goes through the webhook, and
// the sidecar the webhook injected gets the example policy and enforces it.
// Needs `npm run build` (dist/).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '../support/chart.js';
import { freshNamespace, sharedControlPlane, type ControlPlane } from '../support/e2e.js';
import {
  startInjectedSidecar,
  type InjectedSidecar,
  type StoredPod,
} from '../support/injected-sidecar.js';
import {
  createPodThroughWebhook,
  startLocalOperator,
  type LocalOperator,
} from '../support/local-operator.js';
import { waitUntil } from '../support/sidecar.js';

const NS = 'llmproxy-demo';

let cp: ControlPlane;
let operator: LocalOperator | undefined;
let sidecar: InjectedSidecar | undefined;
let dir: string;

async function ok(args: string[], input?: string): Promise<string> {
  const res = await cp.kubectl(args, input === undefined ? {} : { input });
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout;
}

/** A Pod as the Deployment's ReplicaSet would create it from the template. */
function podFromDeployment(): { metadata: Record<string, unknown>; spec: Record<string, unknown> } {
  const deployment = parse(
    readFileSync(path.join(REPO_ROOT, 'examples/deployment.yaml'), 'utf8'),
  ) as {
    spec: { template: { metadata: Record<string, unknown>; spec: Record<string, unknown> } };
  };
  const { metadata, spec } = deployment.spec.template;
  // What the ServiceAccount admission plugin (off on this control plane) would fill in.
  return {
    metadata: { ...metadata, generateName: 'demo-' },
    spec: { serviceAccountName: 'default', ...spec },
  };
}

beforeAll(async () => {
  cp = await sharedControlPlane();
  dir = mkdtempSync(path.join(os.tmpdir(), 'llmproxy-examples-'));
  const operatorNs = await freshNamespace('examples-operator');
  operator = await startLocalOperator(cp, { namespace: operatorNs });
  // The whole directory, exactly as the quick start applies it.
  await ok(['apply', '-f', path.join(REPO_ROOT, 'examples')]);
  // This install's webhooks only see namespaces carrying its label (the control plane is shared).
  await ok(['label', 'namespace', NS, `llmproxy.io/chart-test=${operatorNs}`, '--overwrite']);
  // No controller-manager: the namespace's default ServiceAccount must be made by hand.
  await cp.kubectl(['create', 'serviceaccount', 'default', '-n', NS]);
}, 240_000);

afterAll(async () => {
  await sidecar?.stop();
  await operator?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('examples/, applied together', () => {
  it('stores the namespace, the policy, both budgets and the Deployment', async () => {
    const names = (await ok(['get', 'llmpolicies,llmbudgets,deployments', '-n', NS, '-o', 'name']))
      .trim()
      .split('\n')
      .sort();
    expect(names).toEqual([
      'deployment.apps/demo',
      'llmbudget.llmproxy.io/demo-daily-alert',
      'llmbudget.llmproxy.io/demo-monthly',
      'llmpolicy.llmproxy.io/demo',
    ]);
  });

  it('passes the operator’s validating webhooks (server-side dry run)', async () => {
    const out = await ok(['apply', '--dry-run=server', '-f', path.join(REPO_ROOT, 'examples')]);
    expect(out).toContain('llmpolicy.llmproxy.io/demo');
  });

  it('injects the sidecar into a Pod of the Deployment’s template', async () => {
    const pod = await createPodThroughWebhook<StoredPod>(cp, NS, podFromDeployment());
    expect(pod.metadata.annotations['llmproxy.io/status']).toBeTruthy();
    const names = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].map((c) => c.name);
    expect(names).toContain('llmproxy-sidecar');
    const app = pod.spec.containers.find((c) => c.name === 'app');
    expect(app?.env?.find((e) => e.name === 'OPENAI_BASE_URL')?.value).toBe(
      `http://127.0.0.1:${operator!.settings.sidecar.port}/openai/v1`,
    );

    // Its sidecar gets the example policy and enforces it: a model it does not grant is refused.
    // (Not ready: the example's keys live in AWS Secrets Manager, which this test has not.)
    sidecar = await startInjectedSidecar(cp, pod, {
      dir,
      distributionPort: operator!.settings.operator.distributionPort,
      waitFor: 'listening',
    });
    const refusal = async () =>
      (
        await fetch(`http://127.0.0.1:${sidecar!.portOf('--listen')}/openai/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }),
        })
      ).headers.get('x-llmproxy-error');
    // policy_unavailable until the operator's policy arrives.
    await waitUntil(async () => (await refusal()) !== 'policy_unavailable', 20_000, 100);
    expect(await refusal()).toBe('model_not_allowed');
  });

  it('counts the injected pod in the policy’s status', async () => {
    type Policy = {
      status?: { selectedPods?: number; conditions?: { type: string; status: string }[] };
    };
    let policy: Policy = {};
    await waitUntil(
      async () => {
        policy = JSON.parse(
          await ok(['get', 'llmpolicy', 'demo', '-n', NS, '-o', 'json']),
        ) as Policy;
        return policy.status?.selectedPods === 1;
      },
      20_000,
      200,
    );
    expect(policy.status?.conditions?.some((c) => c.type === 'Ready')).toBe(true);
  });
});
