import { describe, expect, it } from '@jest/globals';
import type {
  LlmBudget,
  LlmBudgetSpec,
  LlmPolicy,
  LlmPolicySpec,
} from '../../../crds/v1alpha1/index.js';
import { canonicalJson, denyAllPolicy } from '../compiled.js';
import { compile, createCompilerIndex, explain, modelSummary, type PodIdentity } from './index.js';

const NS = 'team-a';
const pod: PodIdentity = {
  namespace: NS,
  labels: { app: 'demo', tier: 'web' },
  serviceAccount: 'demo',
};

const openai = {
  name: 'openai',
  type: 'openai' as const,
  baseURL: 'https://api.openai.com/v1',
  credentials: { file: { path: '/keys/openai' } },
};

function policy(name: string, spec: Partial<LlmPolicySpec>, namespace = NS): LlmPolicy {
  return {
    apiVersion: 'llmproxy.io/v1alpha1',
    kind: 'LlmPolicy',
    metadata: { name, namespace },
    spec: { podSelector: { matchLabels: { app: 'demo' } }, providers: [openai], ...spec },
  };
}

function budget(name: string, spec: Partial<LlmBudgetSpec>): LlmBudget {
  return {
    apiVersion: 'llmproxy.io/v1alpha1',
    kind: 'LlmBudget',
    metadata: { name, namespace: NS },
    spec: { limit: '10.00', period: 'daily', ...spec },
  };
}

const allowing = (name: string, allow: string[], extra: Partial<LlmPolicySpec> = {}) =>
  policy(name, { models: [{ provider: 'openai', allow }], ...extra });

const run = (policies: LlmPolicy[], budgets: LlmBudget[] = [], p = pod) =>
  compile({ pod: p, policies, budgets });

describe('compile', () => {
  it('gives a pod that no policy selects the deny-all policy', () => {
    const other = { ...pod, labels: { app: 'other' } };
    expect(run([allowing('a', ['*'])], [], other)).toEqual(denyAllPolicy());
    expect(run([])).toEqual(denyAllPolicy());
  });

  it('ignores policies of other namespaces even when their selector matches', () => {
    expect(
      run([policy('a', { models: [{ provider: 'openai', allow: ['*'] }] }, 'team-b')]),
    ).toEqual(denyAllPolicy());
  });

  it('adds up allows from several policies and remembers where each came from', () => {
    const compiled = run([allowing('a', ['gpt-4o']), allowing('b', ['gpt-4o', 'o3*'])]);
    expect(compiled.providers[0]?.models.allow).toEqual([
      { pattern: 'gpt-4o', from: ['team-a/a', 'team-a/b'] },
      { pattern: 'o3*', from: ['team-a/b'] },
    ]);
    expect(explain(compiled, 'openai', 'o3-mini')).toMatchObject({
      verdict: 'allowed',
      allowedBy: ['team-a/b'],
    });
  });

  it('lets a deny from any policy win over every allow', () => {
    const deny = policy('zz-deny', { models: [{ provider: 'openai', deny: ['GPT-4O*'] }] });
    const compiled = run([allowing('a', ['*']), deny]);
    expect(explain(compiled, 'openai', 'gpt-4o-mini')).toMatchObject({
      verdict: 'denied',
      allowedBy: ['team-a/a'],
      deniedBy: ['team-a/zz-deny'],
    });
    expect(explain(compiled, 'openai', 'o3')).toMatchObject({ verdict: 'allowed' });
  });

  it('does not let a deny-only policy redefine where a granted provider points', () => {
    const evil = policy('0-first', {
      providers: [{ ...openai, baseURL: 'https://attacker.example' }],
      models: [{ provider: 'openai', deny: ['nothing'] }],
    });
    const compiled = run([evil, allowing('a', ['*'])]);
    expect(compiled.providers[0]?.baseURL).toBe('https://api.openai.com/v1');
  });

  it('takes a conflicting provider definition from the first granting policy and reports it', () => {
    const other = policy('b', {
      providers: [{ ...openai, credentials: { file: { path: '/other' } } }],
      models: [{ provider: 'openai', allow: ['o3'] }],
    });
    const index = createCompilerIndex([other, allowing('a', ['*'])], []);
    const { policy: compiled, conflicts } = index.compileDetailed(pod);
    expect(compiled.providers[0]?.credentials).toEqual({ file: { path: '/keys/openai' } });
    expect(conflicts).toEqual([{ provider: 'openai', chosen: 'team-a/a', ignored: ['team-a/b'] }]);
  });

  it('caps output tokens at the largest matching allow, and an uncapped allow lifts the cap', () => {
    const capped = policy('a', {
      models: [{ provider: 'openai', allow: ['gpt-*'], maxOutputTokens: 100 }],
    });
    const wider = policy('b', {
      models: [{ provider: 'openai', allow: ['gpt-4o'], maxOutputTokens: 500 }],
    });
    const uncapped = policy('c', { models: [{ provider: 'openai', allow: ['gpt-4o'] }] });
    expect(explain(run([capped, wider]), 'openai', 'gpt-4o').maxOutputTokens).toBe(500);
    expect(explain(run([capped, wider]), 'openai', 'gpt-5').maxOutputTokens).toBe(100);
    expect(explain(run([capped, uncapped]), 'openai', 'gpt-4o').maxOutputTokens).toBeUndefined();
  });

  it('grants nothing from a suspended policy but keeps its denies and limits', () => {
    const suspended = policy('s', {
      suspend: true,
      models: [{ provider: 'openai', allow: ['*'], deny: ['o1*'] }],
      rateLimits: [{ id: 'rpm', requestsPerMinute: 5 }],
    });
    expect(run([suspended]).providers).toEqual([]);
    const compiled = run([suspended, allowing('a', ['*'])]);
    expect(compiled.providers[0]?.models.allow).toEqual([{ pattern: '*', from: ['team-a/a'] }]);
    expect(explain(compiled, 'openai', 'o1-pro').verdict).toBe('denied');
    expect(compiled.rateLimits?.map((l) => l.id)).toEqual(['team-a/s/rpm']);
  });

  it('selects with matchExpressions In, NotIn, Exists and DoesNotExist', () => {
    const select = (
      matchExpressions: NonNullable<LlmPolicySpec['podSelector']['matchExpressions']>,
    ) => run([allowing('a', ['*'], { podSelector: { matchExpressions } })]).providers.length === 1;
    expect(select([{ key: 'tier', operator: 'In', values: ['web', 'api'] }])).toBe(true);
    expect(select([{ key: 'tier', operator: 'In', values: ['api'] }])).toBe(false);
    expect(select([{ key: 'tier', operator: 'NotIn', values: ['api'] }])).toBe(true);
    expect(select([{ key: 'absent', operator: 'NotIn', values: ['x'] }])).toBe(true);
    expect(select([{ key: 'tier', operator: 'Exists' }])).toBe(true);
    expect(select([{ key: 'tier', operator: 'DoesNotExist' }])).toBe(false);
    expect(select([{ key: 'absent', operator: 'DoesNotExist' }])).toBe(true);
  });

  it('selects every pod of the namespace with an empty selector', () => {
    const all = allowing('a', ['*'], { podSelector: {} });
    expect(run([all], [], { ...pod, labels: {} }).providers).toHaveLength(1);
  });

  it('restricts a policy to its serviceAccountNames', () => {
    const restricted = allowing('a', ['*'], { serviceAccountNames: ['batch'] });
    expect(run([restricted]).providers).toEqual([]);
    expect(run([restricted], [], { ...pod, serviceAccount: 'batch' }).providers).toHaveLength(1);
  });

  it('applies every matching rate limit, with ids unique per policy', () => {
    const a = allowing('a', ['*'], { rateLimits: [{ id: 'rpm', requestsPerMinute: 10 }] });
    const b = policy('b', {
      rateLimits: [
        { id: 'rpm', provider: 'openai', model: 'GPT-*', tokensPerMinute: 99, scope: 'shared' },
      ],
    });
    expect(run([b, a]).rateLimits).toEqual([
      { id: 'team-a/a/rpm', scope: 'pod', requestsPerMinute: 10, from: ['team-a/a'] },
      {
        id: 'team-a/b/rpm',
        scope: 'shared',
        match: { provider: 'openai', model: 'gpt-*' },
        tokensPerMinute: 99,
        from: ['team-a/b'],
      },
    ]);
  });

  it('applies every matching budget, by selector or through the policy it references', () => {
    const budgets = [
      budget('by-selector', { podSelector: { matchLabels: { tier: 'web' } } }),
      budget('by-policy', { policyRef: { name: 'a' }, action: 'alert' }),
      budget('other-policy', { policyRef: { name: 'missing' } }),
      budget('other-pods', { podSelector: { matchLabels: { tier: 'db' } } }),
    ];
    expect(run([allowing('a', ['*'])], budgets).budgets).toEqual([
      { id: 'team-a/by-policy', action: 'alert', from: ['team-a/a'] },
      { id: 'team-a/by-selector', action: 'block' },
    ]);
  });

  it('prices with the higher override where two budgets disagree', () => {
    const price = (input: string) => ({
      provider: 'openai',
      model: 'gpt-4o',
      inputPerMillionTokens: input,
      outputPerMillionTokens: '10',
    });
    const budgets = [
      budget('x', { podSelector: {}, priceOverrides: [price('2.5')] }),
      budget('y', { podSelector: {}, priceOverrides: [price('2.50001')] }),
    ];
    expect(run([], budgets).pricing).toEqual([price('2.50001')]);
  });

  it('maps Secrets Manager credentials field by field, with the defaults made explicit', () => {
    const aws = policy('a', {
      providers: [
        {
          ...openai,
          credentials: { awsSecretsManager: { secretId: 'team/openai', refreshInterval: '1h30m' } },
        },
      ],
      models: [{ provider: 'openai', allow: ['*'] }],
    });
    expect(run([aws]).providers[0]?.credentials).toEqual({
      awsSecretsManager: {
        secretId: 'team/openai',
        versionStage: 'AWSCURRENT',
        refreshIntervalSeconds: 5400,
        fetchFrom: 'operator',
      },
    });
  });

  it('merges data protection to the strictest setting of any selecting policy', () => {
    const compiled = run([
      policy('a', {
        dataProtection: { pii: 'redact', entities: { email: 'off' }, maxRequestBytes: 4096 },
      }),
      policy('b', {
        suspend: true,
        dataProtection: { pii: 'block', entities: { email: 'redact' } },
      }),
      policy('c', {
        dataProtection: { secrets: 'redact', maxRequestBytes: 2048, scanResponses: true },
      }),
    ]);
    expect(compiled.dataProtection).toEqual({
      pii: 'block',
      secrets: 'redact',
      entities: { email: 'redact' },
      maxRequestBytes: 2048,
      scanResponses: true,
    });
  });

  it('captures content only when opted in and no policy says false', () => {
    const opt = (name: string, captureContent: boolean, suspend = false) =>
      policy(name, { telemetry: { captureContent }, suspend });
    expect(run([opt('a', true)]).telemetry).toEqual({ captureContent: true });
    expect(run([opt('a', true), opt('b', false)]).telemetry).toEqual({ captureContent: false });
    expect(run([opt('a', true, true)]).telemetry).toBeUndefined();
    expect(run([opt('a', true), opt('b', false, true)]).telemetry).toEqual({
      captureContent: false,
    });
  });

  it('folds glob case, since globs match case-insensitively', () => {
    const compiled = run([allowing('a', ['GPT-4o']), allowing('b', ['gpt-4O'])]);
    expect(compiled.providers[0]?.models.allow).toEqual([
      { pattern: 'gpt-4o', from: ['team-a/a', 'team-a/b'] },
    ]);
  });

  it('produces the same bytes and version whatever the input order', () => {
    const policies = [
      allowing('a', ['x']),
      allowing('b', ['y']),
      policy('c', { models: [{ provider: 'openai', deny: ['z'] }] }),
    ];
    const one = run(policies);
    const two = run([...policies].reverse());
    expect(canonicalJson(two)).toBe(canonicalJson(one));
    expect(one.version).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

describe('createCompilerIndex', () => {
  it('reports which policies and budgets select a pod', () => {
    const index = createCompilerIndex(
      [
        allowing('b', ['*']),
        allowing('a', ['*']),
        allowing('c', ['*'], { podSelector: { matchLabels: { app: 'x' } } }),
      ],
      [budget('m', { policyRef: { name: 'a' } })],
    );
    expect(index.policiesFor(pod)).toEqual(['team-a/a', 'team-a/b']);
    expect(index.budgetsFor(pod)).toEqual(['team-a/m']);
  });

  it('tells pods apart by service account only where a policy restricts accounts', () => {
    const index = createCompilerIndex(
      [allowing('a', ['*'], { serviceAccountNames: ['batch'] })],
      [],
    );
    expect(index.compileFor(pod).providers).toEqual([]);
    expect(index.compileFor({ ...pod, serviceAccount: 'batch' }).providers).toHaveLength(1);
  });

  it("gives each pod its share of a shared limit, divided by the pods the limit's policy selects", () => {
    const index = createCompilerIndex(
      [
        allowing('a', ['*'], {
          rateLimits: [
            { id: 'shared', requestsPerMinute: 90, scope: 'shared' },
            { id: 'own', requestsPerMinute: 10 },
          ],
        }),
        allowing('b', ['*'], {
          rateLimits: [{ id: 'rpm', requestsPerMinute: 5, scope: 'shared' }],
        }),
      ],
      [],
    );
    const other = { ...pod, labels: { ...pod.labels, pod: 'x' } };
    const counts = index.countSelected([pod, other, { ...pod, labels: { app: 'nobody' } }]);
    expect(counts).toEqual(
      new Map([
        ['team-a/a', 2],
        ['team-a/b', 2],
      ]),
    );
    const limits = (c: ReadonlyMap<string, number>) =>
      (index.compileFor(pod, c).rateLimits ?? []).map((l) => [l.id, l.share]);
    expect(limits(counts)).toEqual([
      ['team-a/a/own', undefined],
      ['team-a/a/shared', 0.5],
      ['team-a/b/rpm', 0.5],
    ]);
    expect(limits(new Map([['team-a/a', 3]]))).toEqual([
      ['team-a/a/own', undefined],
      ['team-a/a/shared', 0.333333333],
      ['team-a/b/rpm', undefined],
    ]);
    // One pod (or none counted, as a standalone sidecar compiles): the whole limit.
    expect(limits(new Map([['team-a/a', 1]]))).toEqual(limits(new Map()));
    expect(index.compileFor(pod, new Map([['team-a/a', 1]]))).toBe(index.compileFor(pod));
    expect(index.compileFor(other, counts)).toBe(index.compileFor(pod, counts));
  });

  it('returns the same compiled object for pods with the same selection', () => {
    const index = createCompilerIndex([allowing('a', ['*'])], []);
    expect(index.compileFor(pod)).toBe(
      index.compileFor({ ...pod, labels: { ...pod.labels, pod: 'x' } }),
    );
  });
});

describe('modelSummary', () => {
  it('lists what a policy grants, per provider', () => {
    const spec = {
      podSelector: {},
      models: [
        { provider: 'openai', allow: ['gpt-4o*', 'o3'] },
        { provider: 'anthropic', allow: ['claude-*'] },
        { provider: 'openai', deny: ['x'] },
      ],
    };
    expect(modelSummary(spec)).toBe('openai: gpt-4o*, o3; anthropic: claude-*');
    expect(modelSummary({ ...spec, suspend: true })).toBe('suspended');
  });
});

describe('explain', () => {
  const compiled = () =>
    run([
      allowing('a', ['gpt-*'], {
        rateLimits: [
          { id: 'all', requestsPerMinute: 10 },
          { id: 'mini', model: '*-mini', requestsPerMinute: 1 },
          { id: 'other', provider: 'anthropic', requestsPerMinute: 1 },
        ],
      }),
    ]);

  it('says when no policy grants the provider at all', () => {
    expect(explain(compiled(), 'anthropic', 'claude-3')).toMatchObject({
      verdict: 'provider_not_granted',
      rateLimits: ['team-a/a/all', 'team-a/a/other'],
    });
  });

  it('says when the provider is granted but not the model', () => {
    expect(explain(compiled(), 'openai', 'o3')).toMatchObject({
      verdict: 'not_granted',
      allowedBy: [],
    });
  });

  it('lists the rate limits that apply to the call', () => {
    expect(explain(compiled(), 'openai', 'gpt-4o-mini').rateLimits).toEqual([
      'team-a/a/all',
      'team-a/a/mini',
    ]);
  });
});
