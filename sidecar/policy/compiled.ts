// The CompiledPolicy: the one contract between the operator's compiler and the sidecar.
// The operator (or a file in standalone mode) produces it; the sidecar enforces nothing else.
import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import stringify from 'safe-stable-stringify';
import { Credentials } from '../secrets/schema.js';
import { RateLimit } from '../limits/schema.js';
import { PriceOverride } from '../metering/schema.js';
import { DataProtection } from '../protection/schema.js';
import { TelemetrySettings } from '../telemetry/schema.js';
import { BudgetRef } from '../budget/schema.js';
import { Origin } from './origin.js';

export const COMPILED_POLICY_API_VERSION = 'llmproxy.io/v1alpha1';

export const ProviderType = Type.Union([
  Type.Literal('openai'),
  Type.Literal('anthropic'),
  Type.Literal('azure-openai'),
  Type.Literal('openai-compatible'),
]);

/** A model glob: `*` any run of characters, `?` one; matched case-insensitively. */
export const ModelRule = Type.Object(
  {
    pattern: Type.String({ minLength: 1, maxLength: 256, pattern: '^[A-Za-z0-9._:/@*?-]+$' }),
    /** Only on allow rules: the cap on output tokens this grant permits. */
    maxOutputTokens: Type.Optional(Type.Integer({ minimum: 1 })),
    from: Origin,
  },
  { additionalProperties: false },
);

export const ProviderGrant = Type.Object(
  {
    /** The route segment: `/{name}/...` forwards to this provider. */
    name: Type.String({ minLength: 1, maxLength: 63, pattern: '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$' }),
    type: ProviderType,
    baseURL: Type.String({ minLength: 1, pattern: '^https?://' }),
    credentials: Credentials,
    /** azure-openai only: the `api-version` query parameter added when the client sends none. */
    apiVersion: Type.Optional(Type.String({ minLength: 1 })),
    models: Type.Object(
      { allow: Type.Array(ModelRule), deny: Type.Array(ModelRule) },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

const policyBody = {
  apiVersion: Type.Literal(COMPILED_POLICY_API_VERSION),
  kind: Type.Literal('CompiledPolicy'),
  /** Content hash of everything else (`sha256:<hex>`); computed when absent. */
  version: Type.Optional(Type.String({ pattern: '^sha256:[0-9a-f]{64}$' })),
  providers: Type.Array(ProviderGrant),
  rateLimits: Type.Optional(Type.Array(RateLimit)),
  budgets: Type.Optional(Type.Array(BudgetRef)),
  pricing: Type.Optional(Type.Array(PriceOverride)),
  dataProtection: Type.Optional(DataProtection),
  telemetry: Type.Optional(TelemetrySettings),
};

export const CompiledPolicySchema = Type.Object(policyBody, { additionalProperties: false });

export type ProviderType = Static<typeof ProviderType>;
export type ModelRule = Static<typeof ModelRule>;
export type ProviderGrant = Static<typeof ProviderGrant>;
export type CompiledPolicyInput = Static<typeof CompiledPolicySchema>;
/** A validated policy whose version is its content hash. */
export type CompiledPolicy = CompiledPolicyInput & { version: string };

const checker = TypeCompiler.Compile(CompiledPolicySchema);

export class InvalidPolicyError extends Error {
  readonly code = 'invalid_policy';
  constructor(readonly problems: string[]) {
    super(`invalid CompiledPolicy: ${problems.join('; ')}`);
  }
}

/** The content hash: sha256 over the canonical JSON of the policy without its version. */
export function policyVersion(policy: CompiledPolicyInput): string {
  const { version: _ignored, ...content } = policy;
  return `sha256:${createHash('sha256').update(canonicalJson(content)).digest('hex')}`;
}

export function canonicalJson(value: unknown): string {
  const json = stringify(value);
  if (json === undefined) throw new TypeError('value has no JSON form');
  return json;
}

/**
 * Validates an untrusted value as a CompiledPolicy and stamps its version.
 * A stated version that differs from the content is refused: it means the file was edited
 * after it was generated, and enforcing it would misreport which policy is in force.
 */
export function parseCompiledPolicy(value: unknown): CompiledPolicy {
  if (!checker.Check(value)) {
    const problems = [...checker.Errors(value)]
      .slice(0, 10)
      .map((e) => `${e.path || '/'}: ${e.message}`);
    throw new InvalidPolicyError(problems);
  }
  const problems = semanticProblems(value);
  if (problems.length > 0) throw new InvalidPolicyError(problems);
  const version = policyVersion(value);
  if (value.version !== undefined && value.version !== version) {
    throw new InvalidPolicyError([
      `/version: ${value.version} does not match the content (${version}); remove it or regenerate the file`,
    ]);
  }
  return { ...value, version };
}

function semanticProblems(policy: CompiledPolicyInput): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  policy.providers.forEach((provider, i) => {
    if (names.has(provider.name))
      problems.push(`/providers/${i}/name: duplicate provider "${provider.name}"`);
    names.add(provider.name);
    try {
      new URL(provider.baseURL);
    } catch {
      problems.push(`/providers/${i}/baseURL: not a URL`);
    }
  });
  const limitIds = new Set<string>();
  (policy.rateLimits ?? []).forEach((limit, i) => {
    if (limitIds.has(limit.id))
      problems.push(`/rateLimits/${i}/id: duplicate limit id "${limit.id}"`);
    limitIds.add(limit.id);
  });
  return problems;
}

/** The policy a sidecar enforces before it has ever received one: nothing is allowed. */
export function denyAllPolicy(): CompiledPolicy {
  const input: CompiledPolicyInput = {
    apiVersion: COMPILED_POLICY_API_VERSION,
    kind: 'CompiledPolicy',
    providers: [],
  };
  return { ...input, version: policyVersion(input) };
}
