// LlmBudget: a cap on what the selected pods may spend per period, in US dollars.
import { Type, type Static } from '@sinclair/typebox';
import {
  API_VERSION,
  Conditions,
  DNS_SUBDOMAIN,
  DecimalUsd,
  GlobField,
  LabelSelector,
  ObjectMeta,
  StringEnum,
  rules,
  type KindDefinition,
} from './common.js';

const MAX_THRESHOLDS = 10;

/** Strictly ascending in standard CEL (no k8s list extensions), so standalone mode can run it too. */
const ascendingRule = `[${Array.from({ length: MAX_THRESHOLDS - 1 }, (_, i) => i + 1).join(', ')}].all(i, i >= size(self) || self[i - 1] < self[i])`;

export const PriceOverrideSpec = Type.Object(
  {
    provider: Type.Optional(Type.String({ minLength: 1, maxLength: 63 })),
    model: GlobField('The model (glob) these prices apply to.'),
    inputPerMillionTokens: DecimalUsd,
    outputPerMillionTokens: DecimalUsd,
    cachedInputPerMillionTokens: Type.Optional(DecimalUsd),
  },
  { additionalProperties: false },
);

export const LlmBudgetSpec = Type.Object(
  {
    podSelector: Type.Optional(LabelSelector),
    policyRef: Type.Optional(
      Type.Object(
        {
          name: Type.String({
            minLength: 1,
            maxLength: 253,
            pattern: DNS_SUBDOMAIN,
            description: 'An LlmPolicy of this namespace: the budget covers the pods it selects.',
          }),
        },
        { additionalProperties: false },
      ),
    ),
    limit: Type.String({
      ...DecimalUsd,
      ...rules({ rule: 'double(self) > 0.0', message: 'limit must be greater than zero' }),
    }),
    period: StringEnum(['daily', 'weekly', 'monthly'] as const),
    timeZone: Type.Optional(
      Type.String({
        default: 'UTC',
        maxLength: 64,
        pattern: '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$',
        description: 'IANA time zone in which periods start, e.g. Europe/Paris.',
      }),
    ),
    alertThresholds: Type.Optional(
      Type.Array(Type.Integer({ minimum: 1, maximum: 100 }), {
        maxItems: MAX_THRESHOLDS,
        default: [50, 80, 100],
        'x-kubernetes-list-type': 'atomic',
        description: 'Percentages of the limit at which an Event and a condition are raised.',
        ...rules({ rule: ascendingRule, message: 'alertThresholds must be strictly ascending' }),
      }),
    ),
    action: Type.Optional(
      StringEnum(['block', 'alert'] as const, {
        default: 'block',
        description: 'block: refuse calls once exhausted; alert: only report.',
      }),
    ),
    priceOverrides: Type.Optional(
      Type.Array(PriceOverrideSpec, { maxItems: 64, 'x-kubernetes-list-type': 'atomic' }),
    ),
  },
  {
    additionalProperties: false,
    ...rules({
      rule: 'has(self.podSelector) != has(self.policyRef)',
      message: 'a budget needs exactly one of podSelector or policyRef',
    }),
  },
);

export const BudgetStates = ['Ok', 'Warning', 'Exhausted'] as const;

/** Pods that can hold an allowance on one budget at once; more wait for an expired one. */
export const MAX_ALLOWANCES = 2000;

/** One sidecar's lease: what it may still spend, until when, and its last applied report. */
export const BudgetAllowance = Type.Object(
  {
    pod: Type.String({ minLength: 1, maxLength: 253 }),
    uid: Type.String({ minLength: 1, maxLength: 64 }),
    amount: DecimalUsd,
    expiresAt: Type.String({ format: 'date-time' }),
    /** The reporting sidecar process, so a restarted one is not taken for a replay. */
    epoch: Type.String({ minLength: 1, maxLength: 64 }),
    /** Reports of this epoch up to this sequence number are already counted. */
    seq: Type.Integer({ minimum: 0, format: 'int64' }),
  },
  { additionalProperties: false },
);

export const LlmBudgetStatus = Type.Object(
  {
    conditions: Type.Optional(Conditions),
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0, format: 'int64' })),
    spent: Type.Optional(DecimalUsd),
    remaining: Type.Optional(DecimalUsd),
    percentUsed: Type.Optional(
      Type.String({ maxLength: 16, description: 'Preformatted for kubectl get, e.g. "42.5%".' }),
    ),
    periodStart: Type.Optional(Type.String({ format: 'date-time' })),
    periodEnd: Type.Optional(Type.String({ format: 'date-time' })),
    state: Type.Optional(StringEnum(BudgetStates)),
    allowances: Type.Optional(
      Type.Array(BudgetAllowance, {
        maxItems: MAX_ALLOWANCES,
        'x-kubernetes-list-type': 'atomic',
        description:
          'The ledger: spend leased to each sidecar and not yet reported. Written by the operator only.',
      }),
    ),
    alertedThresholds: Type.Optional(
      Type.Array(Type.Integer({ minimum: 1, maximum: 100 }), {
        maxItems: MAX_THRESHOLDS,
        'x-kubernetes-list-type': 'set',
        description: 'Thresholds already announced this period (each is announced once).',
      }),
    ),
  },
  { additionalProperties: false },
);

export const LlmBudgetSchema = Type.Object(
  {
    apiVersion: Type.Literal(API_VERSION),
    kind: Type.Literal('LlmBudget'),
    metadata: ObjectMeta,
    spec: LlmBudgetSpec,
    status: Type.Optional(LlmBudgetStatus),
  },
  { additionalProperties: false },
);

export type PriceOverrideSpec = Static<typeof PriceOverrideSpec>;
export type LlmBudgetSpec = Static<typeof LlmBudgetSpec>;
export type LlmBudgetStatus = Static<typeof LlmBudgetStatus>;
export type BudgetAllowance = Static<typeof BudgetAllowance>;
export type LlmBudget = Static<typeof LlmBudgetSchema>;

export const LlmBudgetKind: KindDefinition = {
  kind: 'LlmBudget',
  description:
    'LlmBudget caps what the pods it selects may spend on LLM calls per period, in US dollars.',
  plural: 'llmbudgets',
  singular: 'llmbudget',
  shortNames: ['llmbudget'],
  schema: LlmBudgetSchema,
  spec: LlmBudgetSpec,
  status: LlmBudgetStatus,
  printerColumns: [
    { name: 'Spent', type: 'string', jsonPath: '.status.spent' },
    { name: 'Limit', type: 'string', jsonPath: '.spec.limit' },
    { name: 'Used %', type: 'string', jsonPath: '.status.percentUsed' },
    { name: 'State', type: 'string', jsonPath: '.status.state' },
    { name: 'Period End', type: 'string', jsonPath: '.status.periodEnd' },
    { name: 'Period', type: 'string', jsonPath: '.spec.period', priority: 1 },
    { name: 'Action', type: 'string', jsonPath: '.spec.action', priority: 1 },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
};
