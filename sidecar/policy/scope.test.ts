import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { ModelScope } from './scope.js';
import { globMatches } from './glob.js';

const scope = (
  allow: Array<{ pattern: string; maxOutputTokens?: number; from?: string[] }>,
  deny: Array<{ pattern: string; from?: string[] }> = [],
) => new ModelScope({ allow, deny });

describe('ModelScope', () => {
  it('refuses a model no rule grants', () => {
    expect(scope([{ pattern: 'gpt-4o-mini' }]).decide('gpt-4o')).toMatchObject({
      allowed: false,
      reason: 'not_granted',
    });
  });

  it('refuses a model outside the grant even when the case differs', () => {
    expect(scope([{ pattern: 'gpt-4o-mini' }]).decide('GPT-4o')).toMatchObject({ allowed: false });
  });

  it('lets any deny win over any allow, whatever the case', () => {
    const s = scope([{ pattern: 'gpt-*' }], [{ pattern: 'gpt-4o*', from: ['ns/strict'] }]);
    expect(s.decide('GPT-4O-2024')).toEqual({
      allowed: false,
      reason: 'denied',
      from: ['ns/strict'],
    });
    expect(s.decide('gpt-3.5-turbo')).toMatchObject({ allowed: true });
  });

  it('adds grants up: the largest cap of the matching allows wins, and no cap beats any cap', () => {
    expect(
      scope([
        { pattern: 'gpt-*', maxOutputTokens: 100 },
        { pattern: 'gpt-4o', maxOutputTokens: 400 },
      ]).decide('gpt-4o'),
    ).toMatchObject({ maxOutputTokens: 400 });
    expect(
      scope([{ pattern: 'gpt-*', maxOutputTokens: 100 }, { pattern: 'gpt-4o' }]).decide('gpt-4o'),
    ).toMatchObject({ maxOutputTokens: undefined });
  });

  it('remembers which policies a decision came from', () => {
    const s = scope([
      { pattern: 'gpt-*', from: ['ns/b'] },
      { pattern: 'gpt-4o', from: ['ns/a', 'ns/b'] },
    ]);
    expect(s.decide('gpt-4o')).toMatchObject({ allowed: true, from: ['ns/a', 'ns/b'] });
  });

  it('never allows a model that a deny rule matches (property)', () => {
    const name = fc.stringMatching(/^[a-z0-9.-]{1,20}$/);
    fc.assert(
      fc.property(name, fc.array(name, { maxLength: 4 }), (model, allows) => {
        const s = scope(
          [...allows.map((pattern) => ({ pattern })), { pattern: '*' }],
          [{ pattern: model }],
        );
        return s.decide(model).allowed === false && s.decide(model.toUpperCase()).allowed === false;
      }),
    );
  });
});

describe('globMatches', () => {
  it('treats * as any run, ? as one character, and everything else literally', () => {
    expect(globMatches('claude-*-haiku*', 'claude-3-5-haiku-latest')).toBe(true);
    expect(globMatches('gpt-4?', 'gpt-4o')).toBe(true);
    expect(globMatches('gpt-4?', 'gpt-4oo')).toBe(false);
    expect(globMatches('gpt.4', 'gpt-4')).toBe(false);
    expect(globMatches('a+b', 'aab')).toBe(false);
  });

  it('matches every literal name against itself and nothing longer (property)', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9._:/@-]{1,40}$/),
        (name) => globMatches(name, name) && !globMatches(name, `${name}x`),
      ),
    );
  });
});
