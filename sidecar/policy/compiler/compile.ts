// The merge at the heart of the compiler: the policies and budgets that select one pod → its CompiledPolicy.
// Least privilege: allows add up, any deny wins, every limit and budget applies, suspend grants nothing.
import { createHash } from 'node:crypto';
import type {
  DataProtectionSpec,
  LlmBudget,
  LlmPolicy,
  PriceOverrideSpec,
  Provider,
  ProviderCredentials,
} from '../../../crds/v1alpha1/index.js';
import {
  COMPILED_POLICY_API_VERSION,
  canonicalJson,
  parseCompiledPolicy,
  type CompiledPolicy,
  type CompiledPolicyInput,
  type ModelRule,
  type ProviderGrant,
} from '../compiled.js';
import type { Credentials } from '../../secrets/schema.js';
import type { RateLimit } from '../../limits/schema.js';
import type { BudgetRef } from '../../budget/schema.js';
import type { PriceOverride } from '../../metering/schema.js';
import type { DataProtection, ProtectionAction } from '../../protection/schema.js';
import { durationSeconds } from './duration.js';

/** `namespace/name` of an object: how every compiled rule names where it came from. */
export function originOf(object: { metadata: { name: string; namespace?: string } }): string {
  return `${object.metadata.namespace ?? 'default'}/${object.metadata.name}`;
}

/** Two granting policies define the same provider name differently; the first (by name) wins. */
export interface ProviderConflict {
  provider: string;
  chosen: string;
  ignored: string[];
}

export interface CompileResult {
  policy: CompiledPolicy;
  conflicts: ProviderConflict[];
}

/**
 * Merges the policies and budgets already known to select the pod.
 * Both lists must be sorted by origin; the output does not depend on their order otherwise.
 */
export function mergeSelected(
  policies: readonly LlmPolicy[],
  budgets: readonly LlmBudget[],
  podCounts?: PodCounts,
): CompileResult {
  return assemble(mergePolicies(policies, podCounts), budgets);
}

/**
 * How many pods each policy selects, by `namespace/name`: a `scope: shared` limit is divided
 * among them (without Redis each pod enforces its share). Absent or ≤ 1: the whole limit.
 */
export type PodCounts = ReadonlyMap<string, number>;

/** One pod's fraction of a limit shared by `pods` pods, rounded down so the shares never sum above 1. */
export function shareOf(pods: number): number {
  return Math.max(1, Math.floor(SHARE_UNITS / pods)) / SHARE_UNITS;
}

/** Shares are multiples of 1e-9: exact enough, and the same bytes on every machine. */
export const SHARE_UNITS = 1_000_000_000;

/** What the policies alone contribute; pods with the same policies and other budgets share it. */
export interface PolicyPart {
  input: CompiledPolicyInput;
  conflicts: ProviderConflict[];
}

export function mergePolicies(policies: readonly LlmPolicy[], podCounts?: PodCounts): PolicyPart {
  const { providers, conflicts } = compileProviders(policies);
  const input: CompiledPolicyInput = {
    apiVersion: COMPILED_POLICY_API_VERSION,
    kind: 'CompiledPolicy',
    providers,
  };
  const rateLimits = compileRateLimits(policies, podCounts);
  if (rateLimits.length > 0) input.rateLimits = rateLimits;
  const dataProtection = mergeDataProtection(policies.map((p) => p.spec.dataProtection));
  if (dataProtection) input.dataProtection = dataProtection;
  const captureContent = mergeCaptureContent(policies);
  if (captureContent !== undefined) input.telemetry = { captureContent };
  return { input, conflicts };
}

/** Adds the budgets and stamps the content hash (parseCompiledPolicy also checks the contract). */
export function assemble(part: PolicyPart, budgets: readonly LlmBudget[]): CompileResult {
  const input: CompiledPolicyInput = { ...part.input };
  const budgetRefs = compileBudgets(budgets);
  if (budgetRefs.length > 0) input.budgets = budgetRefs;
  const pricing = compilePricing(budgets);
  if (pricing.length > 0) input.pricing = pricing;
  return { policy: parseCompiledPolicy(input), conflicts: part.conflicts };
}

interface RuleAccumulator {
  pattern: string;
  maxOutputTokens: number | undefined;
  from: Set<string>;
}

interface ProviderAccumulator {
  definition: Provider;
  chosen: string;
  ignored: Set<string>;
  allow: Map<string, RuleAccumulator>;
  deny: Map<string, RuleAccumulator>;
}

function compileProviders(policies: readonly LlmPolicy[]): {
  providers: ProviderGrant[];
  conflicts: ProviderConflict[];
} {
  const byName = new Map<string, ProviderAccumulator>();
  // The definition (URL, credentials) comes only from policies that grant the provider:
  // a policy that merely denies must not be able to redirect another policy's grant.
  for (const policy of policies) {
    if (policy.spec.suspend) continue;
    const origin = originOf(policy);
    for (const name of grantedProviders(policy)) {
      const definition = policy.spec.providers?.find((p) => p.name === name);
      if (!definition) continue;
      const existing = byName.get(name);
      if (!existing) {
        byName.set(name, {
          definition,
          chosen: origin,
          ignored: new Set(),
          allow: new Map(),
          deny: new Map(),
        });
      } else if (!sameDefinition(existing.definition, definition)) {
        existing.ignored.add(origin);
      }
    }
  }
  for (const policy of policies) {
    const origin = originOf(policy);
    for (const grant of policy.spec.models ?? []) {
      const provider = byName.get(grant.provider);
      if (!provider) continue; // denies for a provider nobody grants change nothing
      if (!policy.spec.suspend) {
        for (const glob of grant.allow ?? []) {
          addRule(provider.allow, glob, grant.maxOutputTokens, origin);
        }
      }
      for (const glob of grant.deny ?? []) addRule(provider.deny, glob, undefined, origin);
    }
  }
  const names = [...byName.keys()].sort();
  const providers = names.map((name) => toGrant(name, byName.get(name)!));
  const conflicts = names
    .map((name) => ({ name, acc: byName.get(name)! }))
    .filter(({ acc }) => acc.ignored.size > 0)
    .map(({ name, acc }) => ({
      provider: name,
      chosen: acc.chosen,
      ignored: [...acc.ignored].sort(),
    }));
  return { providers, conflicts };
}

const canonicalDefinitions = new WeakMap<Provider, string>();

/** Compared once per definition object, not once per pod: the same policy object recurs. */
function sameDefinition(a: Provider, b: Provider): boolean {
  return a === b || canonicalDefinition(a) === canonicalDefinition(b);
}

function canonicalDefinition(provider: Provider): string {
  let json = canonicalDefinitions.get(provider);
  if (json === undefined) {
    json = canonicalJson(provider);
    canonicalDefinitions.set(provider, json);
  }
  return json;
}

function grantedProviders(policy: LlmPolicy): Set<string> {
  return new Set(
    (policy.spec.models ?? []).filter((m) => (m.allow?.length ?? 0) > 0).map((m) => m.provider),
  );
}

function addRule(
  rules: Map<string, RuleAccumulator>,
  glob: string,
  maxOutputTokens: number | undefined,
  origin: string,
): void {
  // Globs match case-insensitively, so their lower-case form is the same rule.
  const pattern = glob.toLowerCase();
  const key = `${pattern}\u0000${maxOutputTokens ?? ''}`;
  const rule = rules.get(key) ?? { pattern, maxOutputTokens, from: new Set<string>() };
  rule.from.add(origin);
  rules.set(key, rule);
}

function toGrant(name: string, acc: ProviderAccumulator): ProviderGrant {
  const { definition } = acc;
  const grant: ProviderGrant = {
    name,
    type: definition.type,
    baseURL: definition.baseURL,
    credentials: compileCredentials(definition.credentials),
    models: { allow: sortRules(acc.allow), deny: sortRules(acc.deny) },
  };
  if (definition.apiVersion !== undefined) grant.apiVersion = definition.apiVersion;
  return grant;
}

function sortRules(rules: Map<string, RuleAccumulator>): ModelRule[] {
  return [...rules.values()]
    .sort(
      (a, b) =>
        compareStrings(a.pattern, b.pattern) ||
        (a.maxOutputTokens ?? Infinity) - (b.maxOutputTokens ?? Infinity),
    )
    .map(({ pattern, maxOutputTokens, from }) => {
      const rule: ModelRule = { pattern, from: [...from].sort() };
      if (maxOutputTokens !== undefined) rule.maxOutputTokens = maxOutputTokens;
      return rule;
    });
}

export const DEFAULT_REFRESH_SECONDS = 300;

/** The CRD's credential sources, mapped field by field (refreshInterval → refreshIntervalSeconds). */
export function compileCredentials(source: ProviderCredentials): Credentials {
  if (source.file) return { file: { path: source.file.path } };
  if (source.awsSecretsManager) {
    const aws = source.awsSecretsManager;
    return {
      awsSecretsManager: {
        secretId: aws.secretId,
        ...(aws.region !== undefined && { region: aws.region }),
        ...(aws.jsonKey !== undefined && { jsonKey: aws.jsonKey }),
        versionStage: aws.versionStage ?? 'AWSCURRENT',
        refreshIntervalSeconds: aws.refreshInterval
          ? Math.max(10, durationSeconds(aws.refreshInterval))
          : DEFAULT_REFRESH_SECONDS,
        fetchFrom: aws.fetchFrom ?? 'operator',
      },
    };
  }
  return { none: {} };
}

/**
 * Every rate limit of every selecting policy applies, suspended or not: limits only restrict.
 * A shared limit of a policy selecting n > 1 pods carries this pod's share, 1/n.
 */
function compileRateLimits(policies: readonly LlmPolicy[], podCounts?: PodCounts): RateLimit[] {
  const limits = policies.flatMap((policy) => {
    const origin = originOf(policy);
    const pods = podCounts?.get(origin) ?? 0;
    return (policy.spec.rateLimits ?? []).map((spec): RateLimit => {
      const limit: RateLimit = {
        id: limitId(origin, spec.id),
        scope: spec.scope ?? 'pod',
        from: [origin],
      };
      if (spec.provider !== undefined || spec.model !== undefined) {
        limit.match = {
          ...(spec.provider !== undefined && { provider: spec.provider }),
          ...(spec.model !== undefined && { model: spec.model.toLowerCase() }),
        };
      }
      if (spec.requestsPerMinute !== undefined) limit.requestsPerMinute = spec.requestsPerMinute;
      if (spec.tokensPerMinute !== undefined) limit.tokensPerMinute = spec.tokensPerMinute;
      if (spec.maxConcurrent !== undefined) limit.maxConcurrent = spec.maxConcurrent;
      if (limit.scope === 'shared' && pods > 1) limit.share = shareOf(pods);
      return limit;
    });
  });
  return limits.sort((a, b) => compareStrings(a.id, b.id));
}

const MAX_LIMIT_ID = 253;

/** `namespace/policy/id`, unique per origin; hashed in the rare case it outgrows the contract. */
export function limitId(origin: string, id: string): string {
  const full = `${origin}/${id}`;
  if (full.length <= MAX_LIMIT_ID) return full;
  const digest = createHash('sha256').update(full).digest('hex').slice(0, 32);
  return `${full.slice(0, MAX_LIMIT_ID - 34)}~${digest}`;
}

function compileBudgets(budgets: readonly LlmBudget[]): BudgetRef[] {
  return budgets
    .map((budget): BudgetRef => {
      const ref: BudgetRef = { id: originOf(budget), action: budget.spec.action ?? 'block' };
      const policyRef = budget.spec.policyRef;
      if (policyRef) ref.from = [`${budget.metadata.namespace ?? 'default'}/${policyRef.name}`];
      return ref;
    })
    .sort((a, b) => compareStrings(a.id, b.id));
}

/** Price overrides of every applying budget; where two disagree, the higher price counts (spend is never underestimated). */
function compilePricing(budgets: readonly LlmBudget[]): PriceOverride[] {
  const byKey = new Map<string, PriceOverride>();
  for (const override of budgets.flatMap((b) => b.spec.priceOverrides ?? [])) {
    const entry = toPriceOverride(override);
    const key = `${entry.provider ?? ''}\u0000${entry.model}`;
    const existing = byKey.get(key);
    byKey.set(key, existing ? higherPrices(existing, entry) : entry);
  }
  return [...byKey.values()].sort(
    (a, b) =>
      compareStrings(a.provider ?? '', b.provider ?? '') || compareStrings(a.model, b.model),
  );
}

function toPriceOverride(spec: PriceOverrideSpec): PriceOverride {
  const entry: PriceOverride = {
    model: spec.model.toLowerCase(),
    inputPerMillionTokens: spec.inputPerMillionTokens,
    outputPerMillionTokens: spec.outputPerMillionTokens,
  };
  if (spec.provider !== undefined) entry.provider = spec.provider;
  if (spec.cachedInputPerMillionTokens !== undefined) {
    entry.cachedInputPerMillionTokens = spec.cachedInputPerMillionTokens;
  }
  return entry;
}

function higherPrices(a: PriceOverride, b: PriceOverride): PriceOverride {
  const merged: PriceOverride = {
    ...a,
    inputPerMillionTokens: maxDecimal(a.inputPerMillionTokens, b.inputPerMillionTokens),
    outputPerMillionTokens: maxDecimal(a.outputPerMillionTokens, b.outputPerMillionTokens),
  };
  const cached = [a.cachedInputPerMillionTokens, b.cachedInputPerMillionTokens].filter(
    (x): x is string => x !== undefined,
  );
  if (cached.length > 0) merged.cachedInputPerMillionTokens = cached.reduce(maxDecimal);
  return merged;
}

/** Compares decimal strings exactly (no floats near money). */
export function maxDecimal(a: string, b: string): string {
  return toMicros(a) >= toMicros(b) ? a : b;
}

function toMicros(decimal: string): bigint {
  const [whole = '0', fraction = ''] = decimal.split('.');
  return BigInt(whole) * 1_000_000n + BigInt(fraction.padEnd(6, '0').slice(0, 6) || '0');
}

const STRICTNESS: Record<ProtectionAction, number> = { off: 0, redact: 1, block: 2 };

function stricter(a: ProtectionAction | undefined, b: ProtectionAction | undefined) {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return STRICTNESS[a] >= STRICTNESS[b] ? a : b;
}

/** The strictest of every selecting policy's settings (suspended ones too: protection only restricts). */
export function mergeDataProtection(
  specs: readonly (DataProtectionSpec | undefined)[],
): DataProtection | undefined {
  const present = specs.filter((s): s is DataProtectionSpec => s !== undefined);
  if (present.length === 0) return undefined;
  const merged: DataProtection = {};
  const entities: Record<string, ProtectionAction> = {};
  for (const spec of present) {
    const pii = stricter(merged.pii, spec.pii);
    if (pii) merged.pii = pii;
    const secrets = stricter(merged.secrets, spec.secrets);
    if (secrets) merged.secrets = secrets;
    for (const [entity, action] of Object.entries(spec.entities ?? {})) {
      entities[entity] = stricter(entities[entity], action) ?? action;
    }
    if (spec.scanResponses) merged.scanResponses = true;
    if (spec.maxRequestBytes !== undefined) {
      merged.maxRequestBytes = Math.min(merged.maxRequestBytes ?? Infinity, spec.maxRequestBytes);
    }
  }
  if (Object.keys(entities).length > 0) {
    merged.entities = Object.fromEntries(
      Object.entries(entities).sort(([a], [b]) => compareStrings(a, b)),
    );
  }
  return merged;
}

/** Content capture needs an opt-in from an active policy, and any policy saying false wins. */
function mergeCaptureContent(policies: readonly LlmPolicy[]): boolean | undefined {
  const values = policies
    .filter((p) => p.spec.telemetry?.captureContent === false || !p.spec.suspend)
    .map((p) => p.spec.telemetry?.captureContent)
    .filter((v): v is boolean => v !== undefined);
  if (values.length === 0) return undefined;
  return values.every((v) => v);
}

/** Code-unit order, the same on every machine and locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
