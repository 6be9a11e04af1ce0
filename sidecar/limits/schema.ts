// Rate limits as the CompiledPolicy states them; every limit whose match fits a request applies.
import { Type, type Static } from '@sinclair/typebox';
import { Origin } from '../policy/origin.js';

export const RateLimit = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 253 }),
    match: Type.Optional(
      Type.Object(
        {
          provider: Type.Optional(Type.String({ minLength: 1 })),
          model: Type.Optional(Type.String({ minLength: 1, description: 'Model glob.' })),
        },
        { additionalProperties: false },
      ),
    ),
    requestsPerMinute: Type.Optional(Type.Integer({ minimum: 1 })),
    tokensPerMinute: Type.Optional(Type.Integer({ minimum: 1 })),
    maxConcurrent: Type.Optional(Type.Integer({ minimum: 1 })),
    scope: Type.Union([Type.Literal('pod'), Type.Literal('shared')]),
    /** For scope shared without Redis: this pod's fraction of the limit, set by the operator. */
    share: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
    from: Origin,
  },
  { additionalProperties: false },
);

export type RateLimit = Static<typeof RateLimit>;
