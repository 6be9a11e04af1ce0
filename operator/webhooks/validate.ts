// What the validating webhook checks that the CRD schema and its CEL rules cannot: the
// operator's own AWS configuration, other objects of the namespace, and risky-but-legal
// settings that deserve an admission warning. Pure: the other budgets come from an informer
// cache, passed in by the caller.
import { canonicalJson } from '../../sidecar/policy/compiled.js';
import { globMatches } from '../../sidecar/policy/glob.js';
import { isKnownTimeZone } from '../budgets/period.js';
import type { OperatorSettings } from '../config-file.js';

export interface ValidationVerdict {
  allowed: boolean;
  /** Why it was refused: shown by kubectl as the error. */
  message?: string;
  /** Shown by kubectl as `Warning: ...`; never blocks. */
  warnings: string[];
}

export interface ValidationInput {
  object: unknown;
  config: OperatorSettings;
  /** Every LlmBudget of the object's namespace, from the cache (the object itself may be among them). */
  budgetsInNamespace: readonly unknown[];
}

/**
 * Models priced at $15 or more per million input tokens (or their output equivalent) when this
 * list was written. A short explicit list rather than a price-table query: a warning must not
 * change when a price file is updated. Matched against the grant's allow globs.
 */
export const EXPENSIVE_MODELS: Record<'openai' | 'anthropic', readonly string[]> = {
  openai: ['gpt-4', 'gpt-4-32k', 'gpt-4.5-preview', 'o1', 'o1-pro', 'o3-pro', 'gpt-5-pro'],
  anthropic: [
    'claude-3-opus-20240229',
    'claude-opus-4-20250514',
    'claude-opus-4-1-20250805',
    'claude-opus-4-1',
    'claude-opus-4-0',
  ],
};

const MAX_WARNINGS = 10;

type Json = Record<string, unknown>;

export function validateLlmObject(input: ValidationInput): ValidationVerdict {
  const object = asRecord(input.object);
  if (object.kind === 'LlmPolicy') return validatePolicy(object, input.config);
  if (object.kind === 'LlmBudget') return validateBudget(object, input.budgetsInNamespace);
  return { allowed: true, warnings: [] };
}

function validatePolicy(policy: Json, config: OperatorSettings): ValidationVerdict {
  const spec = asRecord(policy.spec);
  const providers = asArray(spec.providers).map(asRecord);
  const problems: string[] = [];
  for (const provider of providers) {
    const source = asRecord(asRecord(provider.credentials).awsSecretsManager);
    if (Object.keys(source).length === 0) continue;
    problems.push(...secretRegionProblems(String(provider.name ?? ''), source, config));
  }
  const warnings = [
    ...wildcardWarnings(spec),
    ...captureWarnings(spec),
    ...unlimitedExpensiveWarnings(spec, providers),
  ].slice(0, MAX_WARNINGS);
  if (problems.length > 0) return { allowed: false, message: problems.join('; '), warnings };
  return { allowed: true, warnings };
}

/** `arn:aws:secretsmanager:eu-west-1:123456789012:secret:name` -> eu-west-1 (any partition). */
export function regionOfSecretArn(secretId: string): string | undefined {
  const match = /^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):[0-9]*:secret:/.exec(secretId);
  return match?.[1];
}

function secretRegionProblems(provider: string, source: Json, config: OperatorSettings): string[] {
  const secretId = typeof source.secretId === 'string' ? source.secretId : '';
  const declared = typeof source.region === 'string' ? source.region : undefined;
  const fromArn = regionOfSecretArn(secretId);
  const where = `providers[${provider}].credentials.awsSecretsManager`;
  if (declared && fromArn && declared !== fromArn) {
    return [`${where}: region ${declared} differs from the secret ARN's region ${fromArn}`];
  }
  const region = fromArn ?? declared ?? config.aws.region;
  if (!config.aws.allowedRegions.includes(region)) {
    return [
      `${where}: the secret is in region ${region}, which this operator is not configured for ` +
        `(allowed: ${config.aws.allowedRegions.join(', ')})`,
    ];
  }
  return [];
}

function wildcardWarnings(spec: Json): string[] {
  return asArray(spec.models)
    .map(asRecord)
    .filter((grant) => asArray(grant.allow).some((glob) => /^\*+$/.test(String(glob))))
    .map(
      (grant) =>
        `models: allow "*" grants every model of provider ${String(grant.provider)}, ` +
        'including new and expensive ones; list the models instead',
    );
}

function captureWarnings(spec: Json): string[] {
  return asRecord(spec.telemetry).captureContent === true
    ? [
        'telemetry.captureContent: true exports prompts and completions (redacted) to your ' +
          'telemetry backend; make sure that is allowed for this data',
      ]
    : [];
}

function unlimitedExpensiveWarnings(spec: Json, providers: Json[]): string[] {
  const limits = asArray(spec.rateLimits).map(asRecord);
  const warnings: string[] = [];
  for (const grant of asArray(spec.models).map(asRecord)) {
    const provider = providers.find((p) => p.name === grant.provider);
    const type = provider?.type === 'azure-openai' ? 'openai' : provider?.type;
    if (type !== 'openai' && type !== 'anthropic') continue;
    const allow = asArray(grant.allow).map(String);
    const deny = asArray(grant.deny).map(String);
    const unlimited = EXPENSIVE_MODELS[type].filter(
      (model) =>
        allow.some((glob) => globMatches(glob, model)) &&
        !deny.some((glob) => globMatches(glob, model)) &&
        !limits.some((limit) => limitCovers(limit, String(grant.provider), model)),
    );
    if (unlimited.length > 0) {
      warnings.push(
        `rateLimits: provider ${String(grant.provider)} allows expensive models with no rate ` +
          `limit (${unlimited.slice(0, 3).join(', ')}${unlimited.length > 3 ? ', ...' : ''})`,
      );
    }
  }
  return warnings;
}

function limitCovers(limit: Json, provider: string, model: string): boolean {
  const providerOk = limit.provider === undefined || limit.provider === provider;
  const modelOk = typeof limit.model !== 'string' || globMatches(limit.model, model);
  return providerOk && modelOk;
}

function validateBudget(budget: Json, others: readonly unknown[]): ValidationVerdict {
  const meta = asRecord(budget.metadata);
  const spec = asRecord(budget.spec);
  // The schema can only check the shape of a zone name; a typo would silently mean UTC.
  if (typeof spec.timeZone === 'string' && !isKnownTimeZone(spec.timeZone)) {
    return {
      allowed: false,
      message:
        `spec.timeZone ${JSON.stringify(spec.timeZone.slice(0, 64))} is not an IANA time zone ` +
        'this operator knows; use a name such as UTC, Europe/Paris or America/New_York',
      warnings: [],
    };
  }
  const target = budgetTarget(spec);
  for (const other of others.map(asRecord)) {
    const otherMeta = asRecord(other.metadata);
    if (otherMeta.name === meta.name || otherMeta.deletionTimestamp) continue;
    const otherSpec = asRecord(other.spec);
    if (otherSpec.period !== spec.period || budgetTarget(otherSpec) !== target) continue;
    return {
      allowed: false,
      message:
        `LlmBudget ${String(otherMeta.name)} in this namespace already caps the same pods ` +
        `(same ${spec.policyRef ? 'policyRef' : 'podSelector'}) per ${String(spec.period)} period; ` +
        'change its limit instead, or select different pods',
      warnings: [],
    };
  }
  return { allowed: true, warnings: [] };
}

/**
 * What a budget covers, canonically: a policyRef, or the podSelector with matchLabels folded
 * into `In` expressions and everything sorted, so equal selectors written differently compare
 * equal.
 */
export function budgetTarget(spec: Json): string {
  const ref = asRecord(spec.policyRef);
  if (typeof ref.name === 'string') return `policy:${ref.name}`;
  const selector = asRecord(spec.podSelector);
  const expressions = [
    ...Object.entries(asRecord(selector.matchLabels)).map(([key, value]) => ({
      key,
      operator: 'In',
      values: [String(value)],
    })),
    ...asArray(selector.matchExpressions)
      .map(asRecord)
      .map((e) => ({
        key: String(e.key),
        operator: String(e.operator),
        values: [...new Set(asArray(e.values).map(String))].sort(),
      })),
  ];
  const keyOf = (e: { key: string; operator: string; values: string[] }) =>
    `${e.key}\u0000${e.operator}\u0000${e.values.join('\u0000')}`;
  const unique = [...new Map(expressions.map((e) => [keyOf(e), e])).values()];
  unique.sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  return `selector:${canonicalJson(unique)}`;
}

function asRecord(value: unknown): Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Json)
    : {};
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
