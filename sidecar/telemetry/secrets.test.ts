import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import {
  createSecretsView,
  knownSecrets,
  maskSecrets,
  registerSecretSource,
  SECRET_MASK,
} from './secrets.js';

describe('known secrets', () => {
  it('collects registered sources and the extra one, ignoring short values and failing sources', () => {
    const a = randomBytes(8).toString('hex');
    const b = randomBytes(8).toString('hex');
    const offA = registerSecretSource(() => [a, 'short']);
    const offBroken = registerSecretSource(() => {
      throw new Error('store closed');
    });
    try {
      expect(knownSecrets(() => [b]).sort()).toEqual([a, b].sort());
    } finally {
      offA();
      offBroken();
    }
    expect(knownSecrets()).not.toContain(a);
  });

  it('a view keeps its array while the values are unchanged and sees every change at once', () => {
    const first = randomBytes(8).toString('hex');
    const rotated = randomBytes(8).toString('hex');
    let held = [first, first];
    const view = createSecretsView(() => held);
    const before = view();
    expect(before).toEqual([first]);
    expect(view()).toBe(before);
    held = [first, rotated];
    expect([...view()].sort()).toEqual([first, rotated].sort());
    held = [rotated, rotated]; // same count, one value replaced
    expect(view()).toEqual([rotated]);
    const after = view();
    expect(view()).toBe(after);
    held = [];
    expect(view()).toEqual([]);
  });

  it('masks a secret that contains another one whole', () => {
    const inner = randomBytes(6).toString('hex');
    const outer = `${inner}${randomBytes(6).toString('hex')}`;
    const secrets = knownSecrets(() => [inner, outer]);
    expect(maskSecrets(`x ${outer} y ${inner}`, secrets)).toBe(`x ${SECRET_MASK} y ${SECRET_MASK}`);
  });

  it('leaves no occurrence behind for any text', () => {
    fc.assert(
      fc.property(fc.array(fc.string()), fc.string({ minLength: 8 }), (parts, secret) => {
        // A secret made of mask characters could be re-formed by the mask itself; keys never are.
        fc.pre(![...secret].some((c) => SECRET_MASK.includes(c)));
        const masked = maskSecrets(parts.join(secret), [secret]);
        expect(masked.includes(secret)).toBe(false);
      }),
    );
  });
});
