// `helm install` for real on the local control plane, then the RBAC proof: a token minted for the
// chart's ServiceAccount can do exactly what the operator needs (shown by the API server's own
// rules review, and by the operator's kube client doing each kind of call) and is refused the
// rest. The examples are applied next to it, as written.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  KubeApiError,
  KubeClient,
  Leases,
  LlmBudgets,
  LlmPolicies,
  Namespaces,
  Pods,
  loadKubeConfig,
  type KubeObject,
} from '../../operator/kube/index.js';
import { startLeaderElection } from '../../operator/leader/index.js';
import { freshNamespace, sharedControlPlane, type ControlPlane } from '../support/e2e.js';
import {
  CHART_DIR,
  REPO_ROOT,
  helmOk,
  installChart,
  installedOperatorConfig,
  kubectlWith,
  serviceAccountKubeconfig,
  type InstalledChart,
} from '../support/chart.js';

const CRDS = ['crd/llmpolicies.llmproxy.io', 'crd/llmbudgets.llmproxy.io'];

let cp: ControlPlane;
let ns: string;
let other: string;
let chart: InstalledChart;
let saKubeconfig: string;
let asOperator: KubeClient;

async function ok(args: string[], input?: string): Promise<string> {
  const res = await cp.kubectl(args, input === undefined ? {} : { input });
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout;
}

/** An example manifest moved into the given namespace. */
function example(file: string, namespace: string): string {
  return readFileSync(path.join(REPO_ROOT, 'examples', file), 'utf8').replaceAll(
    'llmproxy-demo',
    namespace,
  );
}

/** The HTTP status a call as the operator fails with (0: it succeeded). */
async function statusOf(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
    return 0;
  } catch (err) {
    if (err instanceof KubeApiError) return err.status;
    throw err;
  }
}

beforeAll(async () => {
  cp = await sharedControlPlane();
  ns = await freshNamespace('helm-install');
  other = await freshNamespace('helm-team');
  chart = await installChart(cp, { namespace: ns });
  saKubeconfig = await serviceAccountKubeconfig(cp, ns, chart.serviceAccount);
  asOperator = new KubeClient(loadKubeConfig(saKubeconfig));
  // What the operator works on: the examples, in a team namespace.
  await ok(['wait', '--for=condition=Established', '--timeout=60s', ...CRDS]);
  await ok(['apply', '-f', '-'], example('llmpolicy.yaml', other));
  await ok(['apply', '-f', '-'], example('llmbudget.yaml', other));
});

afterAll(() => asOperator?.close());

describe('helm install on a real API server', () => {
  it('deploys the release with the operator, its access and its webhooks', async () => {
    const status = JSON.parse(
      await helmOk(cp, ['status', chart.release, '-n', ns, '-o', 'json']),
    ) as { info: { status: string } };
    expect(status.info.status).toBe('deployed');
    expect(chart.output).toContain('llmproxy.io/inject: "true"');
    expect(chart.output).toContain('networkPolicy.apiServerCIDRs is empty');
    const names = await ok([
      'get',
      'deployment,service,serviceaccount,configmap,poddisruptionbudget,networkpolicy,role,rolebinding',
      '-n',
      ns,
      '-o',
      'name',
    ]);
    for (const expected of [
      'deployment.apps/llmproxy-operator',
      'service/llmproxy-operator',
      'serviceaccount/llmproxy-operator',
      'configmap/llmproxy-operator-config',
      'poddisruptionbudget.policy/llmproxy-operator',
      'networkpolicy.networking.k8s.io/llmproxy-operator',
      'role.rbac.authorization.k8s.io/llmproxy-operator',
    ])
      expect(names).toContain(expected);
    await ok([
      'get',
      `mutatingwebhookconfiguration/${chart.release}`,
      `validatingwebhookconfiguration/${chart.release}`,
      `clusterrole/${chart.release}-operator`,
      `clusterrole/${chart.release}-viewer`,
    ]);
  });

  it('leaves the operator its configuration file, for running it as the ServiceAccount', async () => {
    const text = readFileSync(await installedOperatorConfig(cp, chart), 'utf8');
    expect(text).toContain(`namespace: ${ns}`);
    expect(text).toContain(`webhookConfigurationName: ${chart.release}`);
  });

  it('installs the CRDs, established', async () => {
    const out = await ok([
      'get',
      ...CRDS,
      '-o',
      'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Established")].status} {end}',
    ]);
    expect(out.trim().split(' ').sort()).toEqual([
      'llmbudgets.llmproxy.io=True',
      'llmpolicies.llmproxy.io=True',
    ]);
  });

  it('aggregates the people roles into view and edit', async () => {
    const view = await ok(['get', 'clusterrole', 'view', '-o', 'json']);
    const edit = await ok(['get', 'clusterrole', 'edit', '-o', 'json']);
    // The aggregation controller is part of the controller-manager, which this control plane
    // does not run: check the labels it selects by instead.
    const labels = JSON.parse(
      await ok([
        'get',
        'clusterrole',
        `${chart.release}-viewer`,
        '-o',
        'jsonpath={.metadata.labels}',
      ]),
    ) as Record<string, string>;
    expect(labels['rbac.authorization.k8s.io/aggregate-to-view']).toBe('true');
    expect(view).toContain('rbac.authorization.k8s.io/aggregate-to-view');
    expect(edit).toContain('rbac.authorization.k8s.io/aggregate-to-edit');
  });

  it('applies the example Deployment as written (no pods here: no controller-manager)', async () => {
    const out = await ok(['apply', '-f', '-'], example('deployment.yaml', other));
    expect(out).toContain('deployment.apps/demo');
    const annotation = await ok([
      'get',
      'deployment/demo',
      '-n',
      other,
      '-o',
      "jsonpath={.spec.template.metadata.annotations['llmproxy\\.io/inject']}",
    ]);
    expect(annotation).toBe('true');
  });
});

describe("the chart's ServiceAccount (the operator's identity)", () => {
  /** Rows of `kubectl auth can-i --list`: "resource [names] [verbs]", the basic-user ones aside. */
  async function rules(namespace: string): Promise<string[]> {
    const res = await kubectlWith(cp, saKubeconfig, ['auth', 'can-i', '--list', '-n', namespace]);
    expect(res.code).toBe(0);
    return res.stdout
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s{2,}/))
      .filter((cols) => cols.length === 4 && !cols[0]!.startsWith('selfsubject'))
      .map(([resource, , names, verbs]) => `${resource} ${names} ${verbs}`)
      .sort();
  }

  const clusterWide = () => [
    'events [] [create]',
    'events.events.k8s.io [] [create]',
    'tokenreviews.authentication.k8s.io [] [create]',
    'namespaces [] [get list watch]',
    'pods [] [get list watch patch]',
    'llmpolicies.llmproxy.io [] [get list watch]',
    'llmbudgets.llmproxy.io [] [get list watch]',
    'llmpolicies.llmproxy.io/status [] [patch update]',
    'llmbudgets.llmproxy.io/status [] [patch update]',
    `mutatingwebhookconfigurations.admissionregistration.k8s.io [${chart.release}] [get patch]`,
    `validatingwebhookconfigurations.admissionregistration.k8s.io [${chart.release}] [get patch]`,
  ];

  it('holds exactly the cluster-wide rules the operator needs, in any namespace', async () => {
    expect(await rules(other)).toEqual(clusterWide().sort());
  });

  it('holds, in its own namespace, only its Lease and its certificate Secret in addition', async () => {
    expect(await rules(ns)).toEqual(
      [
        ...clusterWide(),
        'leases.coordination.k8s.io [] [create]',
        'leases.coordination.k8s.io [llmproxy-operator] [get update]',
        'secrets [] [create]',
        'secrets [llmproxy-operator-tls] [get update]',
      ].sort(),
    );
  });

  it.each([
    ['get', 'secrets', 'other namespace'],
    ['list', 'secrets', 'own namespace'],
    ['get', 'secrets/some-app-secret', 'own namespace'],
    ['delete', 'pods', 'other namespace'],
    ['create', 'pods', 'other namespace'],
    ['create', 'pods/exec', 'other namespace'],
    ['create', 'serviceaccounts/token', 'other namespace'],
    ['update', 'llmpolicies.llmproxy.io', 'other namespace'],
    ['delete', 'llmbudgets.llmproxy.io', 'other namespace'],
    ['get', 'configmaps', 'other namespace'],
    ['create', 'leases.coordination.k8s.io', 'other namespace'],
    ['update', 'leases.coordination.k8s.io/some-other-lease', 'own namespace'],
    ['patch', 'mutatingwebhookconfigurations/some-other-webhook', 'cluster'],
    ['create', 'clusterrolebindings', 'cluster'],
    ['impersonate', 'serviceaccounts', 'other namespace'],
    ['create', 'customresourcedefinitions.apiextensions.k8s.io', 'cluster'],
  ])('may not %s %s (%s)', async (verb, resource, where) => {
    const scope = where === 'own namespace' ? ['-n', ns] : where === 'cluster' ? [] : ['-n', other];
    const res = await kubectlWith(cp, saKubeconfig, ['auth', 'can-i', verb, resource, ...scope]);
    expect(res.stdout.trim()).toBe('no');
  });

  it("does the operator's reads with the operator's own client: lists and watches", async () => {
    const policies = await asOperator.list(LlmPolicies);
    expect(policies.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)).toContain(
      `${other}/demo`,
    );
    expect((await asOperator.list(LlmBudgets, { namespace: other })).items).toHaveLength(2);
    await asOperator.list(Pods);
    expect((await asOperator.list(Namespaces)).items.length).toBeGreaterThan(2);
    const seen: string[] = [];
    await asOperator.watch(
      LlmPolicies,
      { namespace: other, timeoutSeconds: 1 },
      (event) => seen.push(event.type),
      new AbortController().signal,
    );
    expect(seen).toContain('ADDED');
  });

  it('writes status but not spec, and records Events', async () => {
    const written = await asOperator.updateStatus(LlmPolicies, 'demo', other, () => ({
      observedGeneration: 1,
      selectedPods: 0,
    }));
    expect(written.written).toBe(true);
    expect(
      await statusOf(() =>
        asOperator.patch(LlmPolicies, 'demo', other, { spec: { suspend: true } }),
      ),
    ).toBe(403);
    await asOperator.createEvent(
      {
        regarding: {
          apiVersion: 'llmproxy.io/v1alpha1',
          kind: 'LlmPolicy',
          name: 'demo',
          namespace: other,
        },
        type: 'Normal',
        reason: 'ChartRbacCheck',
        action: 'Reconcile',
        note: 'the operator may record events',
      },
      'llmproxy.io/operator',
      'helm-install-test',
    );
  });

  it('authenticates sidecar tokens with TokenReview', async () => {
    const token = await cp.tokenFor(ns, chart.serviceAccount);
    const review = await asOperator.tokenReview(token, ['llmproxy.io']);
    expect(review.authenticated).toBe(true);
  });

  it('takes the leader Lease named after it, and no other', async () => {
    const elector = startLeaderElection({
      client: asOperator,
      namespace: ns,
      name: 'llmproxy-operator',
      identity: 'replica-a',
      leaseDurationMs: 3000,
      renewDeadlineMs: 2000,
      retryPeriodMs: 200,
    });
    const deadline = Date.now() + 10_000;
    while (!elector.isLeader() && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(elector.isLeader()).toBe(true);
    await elector.stop();
    expect(
      await statusOf(() =>
        asOperator.create(
          Leases,
          { metadata: { name: 'x', namespace: other } } as KubeObject,
          other,
        ),
      ),
    ).toBe(403);
  });

  it('keeps its certificate Secret, and reads no other Secret', async () => {
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'llmproxy-operator-tls', namespace: ns },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': '', 'tls.key': '', 'ca.crt': '' },
    };
    const asSA = (args: string[], input?: string) => kubectlWith(cp, saKubeconfig, args, input);
    expect((await asSA(['create', '-f', '-'], JSON.stringify(secret))).code).toBe(0);
    expect((await asSA(['get', 'secret', 'llmproxy-operator-tls', '-n', ns])).code).toBe(0);
    // Rotation replaces the Secret (update), as operator/certs/manager.ts does.
    const current = JSON.parse(
      (await asSA(['get', 'secret', 'llmproxy-operator-tls', '-n', ns, '-o', 'json'])).stdout,
    ) as { metadata: Record<string, unknown> };
    current.metadata['annotations'] = { 'llmproxy.io/rotated': 'now' };
    const replaced = await asSA(['replace', '-f', '-'], JSON.stringify(current));
    expect(replaced.stderr).not.toContain('Forbidden');
    expect(replaced.code).toBe(0);
    await ok(['create', 'secret', 'generic', 'app-key', '-n', other, '--from-literal=k=v']);
    const denied = await asSA(['get', 'secret', 'app-key', '-n', other]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('Forbidden');
  });

  it('patches the CA bundle of its own webhook configurations', async () => {
    const patch = JSON.stringify([
      {
        op: 'add',
        path: '/webhooks/0/clientConfig/caBundle',
        value: Buffer.from(cp.caPem).toString('base64'),
      },
    ]);
    const res = await kubectlWith(cp, saKubeconfig, [
      'patch',
      'mutatingwebhookconfiguration',
      chart.release,
      '--type=json',
      '-p',
      patch,
    ]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
  });

  it('keeps the patched CA bundle through a helm upgrade', async () => {
    await helmOk(cp, [
      'upgrade',
      chart.release,
      CHART_DIR,
      '-n',
      ns,
      '--reuse-values',
      '--set',
      'webhook.timeoutSeconds=7',
    ]);
    const out = await ok([
      'get',
      'mutatingwebhookconfiguration',
      chart.release,
      '-o',
      'jsonpath={.webhooks[0].timeoutSeconds} {.webhooks[0].clientConfig.caBundle}',
    ]);
    const [timeout, bundle] = out.split(' ');
    expect(timeout).toBe('7');
    expect(bundle).toBe(Buffer.from(cp.caPem).toString('base64'));
  });

  it('cannot delete pods or read their logs', async () => {
    await ok([
      'run',
      'victim',
      '-n',
      other,
      '--image=registry.k8s.io/pause:3.10',
      '--restart=Never',
    ]);
    const deleted = await kubectlWith(cp, saKubeconfig, [
      'delete',
      'pod',
      'victim',
      '-n',
      other,
      '--wait=false',
    ]);
    expect(deleted.stderr).toContain('Forbidden');
    const logs = await kubectlWith(cp, saKubeconfig, ['logs', 'victim', '-n', other]);
    expect(logs.stderr).toContain('Forbidden');
  });

  describe('pod updates, confined by the ValidatingAdmissionPolicy', () => {
    const injected = 'injected-app';
    const plain = 'plain-app';
    const patchAs = (pod: string, patch: unknown) =>
      kubectlWith(cp, saKubeconfig, [
        'patch',
        'pod',
        pod,
        '-n',
        other,
        '--type=merge',
        '-p',
        JSON.stringify(patch),
      ]);

    beforeAll(async () => {
      await ok([
        'run',
        injected,
        '-n',
        other,
        '--image=registry.k8s.io/pause:3.10',
        '--restart=Never',
        '--labels=app=demo',
        '--annotations=llmproxy.io/ca-bundle=old-ca',
        '--annotations=team=payments',
      ]);
      await ok([
        'run',
        plain,
        '-n',
        other,
        '--image=registry.k8s.io/pause:3.10',
        '--restart=Never',
      ]);
      // The policy is enforced once the API server has loaded it (a few seconds at most).
      const deadline = Date.now() + 30_000;
      for (;;) {
        const probe = await patchAs(plain, {
          metadata: { annotations: { 'llmproxy.io/ca-bundle': 'x' } },
        });
        if (probe.code !== 0) break;
        if (Date.now() > deadline)
          throw new Error('the ValidatingAdmissionPolicy never took effect');
        await ok(['annotate', 'pod', plain, '-n', other, 'llmproxy.io/ca-bundle-']);
        await new Promise((r) => setTimeout(r, 500));
      }
    });

    it('refreshes the CA bundle annotation of an injected pod', async () => {
      const res = await patchAs(injected, {
        metadata: { annotations: { 'llmproxy.io/ca-bundle': 'new-ca' } },
      });
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
    });

    it.each([
      [
        'a pod it did not inject',
        plain,
        { metadata: { annotations: { 'llmproxy.io/ca-bundle': 'x' } } },
        'only update pods it injected',
      ],
      [
        'another annotation',
        injected,
        { metadata: { annotations: { team: 'billing' } } },
        'only change the llmproxy.io/ca-bundle annotation',
      ],
      [
        'a label',
        injected,
        { metadata: { labels: { app: 'other' } } },
        "may not change a pod's labels",
      ],
      [
        'the image',
        injected,
        { spec: { containers: [{ name: injected, image: 'registry.k8s.io/pause:3.9' }] } },
        "may not change a pod's spec",
      ],
    ])('is refused %s', async (_what, pod, patch, message) => {
      const res = await patchAs(pod, patch);
      expect(res.code).not.toBe(0);
      expect(res.stderr).toContain(message);
    });
  });
});
