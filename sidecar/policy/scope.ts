// Which models a provider grant allows: pure, and compiled once per policy version.
import type { ModelRule, ProviderGrant } from './compiled.js';
import { globToRegExp } from './glob.js';

export type ScopeDecision =
  | { allowed: true; maxOutputTokens: number | undefined; from: string[] }
  | { allowed: false; reason: 'denied' | 'not_granted'; from: string[] };

interface CompiledRule {
  regex: RegExp;
  rule: ModelRule;
}

/** Decision cache size per provider: model names come from clients, so the cache is bounded. */
const MAX_CACHED_DECISIONS = 256;

export class ModelScope {
  private readonly allow: CompiledRule[];
  private readonly deny: CompiledRule[];
  private readonly cache = new Map<string, ScopeDecision>();

  constructor(models: ProviderGrant['models']) {
    this.allow = models.allow.map((rule) => ({ regex: globToRegExp(rule.pattern), rule }));
    this.deny = models.deny.map((rule) => ({ regex: globToRegExp(rule.pattern), rule }));
  }

  decide(model: string): ScopeDecision {
    const cached = this.cache.get(model);
    if (cached) return cached;
    const decision = decideModel(this.allow, this.deny, model);
    if (this.cache.size >= MAX_CACHED_DECISIONS) this.cache.clear();
    this.cache.set(model, decision);
    return decision;
  }
}

/** Any deny wins; otherwise some allow must match; allows add up, so the largest cap wins. */
function decideModel(allow: CompiledRule[], deny: CompiledRule[], model: string): ScopeDecision {
  const denied = deny.filter((d) => d.regex.test(model));
  if (denied.length > 0) return { allowed: false, reason: 'denied', from: origins(denied) };
  const granted = allow.filter((a) => a.regex.test(model));
  if (granted.length === 0) return { allowed: false, reason: 'not_granted', from: [] };
  const caps = granted.map((g) => g.rule.maxOutputTokens);
  const maxOutputTokens = caps.includes(undefined) ? undefined : Math.max(...(caps as number[]));
  return { allowed: true, maxOutputTokens, from: origins(granted) };
}

function origins(rules: CompiledRule[]): string[] {
  return [...new Set(rules.flatMap((r) => r.rule.from ?? []))].sort();
}
