import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  denyAllPolicy,
  InvalidPolicyError,
  parseCompiledPolicy,
  policyVersion,
} from './compiled.js';

const policy = () => ({
  apiVersion: 'llmproxy.io/v1alpha1' as const,
  kind: 'CompiledPolicy' as const,
  providers: [
    {
      name: 'openai',
      type: 'openai' as const,
      baseURL: 'https://api.openai.com',
      credentials: { none: {} },
      models: { allow: [{ pattern: 'gpt-*' }], deny: [] },
    },
  ],
});

describe('CompiledPolicy', () => {
  it('versions a policy by its content, whatever the key order', () => {
    const a = policy();
    const b = JSON.parse(
      JSON.stringify({ providers: a.providers, kind: a.kind, apiVersion: a.apiVersion }),
    );
    expect(parseCompiledPolicy(b).version).toBe(parseCompiledPolicy(a).version);
    expect(policyVersion(a)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('changes the version when anything changes (property)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9*-]{1,12}$/), (pattern) => {
        const changed = policy();
        changed.providers[0]!.models.allow = [{ pattern: `${pattern}x` }];
        return policyVersion(changed) !== policyVersion(policy());
      }),
    );
  });

  it('refuses a stated version that does not match the content', () => {
    const stated = { ...policy(), version: `sha256:${'0'.repeat(64)}` };
    expect(() => parseCompiledPolicy(stated)).toThrow(/does not match the content/);
  });

  it('names every bad field by path', () => {
    const bad = { ...policy(), providers: [{ ...policy().providers[0], type: 'cohere' }] };
    const error = (() => {
      try {
        parseCompiledPolicy(bad);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InvalidPolicyError);
    expect((error as InvalidPolicyError).problems.join('\n')).toContain('/providers/0/type');
  });

  it('refuses duplicate provider names', () => {
    const twice = { ...policy(), providers: [policy().providers[0]!, policy().providers[0]!] };
    expect(() => parseCompiledPolicy(twice)).toThrow(/duplicate provider/);
  });

  it('denies everything before the first policy', () => {
    expect(denyAllPolicy().providers).toEqual([]);
  });
});
