import { describe, expect, it } from '@jest/globals';
import { createHmac, randomBytes } from 'node:crypto';
import { createIdentifierHasher } from './hmac.js';

describe('createIdentifierHasher', () => {
  const key = randomBytes(32);
  const hash = createIdentifierHasher(key);

  it('is HMAC-SHA256 with the deployment key, as 32 hex characters', () => {
    const expected = createHmac('sha256', key).update('alice').digest('hex').slice(0, 32);
    expect(hash('alice')).toBe(expected);
    expect(hash('alice')).toMatch(/^[0-9a-f]{32}$/);
  });

  it('is stable per key and differs across keys and inputs', () => {
    expect(hash('alice')).toBe(hash('alice'));
    expect(hash('alice')).not.toBe(hash('bob'));
    expect(createIdentifierHasher(randomBytes(32))('alice')).not.toBe(hash('alice'));
  });

  it('refuses a short key', () => {
    expect(() => createIdentifierHasher(Buffer.alloc(8))).toThrow(RangeError);
  });

  it('is not affected by later changes to the caller key buffer', () => {
    const mutable = randomBytes(32);
    const h = createIdentifierHasher(mutable);
    const before = h('x');
    mutable.fill(0);
    expect(h('x')).toBe(before);
  });
});
