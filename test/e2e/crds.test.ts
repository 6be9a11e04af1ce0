// The generated CRDs against a real kube-apiserver: the examples are accepted, every invalid
// case is refused by `kubectl apply` with its message, and `kubectl get` shows the columns.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { invalidCases, validPolicy } from '../../crds/invalid-cases.js';
import { freshNamespace, sharedControlPlane, type ControlPlane } from '../support/e2e.js';

const CRD_FILES = ['crds/llmpolicies.llmproxy.io.yaml', 'crds/llmbudgets.llmproxy.io.yaml'];

let cp: ControlPlane;
let ns: string;

async function kubectl(args: string[], input?: string) {
  return cp.kubectl(args, input === undefined ? {} : { input });
}

async function ok(args: string[], input?: string): Promise<string> {
  const res = await kubectl(args, input);
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout;
}

/** An example file with its namespace replaced by the test's own. */
function example(path: string): string {
  return readFileSync(path, 'utf8').replaceAll('namespace: llmproxy-demo', `namespace: ${ns}`);
}

beforeAll(async () => {
  cp = await sharedControlPlane();
  for (const file of CRD_FILES)
    await ok(['apply', '--server-side', '--force-conflicts', '-f', file]);
  await ok([
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    'crd/llmpolicies.llmproxy.io',
    'crd/llmbudgets.llmproxy.io',
  ]);
  ns = await freshNamespace('crds');
});

describe('LlmPolicy and LlmBudget CRDs on a real API server', () => {
  it('are accepted with their names, short names and category', async () => {
    const names = await ok([
      'get',
      'crd',
      'llmbudgets.llmproxy.io',
      '-o',
      'jsonpath={.status.conditions[?(@.type=="NamesAccepted")].status} {.status.acceptedNames.shortNames}',
    ]);
    expect(names).toBe('True ["llmbudget"]');
    await ok(['get', 'llmpol,llmbudget', '-n', ns]);
    await ok(['get', 'llmproxy', '-n', ns]);
  });

  it('accept the examples as written', async () => {
    await ok(['apply', '-f', '-'], example('examples/llmpolicy.yaml'));
    await ok(['apply', '-f', '-'], example('examples/llmbudget.yaml'));
    await ok(['apply', '-n', ns, '-f', 'examples/standalone/llmpolicy.yaml']);
    const names = await ok(['get', 'llmpolicies,llmbudgets', '-n', ns, '-o', 'name']);
    expect(names.trim().split('\n').sort()).toEqual([
      'llmbudget.llmproxy.io/demo-daily-alert',
      'llmbudget.llmproxy.io/demo-monthly',
      'llmbudget.llmproxy.io/dev',
      'llmpolicy.llmproxy.io/demo',
      'llmpolicy.llmproxy.io/dev',
    ]);
  });

  it('apply the schema defaults', async () => {
    const out = await ok([
      'get',
      'llmbudget',
      'dev',
      '-n',
      ns,
      '-o',
      'jsonpath={.spec.timeZone} {.spec.alertThresholds}',
    ]);
    expect(out).toBe('UTC [50,80,100]');
  });

  it.each(invalidCases().map((c) => [c.name, c] as const))(
    'refuses %s with a message a person understands',
    async (_name, c) => {
      const object = { ...c.object, metadata: { ...(c.object.metadata as object), namespace: ns } };
      const res = await kubectl(['apply', '-f', '-'], JSON.stringify(object));
      expect(res.code).not.toBe(0);
      expect(res.stderr).toContain(c.serverMessage ?? c.message);
    },
  );

  it('refuses an unknown field by name', async () => {
    const object = validPolicy(ns, 'unknown-field') as { spec: Record<string, unknown> };
    object.spec.allowModels = ['gpt-4o'];
    const res = await kubectl(['apply', '-f', '-'], JSON.stringify(object));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('unknown field "spec.allowModels"');
  });

  it('shows readiness, pods and models in kubectl get llmpolicies -o wide', async () => {
    await ok(['apply', '-f', '-'], example('examples/llmpolicy.yaml'));
    const status = {
      status: {
        selectedPods: 3,
        models: 'openai: gpt-4o-mini; anthropic: claude-sonnet-4-*',
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'Compiled',
            message: 'compiled for 3 pods',
            lastTransitionTime: '2026-01-01T00:00:00Z',
          },
        ],
      },
    };
    await ok([
      'patch',
      'llmpolicy',
      'demo',
      '-n',
      ns,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify(status),
    ]);
    const table = await ok(['get', 'llmpolicies', 'demo', '-n', ns, '-o', 'wide']);
    const [header, row] = table.trim().split('\n');
    expect(header?.split(/\s{2,}/)).toEqual([
      'NAME',
      'READY',
      'PODS',
      'MODELS',
      'SUSPENDED',
      'REASON',
      'AGE',
    ]);
    expect(row).toMatch(
      /^demo\s+True\s+3\s+openai: gpt-4o-mini; anthropic: claude-sonnet-4-\*\s+\S+\s+Compiled\s+\S+$/,
    );
  });

  it('shows spend at a glance in kubectl get llmbudgets', async () => {
    await ok(['apply', '-f', '-'], example('examples/llmbudget.yaml'));
    const status = {
      status: {
        spent: '62.50',
        remaining: '187.50',
        percentUsed: '25%',
        state: 'Ok',
        periodStart: '2026-11-01T00:00:00Z',
        periodEnd: '2026-12-01T00:00:00Z',
      },
    };
    await ok([
      'patch',
      'llmbudget',
      'demo-monthly',
      '-n',
      ns,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify(status),
    ]);
    const table = await ok(['get', 'llmbudgets', 'demo-monthly', '-n', ns, '-o', 'wide']);
    const [header, row] = table.trim().split('\n');
    expect(header?.split(/\s{2,}/)).toEqual([
      'NAME',
      'SPENT',
      'LIMIT',
      'USED %',
      'STATE',
      'PERIOD END',
      'PERIOD',
      'ACTION',
      'AGE',
    ]);
    expect(row).toMatch(
      /^demo-monthly\s+62\.50\s+250\.00\s+25%\s+Ok\s+2026-12-01T00:00:00Z\s+monthly\s+block\s+\S+$/,
    );
  });

  it('keeps status out of reach of a spec write (status subresource)', async () => {
    const object = readFileSync('examples/llmbudget.yaml', 'utf8').split('\n---\n')[0]!;
    const withStatus = `${object.replaceAll('namespace: llmproxy-demo', `namespace: ${ns}`)}\nstatus:\n  spent: "999.00"\n`;
    await ok(['apply', '-f', '-'], withStatus);
    const spent = await ok([
      'get',
      'llmbudget',
      'demo-monthly',
      '-n',
      ns,
      '-o',
      'jsonpath={.status.spent}',
    ]);
    expect(spent).not.toBe('999.00');
  });
});
