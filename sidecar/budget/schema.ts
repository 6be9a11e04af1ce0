// Budgets that apply to this pod. Spend is enforced by allowances the operator leases (DESIGN.md).
import { Type, type Static } from '@sinclair/typebox';
import { Origin } from '../policy/origin.js';

export const BudgetRef = Type.Object(
  {
    /** `namespace/name` of the LlmBudget. */
    id: Type.String({ minLength: 3 }),
    action: Type.Union([Type.Literal('block'), Type.Literal('alert')]),
    from: Origin,
  },
  { additionalProperties: false },
);

export type BudgetRef = Static<typeof BudgetRef>;
