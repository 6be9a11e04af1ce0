// Validates LlmPolicy/LlmBudget objects as the API server would: the schema, then its CEL rules.
// Standalone mode has no API server, so the sidecar runs the very rules the CRD carries.
import { FormatRegistry, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { celEnv, isCelError, parse, plan, type CelInput } from '@bufbuild/cel';
import { API_VERSION, type CelRule } from './v1alpha1/common.js';
import { LlmPolicySchema, type LlmPolicy } from './v1alpha1/llm-policy.js';
import { LlmBudgetSchema, type LlmBudget } from './v1alpha1/llm-budget.js';

if (!FormatRegistry.Has('date-time')) {
  FormatRegistry.Set(
    'date-time',
    (v) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(v) && !Number.isNaN(Date.parse(v)),
  );
}

export type LlmObject = LlmPolicy | LlmBudget;
export type Validation<T> = { ok: true; value: T } | { ok: false; problems: string[] };

const SCHEMAS = { LlmPolicy: LlmPolicySchema, LlmBudget: LlmBudgetSchema } as const;
export type LlmKind = keyof typeof SCHEMAS;

const checkers = new Map<TSchema, TypeCheck<TSchema>>();
function checkerFor(schema: TSchema): TypeCheck<TSchema> {
  let checker = checkers.get(schema);
  if (!checker) {
    checker = TypeCompiler.Compile(schema);
    checkers.set(schema, checker);
  }
  return checker;
}

export function isLlmKind(kind: unknown): kind is LlmKind {
  return kind === 'LlmPolicy' || kind === 'LlmBudget';
}

/**
 * Checks an untrusted object against its kind's schema and CEL rules and applies the CRD's
 * defaults. Problems read like the API server's: `spec.providers[0].type: must be one of ...`.
 */
export function validateObject(value: unknown): Validation<LlmObject> {
  const kind = (value as { kind?: unknown } | null)?.kind;
  const apiVersion = (value as { apiVersion?: unknown } | null)?.apiVersion;
  if (apiVersion !== API_VERSION || !isLlmKind(kind)) {
    return {
      ok: false,
      problems: [`expected apiVersion ${API_VERSION} and kind LlmPolicy or LlmBudget`],
    };
  }
  const schema = SCHEMAS[kind];
  const candidate = Value.Default(schema, structuredClone(value)) as unknown;
  const checker = checkerFor(schema);
  if (!checker.Check(candidate)) return { ok: false, problems: schemaProblems(checker, candidate) };
  const problems = celProblems(schema, candidate, '');
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, value: candidate as LlmObject };
}

function schemaProblems(checker: TypeCheck<TSchema>, value: unknown): string[] {
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const error of checker.Errors(value)) {
    const path = displayPath(error.path);
    if ([...seen].some((p) => path.startsWith(p))) continue; // one problem per field is enough
    seen.add(path);
    problems.push(`${path || '(object)'}: ${describe(error)}`);
    if (problems.length >= 20) break;
  }
  return problems;
}

function describe(error: ValueError): string {
  const literals = (error.schema.anyOf as TSchema[] | undefined)?.map((s) => s.const as unknown);
  if (literals?.every((l) => typeof l === 'string')) return `must be one of ${literals.join(', ')}`;
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return 'is required';
    case ValueErrorType.ObjectAdditionalProperties:
      return 'unknown field';
    case ValueErrorType.Literal:
      return `must be ${JSON.stringify(error.schema.const)}`;
    case ValueErrorType.StringPattern:
      return `${JSON.stringify(error.value)} does not match ${error.schema.pattern as string}`;
    default:
      return error.message.charAt(0).toLowerCase() + error.message.slice(1);
  }
}

/** `/spec/providers/0/type` → `spec.providers[0].type` */
export function displayPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce(
      (acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part),
      '',
    );
}

const env = celEnv();
const planned = new Map<string, ReturnType<typeof plan>>();

function evaluate(rule: string, self: CelInput): boolean | 'error' {
  let run = planned.get(rule);
  if (!run) {
    run = plan(env, parse(rule));
    planned.set(rule, run);
  }
  const result = run({ self });
  if (isCelError(result)) return 'error';
  return result === true;
}

/** Kubernetes hands CEL integers as int; JSON numbers here are integers wherever the schema says so. */
function toCel(value: unknown): CelInput {
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (Array.isArray(value)) return value.map(toCel);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toCel(v)])) as CelInput;
  }
  return value as CelInput;
}

/** Walks schema and value together and runs each node's `x-kubernetes-validations`. */
export function celProblems(schema: TSchema, value: unknown, path: string): string[] {
  if (value === undefined) return [];
  const problems: string[] = [];
  for (const { rule, message, fieldPath } of celRulesOf(schema)) {
    const outcome = evaluate(rule, toCel(value));
    if (outcome !== true) problems.push(`${joinPath(path, fieldPath ?? '')}: ${message}`);
  }
  const properties = schema.properties as Record<string, TSchema> | undefined;
  if (properties && value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(properties)) {
      const childValue = (value as Record<string, unknown>)[key];
      problems.push(...celProblems(child, childValue, joinPath(path, `.${key}`)));
    }
  }
  const patternProperties = schema.patternProperties as Record<string, TSchema> | undefined;
  if (patternProperties && value !== null && typeof value === 'object') {
    const child = Object.values(patternProperties)[0];
    for (const [key, childValue] of Object.entries(value)) {
      if (child) problems.push(...celProblems(child, childValue, joinPath(path, `.${key}`)));
    }
  }
  if (Array.isArray(value)) problems.push(...duplicateProblems(schema, value, path));
  const items = schema.items as TSchema | undefined;
  if (items && Array.isArray(value)) {
    value.forEach((item, i) => problems.push(...celProblems(items, item, `${path}[${i}]`)));
  }
  return problems;
}

/** list-type map and set forbid duplicates, as the API server enforces. */
function duplicateProblems(schema: TSchema, list: unknown[], path: string): string[] {
  const listType = schema['x-kubernetes-list-type'] as string | undefined;
  const keys = schema['x-kubernetes-list-map-keys'] as string[] | undefined;
  if (listType !== 'map' && listType !== 'set') return [];
  const seen = new Set<string>();
  const problems: string[] = [];
  list.forEach((item, i) => {
    const identity =
      listType === 'map'
        ? JSON.stringify(
            Object.fromEntries((keys ?? []).map((k) => [k, (item as Record<string, unknown>)[k]])),
          )
        : JSON.stringify(item);
    if (seen.has(identity)) problems.push(`${path}[${i}]: Duplicate value: ${identity}`);
    seen.add(identity);
  });
  return problems;
}

export function celRulesOf(schema: TSchema): CelRule[] {
  return (schema['x-kubernetes-validations'] as CelRule[] | undefined) ?? [];
}

function joinPath(base: string, suffix: string): string {
  const joined = `${base}${suffix}`;
  return joined.startsWith('.') ? joined.slice(1) : joined;
}
