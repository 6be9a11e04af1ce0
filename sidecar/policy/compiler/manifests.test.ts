import { describe, expect, it } from '@jest/globals';
import { readFileSync, writeFileSync } from 'node:fs';
import { format } from 'prettier';
import { canonicalJson, type CompiledPolicy } from '../compiled.js';
import { compileManifestStream, ManifestError } from './index.js';

const read = (path: string) => readFileSync(path, 'utf8');
const clusterExamples = () =>
  `${read('examples/llmpolicy.yaml')}\n---\n${read('examples/llmbudget.yaml')}`;
const demoPod = { namespace: 'llmproxy-demo', labels: { app: 'demo' } };

/** Golden files hold the canonical JSON as prettier lays it out; UPDATE_GOLDEN=1 rewrites them. */
async function expectGolden(policy: CompiledPolicy, file: string): Promise<void> {
  const text = await format(canonicalJson(policy), { parser: 'json' });
  const path = `sidecar/policy/compiler/testdata/${file}`;
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(path, text);
  expect(text).toBe(read(path));
}

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ManifestError) return error.problems;
    throw error;
  }
  throw new Error('expected a ManifestError');
}

describe('compileManifestStream', () => {
  it('compiles the cluster examples for a demo pod as the golden file states', async () => {
    await expectGolden(compileManifestStream(clusterExamples(), demoPod), 'examples.golden.json');
  });

  it('compiles the standalone example for --pod-labels app=demo as the golden file states', async () => {
    const policy = compileManifestStream(read('examples/standalone/llmpolicy.yaml'), {
      labels: { app: 'demo' },
    });
    await expectGolden(policy, 'standalone.golden.json');
    expect(policy.providers.map((p) => p.name)).toEqual(['anthropic', 'openai']);
  });

  it('lets the sidecar read Secrets Manager itself, since no operator runs in standalone mode', () => {
    const policy = compileManifestStream(clusterExamples(), demoPod);
    expect(policy.providers.find((p) => p.name === 'openai')?.credentials).toMatchObject({
      awsSecretsManager: { fetchFrom: 'sidecar' },
    });
  });

  it('grants nothing to a pod the manifests do not select', () => {
    expect(
      compileManifestStream(clusterExamples(), { ...demoPod, labels: { app: 'x' } }).providers,
    ).toEqual([]);
  });

  it('refuses other kinds with a message naming them', () => {
    const text = `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\n${read('examples/llmbudget.yaml')}`;
    expect(problemsOf(() => compileManifestStream(text, demoPod))).toEqual([
      'document 1: Deployment (apps/v1) is not accepted here: a policy file holds only llmproxy.io/v1alpha1 LlmPolicy and LlmBudget manifests',
    ]);
  });

  it('reports each bad field with its document and path', () => {
    const text = read('examples/llmpolicy.yaml')
      .replace('type: anthropic', 'type: claude')
      .replace("allow: ['claude-3-5-haiku-*', 'claude-sonnet-4-*']", "allow: ['claude 3']");
    expect(problemsOf(() => compileManifestStream(text, demoPod))).toEqual([
      'document 1 (LlmPolicy demo): spec.providers[1].type: must be one of openai, anthropic, azure-openai, openai-compatible',
    ]);
    const celOnly = read('examples/llmpolicy.yaml').replace(
      "allow: ['claude-3-5-haiku-*', 'claude-sonnet-4-*']",
      "allow: ['claude 3']",
    );
    expect(problemsOf(() => compileManifestStream(celOnly, demoPod))).toEqual([
      expect.stringMatching(
        /^document 1 \(LlmPolicy demo\): spec\.models\[1\]\.allow: model globs may use only/,
      ),
    ]);
  });

  it('reports YAML syntax errors, duplicates and non-objects', () => {
    expect(problemsOf(() => compileManifestStream('a: [', demoPod))[0]).toMatch(
      /^document 1: YAML: /,
    );
    expect(problemsOf(() => compileManifestStream('- 1\n', demoPod))[0]).toMatch(
      /expected a Kubernetes object/,
    );
    const twice = `${read('examples/llmbudget.yaml')}\n---\n${read('examples/llmbudget.yaml')}`;
    expect(problemsOf(() => compileManifestStream(twice, demoPod))).toContain(
      'document 3 (LlmBudget demo-monthly): duplicate LlmBudget llmproxy-demo/demo-monthly',
    );
  });

  it('takes the namespace the manifests name when the pod’s is not given', () => {
    const policy = compileManifestStream(clusterExamples(), { labels: { app: 'demo' } });
    expect(policy).toEqual(compileManifestStream(clusterExamples(), demoPod));
    const mixed = `${clusterExamples()}\n---\n${read('examples/standalone/llmpolicy.yaml').replace('name: dev', 'name: dev\n  namespace: other')}`;
    expect(problemsOf(() => compileManifestStream(mixed, { labels: {} }))).toEqual([
      "the manifests name several namespaces (llmproxy-demo, other): give the pod's namespace too",
    ]);
  });

  it('skips empty documents and gives manifests without a namespace the pod’s', () => {
    const text = `---\n${read('examples/standalone/llmpolicy.yaml')}\n---\n`;
    const inOther = compileManifestStream(text, { namespace: 'prod', labels: { app: 'demo' } });
    expect(inOther.providers[0]?.models.allow[0]?.from).toEqual(['prod/dev']);
  });
});
