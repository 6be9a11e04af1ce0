// Data protection on prompts, as the CompiledPolicy states it.
import { Type, type Static } from '@sinclair/typebox';

export const ProtectionAction = Type.Union([
  Type.Literal('block'),
  Type.Literal('redact'),
  Type.Literal('off'),
]);

export const DataProtection = Type.Object(
  {
    pii: Type.Optional(ProtectionAction),
    secrets: Type.Optional(ProtectionAction),
    /** Per entity type (e.g. `email`, `credit_card`, `aws_access_key`): overrides pii/secrets. */
    entities: Type.Optional(Type.Record(Type.String({ minLength: 1 }), ProtectionAction)),
    scanResponses: Type.Optional(Type.Boolean()),
    maxRequestBytes: Type.Optional(Type.Integer({ minimum: 1024 })),
  },
  { additionalProperties: false },
);

export type ProtectionAction = Static<typeof ProtectionAction>;
export type DataProtection = Static<typeof DataProtection>;
