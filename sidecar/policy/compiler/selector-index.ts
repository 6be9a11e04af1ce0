// Finds the policies and budgets that select a pod without scanning them all, and compiles each
// distinct selection once: pods of one Deployment share labels, so they share a CompiledPolicy.
import type { LabelSelector, LlmBudget, LlmPolicy } from '../../../crds/v1alpha1/index.js';
import type { CompiledPolicy } from '../compiled.js';
import { canonicalJson } from '../compiled.js';
import {
  assemble,
  compareStrings,
  mergePolicies,
  originOf,
  type CompileResult,
  type PodCounts,
  type PolicyPart,
} from './compile.js';
import { podKeys, selectorAnchors, selectorMatches, type Labels } from './selector.js';

/** What the compiler needs to know about a pod. */
export interface PodIdentity {
  namespace: string;
  labels: Labels;
  serviceAccount: string;
}

export interface CompilerIndex {
  /**
   * The pod's CompiledPolicy (same selection and counts → the same object). With `podCounts`
   * (see countSelected), a policy's `scope: shared` limits carry this pod's share of them.
   */
  compileFor(pod: PodIdentity, podCounts?: PodCounts): CompiledPolicy;
  /** Also reports providers defined differently by two granting policies. */
  compileDetailed(pod: PodIdentity, podCounts?: PodCounts): CompileResult;
  /** `namespace/name` of the policies that select the pod, sorted (for status.selectedPods). */
  policiesFor(pod: PodIdentity): string[];
  /** `namespace/name` of the budgets that apply to the pod, sorted. */
  budgetsFor(pod: PodIdentity): string[];
  /** How many of these pods each policy selects: the `podCounts` that divide shared limits. */
  countSelected(pods: Iterable<PodIdentity>): Map<string, number>;
  /** Whether the policy has a shared limit, i.e. whether its pod count changes what pods get. */
  dividesLimits(origin: string): boolean;
}

interface Selecting<T> {
  object: T;
  origin: string;
  selector: LabelSelector;
}

/** Selectors of one namespace, reachable from the labels a pod carries. */
class SelectorTable<T> {
  private readonly anchored = new Map<string, number[]>();
  private readonly unanchored: number[] = [];

  constructor(readonly entries: readonly Selecting<T>[]) {
    entries.forEach((entry, i) => {
      const anchors = selectorAnchors(entry.selector);
      if (!anchors) {
        this.unanchored.push(i);
        return;
      }
      for (const key of new Set(anchors)) {
        const list = this.anchored.get(key) ?? [];
        list.push(i);
        this.anchored.set(key, list);
      }
    });
  }

  /** Indices (ascending, so in origin order) of the entries whose selector matches. */
  matching(labels: Labels, accept: (entry: Selecting<T>) => boolean): number[] {
    const candidates = new Set<number>(this.unanchored);
    for (const key of podKeys(labels)) {
      for (const i of this.anchored.get(key) ?? []) candidates.add(i);
    }
    return [...candidates]
      .filter((i) => {
        const entry = this.entries[i]!;
        return selectorMatches(entry.selector, labels) && accept(entry);
      })
      .sort((a, b) => a - b);
  }
}

interface NamespaceIndex {
  policies: SelectorTable<LlmPolicy>;
  budgets: SelectorTable<LlmBudget>;
  /** Budgets with a policyRef, by the referenced policy's origin. */
  budgetsByPolicy: Map<string, number[]>;
  refBudgets: readonly Selecting<LlmBudget>[];
  /** Label keys some selector looks at: the only labels that can change a pod's selection. */
  relevantKeys: Set<string>;
  /** Whether some policy restricts service accounts (else the account cannot matter). */
  accountsMatter: boolean;
}

interface Selection {
  selected: Selecting<LlmPolicy>[];
  budgetsSelected: Selecting<LlmBudget>[];
  /** Positions, not names, identify a selection: they stay unique even if two inputs share a name. */
  key: string;
  /** The same, for the policies alone. */
  policyKey: string;
  /** Origins of the selected policies with a shared limit: their pod counts matter. */
  dividing: string[];
}

/** Sorted by origin; identical origins (which the API server never produces) by content. */
function byOrigin<T extends { metadata: { name: string; namespace?: string } }>(
  objects: readonly T[],
) {
  return objects
    .map((object) => ({ object, origin: originOf(object) }))
    .sort(
      (a, b) =>
        compareStrings(a.origin, b.origin) ||
        compareStrings(canonicalJson(a.object), canonicalJson(b.object)),
    );
}

function namespaceOf(object: { metadata: { namespace?: string } }): string {
  return object.metadata.namespace ?? 'default';
}

function groupByNamespace<T extends { metadata: { namespace?: string } }>(objects: readonly T[]) {
  const groups = new Map<string, T[]>();
  for (const object of objects) {
    const list = groups.get(namespaceOf(object)) ?? [];
    list.push(object);
    groups.set(namespaceOf(object), list);
  }
  return groups;
}

const EMPTY_SELECTOR: LabelSelector = {};

function buildNamespace(
  policies: readonly LlmPolicy[],
  budgets: readonly LlmBudget[],
): NamespaceIndex {
  const sortedPolicies = byOrigin(policies).map(({ object, origin }) => ({
    object,
    origin,
    selector: object.spec.podSelector ?? EMPTY_SELECTOR,
  }));
  const sortedBudgets = byOrigin(budgets);
  const selectorBudgets = sortedBudgets
    .filter(({ object }) => object.spec.podSelector !== undefined)
    .map(({ object, origin }) => ({ object, origin, selector: object.spec.podSelector! }));
  const refBudgets = sortedBudgets
    .filter(({ object }) => object.spec.podSelector === undefined && object.spec.policyRef)
    .map(({ object, origin }) => ({ object, origin, selector: EMPTY_SELECTOR }));
  const budgetsByPolicy = new Map<string, number[]>();
  refBudgets.forEach(({ object }, i) => {
    const target = `${namespaceOf(object)}/${object.spec.policyRef!.name}`;
    budgetsByPolicy.set(target, [...(budgetsByPolicy.get(target) ?? []), i]);
  });
  const relevantKeys = new Set(
    [...sortedPolicies, ...selectorBudgets].flatMap(({ selector }) => [
      ...Object.keys(selector.matchLabels ?? {}),
      ...(selector.matchExpressions ?? []).map((e) => e.key),
    ]),
  );
  return {
    policies: new SelectorTable(sortedPolicies),
    budgets: new SelectorTable(selectorBudgets),
    budgetsByPolicy,
    refBudgets,
    relevantKeys,
    accountsMatter: sortedPolicies.some(
      (p) => (p.object.spec.serviceAccountNames?.length ?? 0) > 0,
    ),
  };
}

/**
 * What identifies a pod for selection: its namespace, the labels some selector looks at and,
 * when it matters, its service account. Pods of one workload differ only in labels no selector
 * reads (pod-template-hash, pod names), so they share one selection and one compilation.
 */
function signatureOf(pod: PodIdentity, index: NamespaceIndex): string {
  const parts: string[] = [];
  for (const key in pod.labels) {
    if (Object.hasOwn(pod.labels, key) && index.relevantKeys.has(key)) {
      parts.push(`${key}\u0001${pod.labels[key]}`);
    }
  }
  parts.sort();
  if (index.accountsMatter) parts.push(`\u0002${pod.serviceAccount}`);
  return `${pod.namespace}\u0000${parts.join('\u0000')}`;
}

function selectFor(pod: PodIdentity, index: NamespaceIndex): Selection {
  const policyIdx = index.policies.matching(pod.labels, (e) =>
    servesAccount(e.object, pod.serviceAccount),
  );
  const selected = policyIdx.map((i) => index.policies.entries[i]!);
  const budgetIdx = index.budgets.matching(pod.labels, () => true);
  const refIdx = selected.flatMap((p) => index.budgetsByPolicy.get(p.origin) ?? []);
  const budgetsSelected = [
    ...budgetIdx.map((i) => index.budgets.entries[i]!),
    ...refIdx.map((i) => index.refBudgets[i]!),
  ].sort((a, b) => compareStrings(a.origin, b.origin));
  const policyKey = `${pod.namespace}\u0000${policyIdx.join(',')}`;
  const key = `${policyKey}\u0000${budgetIdx.join(',')}\u0000${refIdx.sort((a, b) => a - b).join(',')}`;
  const dividing = selected.filter((s) => hasSharedLimit(s.object)).map((s) => s.origin);
  return { selected, budgetsSelected, key, policyKey, dividing };
}

function hasSharedLimit(policy: LlmPolicy): boolean {
  return (policy.spec.rateLimits ?? []).some((limit) => limit.scope === 'shared');
}

/**
 * The part of the cache key the pod counts contribute: only those of dividing policies, ≤ 1 as 1,
 * and '' when nothing is divided (the same compilation as without counts).
 */
function countsKey(dividing: readonly string[], podCounts: PodCounts | undefined): string {
  if (dividing.length === 0 || !podCounts) return '';
  const counts = dividing.map((origin) => Math.max(1, podCounts.get(origin) ?? 0));
  return counts.some((n) => n > 1) ? counts.join(',') : '';
}

/** Compilations kept per index; pod counts change with every rollout, so the cache is bounded. */
const MAX_CACHED = 20_000;

function servesAccount(policy: LlmPolicy, serviceAccount: string): boolean {
  const names = policy.spec.serviceAccountNames;
  return names === undefined || names.length === 0 || names.includes(serviceAccount);
}

/**
 * Indexes a snapshot of policies and budgets (any namespaces) for fast per-pod compilation.
 * The index is immutable: rebuild it when the snapshot changes (it is cheap).
 */
export function createCompilerIndex(
  policies: readonly LlmPolicy[],
  budgets: readonly LlmBudget[],
): CompilerIndex {
  const policyGroups = groupByNamespace(policies);
  const budgetGroups = groupByNamespace(budgets);
  const namespaces = new Map<string, NamespaceIndex>();
  for (const ns of new Set([...policyGroups.keys(), ...budgetGroups.keys()])) {
    namespaces.set(ns, buildNamespace(policyGroups.get(ns) ?? [], budgetGroups.get(ns) ?? []));
  }
  const empty = buildNamespace([], []);
  const selections = new Map<string, Selection>();
  const cache = new Map<string, CompileResult>();
  const policyParts = new Map<string, PolicyPart>();
  const dividingOrigins = new Set(policies.filter(hasSharedLimit).map(originOf));

  function select(pod: PodIdentity): Selection {
    const index = namespaces.get(pod.namespace) ?? empty;
    const signature = signatureOf(pod, index);
    let selection = selections.get(signature);
    if (!selection) {
      selection = selectFor(pod, index);
      selections.set(signature, selection);
    }
    return selection;
  }

  function compileDetailed(pod: PodIdentity, podCounts?: PodCounts): CompileResult {
    const { selected, budgetsSelected, key, policyKey, dividing } = select(pod);
    const counts = countsKey(dividing, podCounts);
    let result = cache.get(`${key}\u0000${counts}`);
    if (!result) {
      if (cache.size >= MAX_CACHED) {
        cache.clear();
        policyParts.clear();
      }
      let part = policyParts.get(`${policyKey}\u0000${counts}`);
      if (!part) {
        part = mergePolicies(
          selected.map((s) => s.object),
          counts ? podCounts : undefined,
        );
        policyParts.set(`${policyKey}\u0000${counts}`, part);
      }
      result = assemble(
        part,
        budgetsSelected.map((b) => b.object),
      );
      cache.set(`${key}\u0000${counts}`, result);
    }
    return result;
  }

  function countSelected(pods: Iterable<PodIdentity>): Map<string, number> {
    const counts = new Map<string, number>();
    for (const pod of pods) {
      for (const { origin } of select(pod).selected)
        counts.set(origin, (counts.get(origin) ?? 0) + 1);
    }
    return counts;
  }

  return {
    compileFor: (pod, podCounts) => compileDetailed(pod, podCounts).policy,
    compileDetailed,
    policiesFor: (pod) => select(pod).selected.map((s) => s.origin),
    budgetsFor: (pod) => select(pod).budgetsSelected.map((b) => b.origin),
    countSelected,
    dividesLimits: (origin) => dividingOrigins.has(origin),
  };
}
