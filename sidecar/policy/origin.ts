// Which LlmPolicies a compiled rule came from (`namespace/name`), so `explain` can answer "why".
import { Type } from '@sinclair/typebox';

export const Origin = Type.Optional(Type.Array(Type.String({ minLength: 1 })));
