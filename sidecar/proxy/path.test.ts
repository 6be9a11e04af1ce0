import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { checkRequestTarget } from './path.js';

describe('checkRequestTarget', () => {
  it('splits provider, endpoint path and query', () => {
    expect(checkRequestTarget('/openai/v1/chat/completions?x=1')).toEqual({
      ok: true,
      provider: 'openai',
      rest: '/v1/chat/completions',
      query: '?x=1',
    });
  });

  it.each([
    '/openai/../x',
    '/openai/%2e%2e/x',
    '/openai/v1%2Fchat',
    '/openai//v1',
    '/openai/./v1',
    '/openai/v1\\x',
    'http://h/openai/v1',
    '/openai',
    '/',
  ])('refuses %s', (target) => {
    expect(checkRequestTarget(target).ok).toBe(false);
  });

  it('never passes a dot segment or a percent sign through (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('a', 'v1', '.', '..', '%2e', '%2f', '', 'x.y'), {
          minLength: 1,
          maxLength: 6,
        }),
        (segments) => {
          const result = checkRequestTarget(`/${segments.join('/')}`);
          if (!result.ok) return true;
          const parts = `${result.provider}${result.rest}`.split('/');
          return parts.every((p) => p !== '.' && p !== '..' && p !== '' && !p.includes('%'));
        },
      ),
    );
  });

  it('answers a repeated target as the first time, past the remembered set too', () => {
    const targets = Array.from({ length: 600 }, (_, i) => `/p${i}/v1/chat/completions?n=${i}`);
    for (const round of [1, 2])
      for (const [i, target] of targets.entries())
        expect([round, checkRequestTarget(target)]).toEqual([
          round,
          { ok: true, provider: `p${i}`, rest: '/v1/chat/completions', query: `?n=${i}` },
        ]);
    expect(checkRequestTarget('/p0/../x').ok).toBe(false);
    expect(checkRequestTarget('/p0/../x').ok).toBe(false);
  });
});
