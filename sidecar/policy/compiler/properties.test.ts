// The least-privilege invariants of DESIGN.md, over random policy sets.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { LabelSelector, LlmBudget, LlmPolicy } from '../../../crds/v1alpha1/index.js';
import { canonicalJson, type CompiledPolicy } from '../compiled.js';
import { compile, createCompilerIndex, explain, type PodIdentity } from './index.js';
import { SHARE_UNITS, mergeSelected, originOf } from './compile.js';
import { selectorMatches } from './selector.js';

const NS = 'ns';
const PROVIDERS = ['openai', 'anthropic'] as const;
const MODELS = ['gpt-4o', 'gpt-4o-mini', 'o1', 'claude-3', 'claude-sonnet-4', 'Mixed-Case'];
const GLOBS = [
  '*',
  'gpt-*',
  'GPT-4O',
  'gpt-4o*',
  'claude-?',
  'claude-*',
  'o1',
  'mixed-case',
  '*-mini',
];
const LABEL_KEYS = ['app', 'tier'];
const LABEL_VALUES = ['a', 'b'];

const labels = fc.dictionary(fc.constantFrom(...LABEL_KEYS), fc.constantFrom(...LABEL_VALUES));

const selector: fc.Arbitrary<LabelSelector> = fc.oneof(
  fc.constant({}),
  labels.map((matchLabels) => ({ matchLabels })),
  fc.record({
    matchExpressions: fc.array(
      fc.oneof(
        fc.record({
          key: fc.constantFrom(...LABEL_KEYS),
          operator: fc.constantFrom('In' as const, 'NotIn' as const),
          values: fc.uniqueArray(fc.constantFrom(...LABEL_VALUES), { minLength: 1 }),
        }),
        fc.record({
          key: fc.constantFrom(...LABEL_KEYS),
          operator: fc.constantFrom('Exists' as const, 'DoesNotExist' as const),
        }),
      ),
      { maxLength: 2 },
    ),
  }),
);

const providerDef = (name: string, variant: number) => ({
  name,
  type: name === 'openai' ? ('openai' as const) : ('anthropic' as const),
  baseURL: `https://${name}.example/v${variant}`,
  credentials: { file: { path: `/keys/${name}-${variant}` } },
});

const grant = fc.record(
  {
    provider: fc.constantFrom(...PROVIDERS),
    allow: fc.array(fc.constantFrom(...GLOBS), { maxLength: 3 }),
    deny: fc.array(fc.constantFrom(...GLOBS), { maxLength: 1 }),
    maxOutputTokens: fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined }),
  },
  { requiredKeys: ['provider'] },
);

const spec = fc.record({
  podSelector: selector,
  variant: fc.integer({ min: 0, max: 1 }),
  models: fc.array(grant, { maxLength: 3 }),
  rateLimits: fc.uniqueArray(
    fc.record({
      id: fc.constantFrom('rpm', 'tpm'),
      requestsPerMinute: fc.integer({ min: 1, max: 100 }),
      scope: fc.constantFrom('pod' as const, 'shared' as const),
    }),
    { maxLength: 2, selector: (r) => r.id },
  ),
  suspend: fc.boolean(),
  serviceAccountNames: fc.option(fc.constant<string[]>(['batch']), { nil: undefined }),
});

function toPolicy(name: string, s: SpecValue): LlmPolicy {
  const { variant, ...rest } = s;
  return {
    apiVersion: 'llmproxy.io/v1alpha1',
    kind: 'LlmPolicy',
    metadata: { name, namespace: NS },
    spec: {
      ...rest,
      models: rest.models.filter((m) => (m.allow?.length ?? 0) + (m.deny?.length ?? 0) > 0),
      providers: PROVIDERS.map((p) => providerDef(p, variant)),
    },
  };
}
type SpecValue = typeof spec extends fc.Arbitrary<infer T> ? T : never;

const policies = fc
  .uniqueArray(fc.tuple(fc.stringMatching(/^[a-z]{1,6}$/), spec), {
    maxLength: 6,
    selector: ([n]) => n,
  })
  .map((list) => list.map(([name, s]) => toPolicy(name, s)));

const budgets = fc
  .uniqueArray(fc.tuple(fc.stringMatching(/^[a-z]{1,4}$/), selector), {
    maxLength: 3,
    selector: ([n]) => n,
  })
  .map((list) =>
    list.map(([name, podSelector]): LlmBudget => ({
      apiVersion: 'llmproxy.io/v1alpha1',
      kind: 'LlmBudget',
      metadata: { name, namespace: NS },
      spec: { podSelector, limit: '1.00', period: 'daily' },
    })),
  );

/** Pods also carry labels no selector reads, as pod-template-hash. */
const podLabels = fc
  .tuple(labels, fc.option(fc.constantFrom('h1', 'h2'), { nil: undefined }))
  .map(([l, hash]) => (hash ? { ...l, 'pod-template-hash': hash } : l));

const pod: fc.Arbitrary<PodIdentity> = fc.record({
  namespace: fc.constant(NS),
  labels: podLabels,
  serviceAccount: fc.constantFrom('default', 'batch'),
});

/** What a pod may do: for every provider and model, allowed or not and with which cap. */
function access(policy: CompiledPolicy): Map<string, number | 'uncapped'> {
  const out = new Map<string, number | 'uncapped'>();
  for (const provider of PROVIDERS) {
    for (const model of MODELS) {
      const e = explain(policy, provider, model);
      if (e.verdict === 'allowed') out.set(`${provider}/${model}`, e.maxOutputTokens ?? 'uncapped');
    }
  }
  return out;
}

function within(
  narrow: Map<string, number | 'uncapped'>,
  wide: Map<string, number | 'uncapped'>,
): boolean {
  for (const [key, cap] of narrow) {
    const other = wide.get(key);
    if (other === undefined) return false;
    if (other !== 'uncapped' && (cap === 'uncapped' || cap > other)) return false;
  }
  return true;
}

function shuffled<T>(list: readonly T[], seed: number): T[] {
  const out = [...list];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('compiler invariants', () => {
  it('gives the same bytes whatever the order of its inputs', () => {
    fc.assert(
      fc.property(policies, budgets, pod, fc.nat(), (ps, bs, p, seed) => {
        const a = compile({ pod: p, policies: ps, budgets: bs });
        const b = compile({
          pod: p,
          policies: shuffled(ps, seed),
          budgets: shuffled(bs, seed + 1),
        });
        expect(canonicalJson(b)).toBe(canonicalJson(a));
      }),
    );
  });

  it('never widens access when a deny is added', () => {
    fc.assert(
      fc.property(
        policies,
        pod,
        fc.constantFrom(...PROVIDERS),
        fc.constantFrom(...GLOBS),
        (ps, p, provider, glob) => {
          const before = compile({ pod: p, policies: ps, budgets: [] });
          const deny = toPolicy('zz-deny', {
            podSelector: {},
            variant: 0,
            models: [{ provider, deny: [glob] }],
            rateLimits: [],
            suspend: false,
            serviceAccountNames: undefined,
          });
          const after = compile({ pod: p, policies: [...ps, deny], budgets: [] });
          expect(within(access(after), access(before))).toBe(true);
        },
      ),
    );
  });

  it('changes nothing when a policy that selects nothing is added', () => {
    fc.assert(
      fc.property(policies, budgets, pod, spec, (ps, bs, p, s) => {
        const before = compile({ pod: p, policies: ps, budgets: bs });
        const stranger = toPolicy('zz-stranger', {
          ...s,
          podSelector: { matchLabels: { app: 'nobody' } },
        });
        const elsewhere = {
          ...toPolicy('zz-elsewhere', s),
          metadata: { name: 'zz-elsewhere', namespace: 'other' },
        };
        const after = compile({ pod: p, policies: [...ps, stranger, elsewhere], budgets: bs });
        expect(after.version).toBe(before.version);
      }),
    );
  });

  it('grants nothing through a suspended policy', () => {
    fc.assert(
      fc.property(policies, pod, spec, (ps, p, s) => {
        const before = compile({ pod: p, policies: ps, budgets: [] });
        const suspended = toPolicy('zz-suspended', { ...s, suspend: true });
        const after = compile({ pod: p, policies: [...ps, suspended], budgets: [] });
        expect(within(access(after), access(before))).toBe(true);
        expect(compile({ pod: p, policies: [suspended], budgets: [] }).providers).toEqual([]);
      }),
    );
  });

  it('finds through its index exactly what a full scan finds', () => {
    fc.assert(
      fc.property(policies, budgets, fc.array(pod, { maxLength: 5 }), (ps, bs, pods) => {
        const index = createCompilerIndex(ps, bs);
        const counts = index.countSelected(pods);
        for (const p of pods) {
          const selected = ps
            .filter((x) => selectorMatches(x.spec.podSelector, p.labels))
            .filter(
              (x) =>
                !x.spec.serviceAccountNames ||
                x.spec.serviceAccountNames.includes(p.serviceAccount),
            )
            .sort((x, y) => (originOf(x) < originOf(y) ? -1 : 1));
          const applying = bs
            .filter((b) => selectorMatches(b.spec.podSelector ?? {}, p.labels))
            .sort((x, y) => (originOf(x) < originOf(y) ? -1 : 1));
          expect(index.compileFor(p)).toEqual(mergeSelected(selected, applying).policy);
          expect(index.compileFor(p, counts)).toEqual(
            mergeSelected(selected, applying, counts).policy,
          );
          for (const x of selected) expect(counts.get(originOf(x))).toBeGreaterThanOrEqual(1);
        }
      }),
    );
  });

  it('divides a shared limit among the pods its policy selects: shares sum to 1, never more', () => {
    fc.assert(
      fc.property(policies, fc.array(pod, { minLength: 1, maxLength: 12 }), (ps, pods) => {
        const index = createCompilerIndex(ps, []);
        const counts = index.countSelected(pods);
        // Summed in exact units of the share's granularity, so float addition cannot round up.
        const units = new Map<string, number>();
        const holders = new Map<string, number>();
        for (const p of pods) {
          for (const limit of index.compileFor(p, counts).rateLimits ?? []) {
            if (limit.scope !== 'shared') {
              expect(limit.share).toBeUndefined();
              continue;
            }
            const unit = Math.round((limit.share ?? 1) * SHARE_UNITS);
            expect(unit / SHARE_UNITS).toBe(limit.share ?? 1);
            units.set(limit.id, (units.get(limit.id) ?? 0) + unit);
            holders.set(limit.id, (holders.get(limit.id) ?? 0) + 1);
          }
        }
        for (const [id, sum] of units) {
          expect(sum).toBeLessThanOrEqual(SHARE_UNITS);
          // Rounding down loses less than one unit per pod.
          expect(sum).toBeGreaterThan(SHARE_UNITS - holders.get(id)!);
        }
      }),
    );
  });

  it('leaves shared limits whole without pod counts, as standalone sidecars compile them', () => {
    fc.assert(
      fc.property(policies, pod, (ps, p) => {
        for (const limit of compile({ pod: p, policies: ps, budgets: [] }).rateLimits ?? []) {
          expect(limit.share).toBeUndefined();
        }
      }),
    );
  });
});
