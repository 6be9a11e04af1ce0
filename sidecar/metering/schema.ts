// Per-model price overrides in the CompiledPolicy. Money is a decimal string of USD, never a float.
import { Type, type Static } from '@sinclair/typebox';

export const DecimalUsd = Type.String({ pattern: '^\\d{1,9}(\\.\\d{1,6})?$' });

export const PriceOverride = Type.Object(
  {
    provider: Type.Optional(Type.String({ minLength: 1 })),
    model: Type.String({ minLength: 1, description: 'Model glob.' }),
    inputPerMillionTokens: DecimalUsd,
    outputPerMillionTokens: DecimalUsd,
    cachedInputPerMillionTokens: Type.Optional(DecimalUsd),
  },
  { additionalProperties: false },
);

export type PriceOverride = Static<typeof PriceOverride>;
