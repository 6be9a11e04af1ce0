import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import fc from 'fast-check';
import { checkCompiledPolicy } from './compiled-check.generated.js';
import { CompiledPolicySchema, renderPolicyCheck } from './compiled-schema.js';

const valid = {
  apiVersion: 'llmproxy.io/v1alpha1',
  kind: 'CompiledPolicy',
  providers: [
    {
      name: 'openai',
      type: 'openai',
      baseURL: 'https://api.openai.com',
      credentials: { file: { path: '/var/run/key' } },
      models: { allow: [{ pattern: 'gpt-*', maxOutputTokens: 64 }], deny: [] },
    },
  ],
  rateLimits: [{ id: 'team/rpm', requestsPerMinute: 60, scope: 'pod' }],
  dataProtection: { pii: 'redact', secrets: 'block' },
};

/** Paths into `valid` whose value a mutation replaces. */
const PATHS = [
  ['apiVersion'],
  ['kind'],
  ['providers'],
  ['providers', 0],
  ['providers', 0, 'name'],
  ['providers', 0, 'type'],
  ['providers', 0, 'baseURL'],
  ['providers', 0, 'credentials'],
  ['providers', 0, 'models', 'allow', 0, 'pattern'],
  ['providers', 0, 'models', 'allow', 0, 'maxOutputTokens'],
  ['providers', 0, 'extra'],
  ['rateLimits', 0, 'scope'],
  ['rateLimits', 0, 'requestsPerMinute'],
  ['dataProtection', 'pii'],
  ['version'],
  ['unknown'],
] as const;

function mutate(path: readonly (string | number)[], value: unknown): unknown {
  const copy = structuredClone(valid) as Record<string | number, unknown>;
  let at = copy;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
  at[path.at(-1)!] = value;
  return copy;
}

describe('the generated CompiledPolicy check', () => {
  it('is what the schema renders today (run `make crds` after changing a schema)', () => {
    const committed = readFileSync(
      new URL('./compiled-check.generated.ts', import.meta.url),
      'utf8',
    );
    expect(committed).toBe(renderPolicyCheck());
  });

  it("decides exactly as TypeBox's own compiled check, on valid and broken policies", () => {
    const reference = TypeCompiler.Compile(CompiledPolicySchema);
    expect(checkCompiledPolicy(valid)).toBe(true);
    const broken = fc
      .tuple(fc.constantFrom(...PATHS), fc.anything({ withNullPrototype: true }))
      .map(([path, value]) => mutate(path, value));
    fc.assert(
      fc.property(fc.oneof(broken, fc.anything()), (value) => {
        expect(checkCompiledPolicy(value)).toBe(reference.Check(value));
      }),
      { numRuns: 2000 },
    );
  });
});
