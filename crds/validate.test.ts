import { describe, expect, it } from '@jest/globals';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { invalidCases, validBudget, validPolicy } from './invalid-cases.js';
import { displayPath, validateObject } from './validate.js';

function exampleObjects(): [string, unknown][] {
  const files = [
    ...readdirSync('examples')
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => join('examples', f)),
    ...readdirSync('examples/standalone').map((f) => join('examples/standalone', f)),
  ];
  return files.flatMap((file) =>
    parseAllDocuments(readFileSync(file, 'utf8'))
      .map((d) => d.toJS() as { apiVersion?: string; metadata?: { name?: string } })
      .filter((o) => o?.apiVersion === 'llmproxy.io/v1alpha1')
      .map((o) => [`${file} ${o.metadata?.name}`, o] as [string, unknown]),
  );
}

describe('validateObject', () => {
  it('finds the examples to check', () => {
    expect(exampleObjects().length).toBeGreaterThanOrEqual(5);
  });

  it.each(exampleObjects())('accepts the example %s', (_name, object) => {
    expect(validateObject(object)).toMatchObject({ ok: true });
  });

  it('accepts the minimal valid objects the invalid cases start from', () => {
    expect(validateObject(validPolicy())).toMatchObject({ ok: true });
    expect(validateObject(validBudget())).toMatchObject({ ok: true });
  });

  it.each(invalidCases().map((c) => [c.name, c] as const))('refuses %s', (_name, c) => {
    const result = validateObject(c.object);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.problems.some((p) => p.includes(c.message))).toBe(true);
    }
  });

  it('names the field of an unknown property', () => {
    const object = validPolicy() as { spec: Record<string, unknown> };
    object.spec.allowModels = ['gpt-4o'];
    expect(validateObject(object)).toEqual({
      ok: false,
      problems: ['spec.allowModels: unknown field'],
    });
  });

  it('refuses other kinds and API versions', () => {
    expect(validateObject({ apiVersion: 'v1', kind: 'ConfigMap' })).toMatchObject({ ok: false });
    expect(validateObject({ ...validPolicy(), apiVersion: 'llmproxy.io/v1' })).toMatchObject({
      ok: false,
    });
  });

  it('applies the CRD defaults', () => {
    const result = validateObject(validBudget());
    expect(result).toMatchObject({
      ok: true,
      value: { spec: { action: 'block', timeZone: 'UTC' } },
    });
  });

  it('does not change the object it is given', () => {
    const object = validBudget();
    const before = JSON.stringify(object);
    validateObject(object);
    expect(JSON.stringify(object)).toBe(before);
  });
});

describe('displayPath', () => {
  it('reads like kubectl field paths', () => {
    expect(displayPath('/spec/providers/0/credentials')).toBe('spec.providers[0].credentials');
    expect(displayPath('')).toBe('');
  });
});
