// Telemetry settings a policy may change. Content capture is off unless a policy opts in.
import { Type, type Static } from '@sinclair/typebox';

export const TelemetrySettings = Type.Object(
  { captureContent: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);

export type TelemetrySettings = Static<typeof TelemetrySettings>;
