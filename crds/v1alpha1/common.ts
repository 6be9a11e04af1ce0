// Building blocks shared by the llmproxy.io/v1alpha1 kinds: selectors, conditions, money, CEL rules.
import { Type, type Static, type TSchema, type TLiteral, type TUnion } from '@sinclair/typebox';

export const GROUP = 'llmproxy.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** A CEL rule the API server evaluates (`x-kubernetes-validations`); `message` is what a person reads. */
export interface CelRule {
  rule: string;
  message: string;
  /** Where the API server reports the failure, relative to the node that carries the rule. */
  fieldPath?: string;
}

/** Schema options carrying CEL rules; the validator in `crds/validate.ts` runs the same rules. */
export function rules(...list: CelRule[]): { 'x-kubernetes-validations': CelRule[] } {
  return { 'x-kubernetes-validations': list };
}

/** A closed set of strings. TypeBox checks it as a union; the CRD generator emits it as an `enum`. */
export function StringEnum<const T extends readonly string[]>(
  values: T,
  options: { default?: T[number]; description?: string } = {},
): TUnion<TLiteral<T[number]>[]> {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    options,
  ) as unknown as TUnion<TLiteral<T[number]>[]>;
}

/** A string → string map (labels). TypeBox emits patternProperties; the generator turns it into additionalProperties. */
export function StringMap(options: { maxProperties?: number; description?: string } = {}) {
  return Type.Record(Type.String(), Type.String({ maxLength: 63 }), options);
}

export const DNS_LABEL = '^[a-z0-9]([a-z0-9-]*[a-z0-9])?$';
export const DNS_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

/** Model globs as the sidecar matches them: `*` any run, `?` one character, case-insensitive. */
export const GLOB_CHARS = '^[A-Za-z0-9._:/@*?-]+$';
const globMessage =
  'model globs may use only letters, digits, . _ : / @ - and the wildcards * and ? (e.g. "gpt-4o*")';

export const ModelGlob = Type.String({ minLength: 1, maxLength: 256 });

/** A list of model globs, each checked by CEL so the error names the rule in words. */
export function GlobList(description: string) {
  return Type.Array(ModelGlob, {
    maxItems: 64,
    description,
    ...rules({ rule: `self.all(g, g.matches('${GLOB_CHARS}'))`, message: globMessage }),
  });
}

/** A single model glob with the same rule as GlobList. */
export function GlobField(description: string) {
  return Type.String({
    minLength: 1,
    maxLength: 256,
    description,
    ...rules({ rule: `self.matches('${GLOB_CHARS}')`, message: globMessage }),
  });
}

/** US dollars as a decimal string ("250.00"): money is never a float. */
export const DecimalUsd = Type.String({
  pattern: '^\\d{1,9}(\\.\\d{1,6})?$',
  maxLength: 16,
  description: 'US dollars as a decimal string, e.g. "250.00".',
});

export const LabelSelectorRequirement = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 317 }),
    operator: StringEnum(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const),
    values: Type.Optional(
      Type.Array(Type.String({ maxLength: 63 }), {
        maxItems: 64,
        'x-kubernetes-list-type': 'atomic',
      }),
    ),
  },
  {
    additionalProperties: false,
    ...rules({
      rule: "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
      message: 'operators In and NotIn need values; Exists and DoesNotExist take none',
    }),
  },
);

/** A Kubernetes label selector. An empty selector selects every pod of the namespace. */
export const LabelSelector = Type.Object(
  {
    matchLabels: Type.Optional(StringMap({ maxProperties: 32 })),
    matchExpressions: Type.Optional(
      Type.Array(LabelSelectorRequirement, { maxItems: 32, 'x-kubernetes-list-type': 'atomic' }),
    ),
  },
  {
    additionalProperties: false,
    'x-kubernetes-map-type': 'atomic',
    description: 'Selects pods of this namespace by label; {} selects all of them.',
  },
);

/** metav1.Condition, as every Kubernetes status has it. */
export const Condition = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: 316 }),
    status: StringEnum(['True', 'False', 'Unknown'] as const),
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0, format: 'int64' })),
    lastTransitionTime: Type.String({ format: 'date-time' }),
    reason: Type.String({
      minLength: 1,
      maxLength: 1024,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
    }),
    message: Type.String({ maxLength: 32768 }),
  },
  { additionalProperties: false },
);

export const Conditions = Type.Array(Condition, {
  maxItems: 16,
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
});

/** The metadata standalone mode reads; the API server keeps the rest of ObjectMeta itself. */
export const ObjectMeta = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN }),
    namespace: Type.Optional(Type.String({ minLength: 1, maxLength: 63, pattern: DNS_LABEL })),
    generation: Type.Optional(Type.Integer()),
    labels: Type.Optional(Type.Record(Type.String(), Type.String())),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  { additionalProperties: true },
);

export type LabelSelector = Static<typeof LabelSelector>;
export type LabelSelectorRequirement = Static<typeof LabelSelectorRequirement>;
export type Condition = Static<typeof Condition>;
export type ObjectMeta = Static<typeof ObjectMeta>;

/** A custom resource: the TypeBox schema of the whole object and what the CRD needs to know. */
export interface KindDefinition {
  kind: string;
  /** One sentence for `kubectl explain`. */
  description: string;
  plural: string;
  singular: string;
  shortNames: string[];
  schema: TSchema;
  spec: TSchema;
  status: TSchema;
  printerColumns: PrinterColumn[];
}

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}
