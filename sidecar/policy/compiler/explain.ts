// Answers "why may (or may not) this pod call this model?" from a CompiledPolicy's `from` fields.
import type { LlmPolicySpec } from '../../../crds/v1alpha1/index.js';
import type { CompiledPolicy } from '../compiled.js';
import { globMatches } from '../glob.js';

export type Verdict = 'allowed' | 'denied' | 'not_granted' | 'provider_not_granted';

export interface Explanation {
  verdict: Verdict;
  /** Policies whose allow rules match the model. */
  allowedBy: string[];
  /** Policies whose deny rules match the model (any one of them wins). */
  deniedBy: string[];
  /** The cap in force when allowed: the largest of the matching allows; undefined = uncapped. */
  maxOutputTokens?: number;
  /** Ids of the rate limits that apply to a call of this model. */
  rateLimits: string[];
  /** One sentence for a person. */
  reason: string;
}

const unique = (values: string[]): string[] => [...new Set(values)].sort();

/** Mirrors the sidecar's scope check, and says which policies decided it. */
export function explain(policy: CompiledPolicy, provider: string, model: string): Explanation {
  const grant = policy.providers.find((p) => p.name === provider);
  const rateLimits = (policy.rateLimits ?? [])
    .filter((l) => l.match?.provider === undefined || l.match.provider === provider)
    .filter((l) => l.match?.model === undefined || globMatches(l.match.model, model))
    .map((l) => l.id);
  if (!grant) {
    return {
      verdict: 'provider_not_granted',
      allowedBy: [],
      deniedBy: [],
      rateLimits,
      reason: `no policy selecting this pod grants provider "${provider}"`,
    };
  }
  const allows = grant.models.allow.filter((r) => globMatches(r.pattern, model));
  const denies = grant.models.deny.filter((r) => globMatches(r.pattern, model));
  const allowedBy = unique(allows.flatMap((r) => r.from ?? []));
  const deniedBy = unique(denies.flatMap((r) => r.from ?? []));
  if (denies.length > 0) {
    return {
      verdict: 'denied',
      allowedBy,
      deniedBy,
      rateLimits,
      reason: `denied by ${deniedBy.join(', ')} (a deny wins over any allow)`,
    };
  }
  if (allows.length === 0) {
    return {
      verdict: 'not_granted',
      allowedBy,
      deniedBy,
      rateLimits,
      reason: `no allow rule for "${provider}" matches "${model}"`,
    };
  }
  const explanation: Explanation = {
    verdict: 'allowed',
    allowedBy,
    deniedBy,
    rateLimits,
    reason: `allowed by ${allowedBy.join(', ')}`,
  };
  const caps = allows.map((r) => r.maxOutputTokens);
  if (caps.every((c) => c !== undefined)) explanation.maxOutputTokens = Math.max(...caps);
  return explanation;
}

/** status.models of an LlmPolicy, preformatted for `kubectl get` ("openai: gpt-4o*, o3; anthropic: claude-*"). */
export function modelSummary(spec: LlmPolicySpec, maxLength = 1024): string {
  if (spec.suspend) return 'suspended';
  const byProvider = new Map<string, string[]>();
  for (const grant of spec.models ?? []) {
    byProvider.set(grant.provider, [
      ...(byProvider.get(grant.provider) ?? []),
      ...(grant.allow ?? []),
    ]);
  }
  const text = [...byProvider.entries()]
    .filter(([, globs]) => globs.length > 0)
    .map(([provider, globs]) => `${provider}: ${[...new Set(globs)].join(', ')}`)
    .join('; ');
  return text.length > maxLength ? `${text.slice(0, maxLength - 1)}…` : text;
}
