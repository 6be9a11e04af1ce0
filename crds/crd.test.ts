import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parse as parseCel } from '@bufbuild/cel';
import { CRD_DIRECTORIES, KINDS, crdFor, renderCrds, toStructural } from './crd.js';

type Node = Record<string, unknown>;

function openApiOf(crd: Node): Node {
  const spec = crd.spec as { versions: { schema: { openAPIV3Schema: Node } }[] };
  return spec.versions[0]!.schema.openAPIV3Schema;
}

/** Every schema node with its path, depth first. */
function* nodes(node: Node, path = ''): Generator<[string, Node]> {
  yield [path, node];
  for (const [key, child] of Object.entries((node.properties as Record<string, Node>) ?? {})) {
    yield* nodes(child, `${path}.${key}`);
  }
  if (node.items) yield* nodes(node.items as Node, `${path}[]`);
  if (typeof node.additionalProperties === 'object') {
    yield* nodes(node.additionalProperties as Node, `${path}{}`);
  }
}

const allRules = (crd: Node) =>
  [...nodes(openApiOf(crd))].flatMap(([path, node]) =>
    ((node['x-kubernetes-validations'] as { rule: string; message: string }[]) ?? []).map((r) => ({
      path,
      ...r,
    })),
  );

describe('generated CRDs', () => {
  it.each(CRD_DIRECTORIES.flatMap((dir) => renderCrds().map((f) => [dir, f] as const)))(
    'the committed %s/%s matches what crds/v1alpha1 generates (run `make crds`)',
    (dir, { fileName, text }) => {
      expect(readFileSync(join(dir, fileName), 'utf8')).toBe(text);
    },
  );

  it.each(KINDS.map((k) => [k.kind, crdFor(k)] as const))(
    '%s has a structural schema: every node typed, no unions, no pattern properties',
    (_kind, crd) => {
      for (const [path, node] of nodes(openApiOf(crd))) {
        expect({ path, type: node.type }).toEqual({ path, type: expect.any(String) });
        for (const forbidden of ['anyOf', 'oneOf', 'allOf', 'patternProperties', 'const', '$id']) {
          expect({ path, forbidden, present: forbidden in node }).toEqual({
            path,
            forbidden,
            present: false,
          });
        }
        if (node.properties) expect(node.additionalProperties).toBeUndefined();
      }
    },
  );

  it.each(KINDS.map((k) => [k.kind, crdFor(k)] as const))(
    '%s list-map keys are required fields of the items',
    (_kind, crd) => {
      for (const [, node] of nodes(openApiOf(crd))) {
        const keys = node['x-kubernetes-list-map-keys'] as string[] | undefined;
        if (!keys) continue;
        expect((node.items as Node).required).toEqual(expect.arrayContaining(keys));
      }
    },
  );

  it('names, status subresource and categories are what kubectl users type', () => {
    const [policy, budget] = KINDS.map(crdFor) as [Node, Node];
    expect(policy).toMatchObject({
      metadata: { name: 'llmpolicies.llmproxy.io' },
      spec: {
        scope: 'Namespaced',
        names: { kind: 'LlmPolicy', shortNames: ['llmpol'], categories: ['llmproxy'] },
        versions: [{ name: 'v1alpha1', served: true, storage: true, subresources: { status: {} } }],
      },
    });
    expect(budget).toMatchObject({
      metadata: { name: 'llmbudgets.llmproxy.io' },
      spec: { names: { kind: 'LlmBudget', shortNames: ['llmbudget'], categories: ['llmproxy'] } },
    });
  });

  it('printer columns show readiness and spend at a glance', () => {
    const columns = (crd: Node) =>
      (
        crd.spec as { versions: { additionalPrinterColumns: { name: string }[] }[] }
      ).versions[0]!.additionalPrinterColumns.map((c) => c.name);
    const [policy, budget] = KINDS.map(crdFor) as [Node, Node];
    expect(columns(policy)).toEqual(expect.arrayContaining(['Ready', 'Pods', 'Models', 'Age']));
    expect(columns(budget)).toEqual(
      expect.arrayContaining(['Spent', 'Limit', 'Used %', 'State', 'Period End']),
    );
  });

  it('carries the cross-field CEL rules, each with a message and valid syntax', () => {
    const rules = KINDS.map(crdFor).flatMap(allRules);
    const messages = rules.map((r) => r.message);
    for (const expected of [
      'each models entry needs allow or deny globs',
      'every models[].provider must name an entry of providers',
      'credentials need exactly one of awsSecretsManager, file or none',
      'alertThresholds must be strictly ascending',
      'a budget needs exactly one of podSelector or policyRef',
    ]) {
      expect(messages).toContain(expected);
    }
    expect(messages.some((m) => m.startsWith('model globs may use only'))).toBe(true);
    for (const { rule } of rules) expect(() => parseCel(rule)).not.toThrow();
  });

  it('money fields are decimal strings, never numbers', () => {
    const budget = openApiOf(crdFor(KINDS[1]!));
    const spec = (budget.properties as Record<string, Node>).spec!;
    const limit = (spec.properties as Record<string, Node>).limit!;
    expect(limit).toMatchObject({ type: 'string', pattern: expect.stringContaining('\\d') });
  });

  it('the YAML parses back to the object it was rendered from', () => {
    for (const [i, { text }] of renderCrds().entries()) {
      expect(parseYaml(text)).toEqual(crdFor(KINDS[i]!));
    }
  });
});

describe('toStructural', () => {
  it('refuses schema shapes a CRD cannot express instead of emitting them', () => {
    expect(() => toStructural({ anyOf: [{ type: 'string' }, { type: 'integer' }] })).toThrow(
      /only unions of string literals/,
    );
    expect(() =>
      toStructural({ type: 'object', patternProperties: { '^x-': { type: 'string' } } }),
    ).toThrow(/patternProperties/);
  });
});
