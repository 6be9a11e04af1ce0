import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { extractKey } from './extract.js';

const canary = (): string => ['sk', 'unit', randomBytes(8).toString('hex')].join('-');

describe('extractKey', () => {
  it('returns the whole secret string without a trailing newline', () => {
    const key = canary();
    expect(extractKey(`${key}\n`)).toBe(key);
    expect(extractKey(`${key}\r\n`)).toBe(key);
  });

  it('picks a string field out of a JSON secret', () => {
    const key = canary();
    expect(extractKey(JSON.stringify({ apiKey: key, other: 1 }), 'apiKey')).toBe(key);
  });

  it.each([
    ['a binary secret', undefined, undefined, 'not_string'],
    ['an empty secret', '\n', undefined, 'empty'],
    ['a non-JSON string with jsonKey', 'plain', 'apiKey', 'not_json'],
    ['a JSON array with jsonKey', '["x"]', 'apiKey', 'not_json'],
    ['a missing key', '{"other":"x"}', 'apiKey', 'json_key_missing'],
    ['a non-string field', '{"apiKey":42}', 'apiKey', 'not_string'],
    ['an inherited property name', '{}', 'toString', 'json_key_missing'],
  ])('refuses %s with a reason', (_case, secret, jsonKey, reason) => {
    expect(() => extractKey(secret, jsonKey)).toThrow(expect.objectContaining({ reason }));
  });

  it('never quotes the secret in its error', () => {
    const key = canary();
    try {
      extractKey(JSON.stringify({ wrong: key }), 'apiKey');
      throw new Error('expected a failure');
    } catch (error) {
      expect(String((error as Error).message)).not.toContain(key);
      expect(JSON.stringify(error)).not.toContain(key);
    }
  });
});
