// Kubernetes label-selector semantics, and the index keys that let one pod find its selectors fast.
import type { LabelSelector } from '../../../crds/v1alpha1/index.js';

export type Labels = Readonly<Record<string, string>>;

/** matchLabels and every matchExpression must hold; an empty selector matches every pod. */
export function selectorMatches(selector: LabelSelector, labels: Labels): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labelOf(labels, key) !== value) return false;
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const value = labelOf(labels, key);
    const ok =
      operator === 'In'
        ? value !== undefined && values.includes(value)
        : operator === 'NotIn'
          ? value === undefined || !values.includes(value)
          : operator === 'Exists'
            ? value !== undefined
            : value === undefined;
    if (!ok) return false;
  }
  return true;
}

function labelOf(labels: Labels, key: string): string | undefined {
  return Object.hasOwn(labels, key) ? labels[key] : undefined;
}

/** Index key of a label `key=value`, and of the mere presence of `key`. */
export const pairKey = (key: string, value: string): string => `${key}\u0000${value}`;
export const presenceKey = (key: string): string => `${key}\u0001`;

/** Every index key a pod with these labels answers to. */
export function podKeys(labels: Labels): string[] {
  return Object.entries(labels).flatMap(([k, v]) => [pairKey(k, v), presenceKey(k)]);
}

/**
 * Index keys of which a matching pod must carry at least one, or undefined when the selector
 * has no such requirement (empty, or only NotIn/DoesNotExist) and must be checked for every pod.
 * The narrowest requirement is chosen so that few pods see each selector.
 */
export function selectorAnchors(selector: LabelSelector): string[] | undefined {
  const labels = Object.entries(selector.matchLabels ?? {}).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  const first = labels[0];
  if (first) return [pairKey(first[0], first[1])];
  const expressions = selector.matchExpressions ?? [];
  const ins = expressions
    .filter((e) => e.operator === 'In')
    .sort((a, b) => (a.values?.length ?? 0) - (b.values?.length ?? 0));
  const narrowest = ins[0];
  if (narrowest) return (narrowest.values ?? []).map((v) => pairKey(narrowest.key, v));
  const exists = expressions.find((e) => e.operator === 'Exists');
  if (exists) return [presenceKey(exists.key)];
  return undefined;
}
