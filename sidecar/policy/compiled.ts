// The CompiledPolicy: the one contract between the operator's compiler and the sidecar.
// The operator (or a file in standalone mode) produces it; the sidecar enforces nothing else.
// Its schema is compiled-schema.ts; at run time it is checked by the code generated from it.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import stringify from 'safe-stable-stringify';
import type { CompiledPolicyInput } from './compiled-schema.js';
import { checkCompiledPolicy, compiledPolicySchemaJson } from './compiled-check.generated.js';

export type {
  CompiledPolicyInput,
  ModelRule,
  ProviderGrant,
  ProviderType,
} from './compiled-schema.js';

export const COMPILED_POLICY_API_VERSION = 'llmproxy.io/v1alpha1';
/** How compiled-check.generated.ts spells TypeBox's registered symbol keys (`@@TypeBox.Kind`). */
export const SCHEMA_SYMBOL_PREFIX = '@@';

/** A validated policy whose version is its content hash. */
export type CompiledPolicy = CompiledPolicyInput & { version: string };

const check = checkCompiledPolicy as (value: unknown) => value is CompiledPolicyInput;

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
  if (!check(value)) throw new InvalidPolicyError(schemaProblems(value));
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

/**
 * What is wrong with a value the generated check refused, key by key. Only an invalid policy
 * pays for TypeBox: its CommonJS build is loaded here, synchronously, on first use.
 */
function schemaProblems(value: unknown): string[] {
  const require = createRequire(import.meta.url);
  const { TypeCompiler } =
    require('@sinclair/typebox/compiler') as typeof import('@sinclair/typebox/compiler');
  schema ??= withStringKeysAsSymbols(compiledPolicySchemaJson) as never;
  const problems = [...TypeCompiler.Compile(schema!).Errors(value)]
    .slice(0, 10)
    .map((e) => `${e.path || '/'}: ${e.message}`);
  return problems.length > 0 ? problems : ['does not match the CompiledPolicy schema'];
}

let schema: import('@sinclair/typebox').TSchema | undefined;

function withStringKeysAsSymbols(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withStringKeysAsSymbols);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string | symbol, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const restored = withStringKeysAsSymbols(v);
    if (key.startsWith(SCHEMA_SYMBOL_PREFIX))
      out[Symbol.for(key.slice(SCHEMA_SYMBOL_PREFIX.length))] = restored;
    else out[key] = restored;
  }
  return out;
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
